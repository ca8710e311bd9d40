"""News-quality models: LLM judges and related scorers of (trigger, candidate) article pairs.

Modules are imported explicitly, e.g. ``from training.quality.llm_judge import LlmJudge`` and
``from training.quality.smollm import smollm2_dir``; this package imports nothing on its own.
"""
