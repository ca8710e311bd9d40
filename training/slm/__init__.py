"""Small-LM query generation: prompts, click-derived targets, LoRA SFT and cached batched generation.

Two tasks on one machinery: ``news`` (related search queries for a trigger article) and ``user``
(interest queries from a user's recent reading history).
"""
from __future__ import annotations

from training.slm.lora_sft import (
    LoraSftConfig,
    SftResult,
    base_version,
    load_causal_lm,
    load_generator_model,
    read_adapter_version,
    save_adapter,
    sft_examples,
    train_lora,
)
from training.slm.prompts import (
    TASKS,
    ParsedQueries,
    chat_prompt,
    filter_queries,
    format_target,
    news_prompt,
    parse_queries,
    user_prompt,
)
from training.slm.query_generation import (
    GenerationConfig,
    GenerationStats,
    TextGenerationStats,
    generate_queries,
    generate_texts,
)
from training.slm.query_targets import (
    QueryLabelError,
    QueryTargets,
    click_refined_targets,
    key_phrase,
    read_query_labels,
    timed_clicks,
    user_targets,
)

__all__ = [
    "TASKS", "GenerationConfig", "GenerationStats", "LoraSftConfig", "ParsedQueries", "QueryLabelError",
    "QueryTargets", "SftResult", "TextGenerationStats", "base_version", "chat_prompt", "click_refined_targets",
    "filter_queries", "format_target", "generate_queries", "generate_texts", "key_phrase", "load_causal_lm",
    "load_generator_model", "news_prompt", "parse_queries", "read_adapter_version", "read_query_labels",
    "save_adapter", "sft_examples", "timed_clicks", "train_lora", "user_prompt", "user_targets",
]
