"""MLflow pyfunc wrapper of a registered query-list model (issue 24): ``query_list_policy`` (a GRPO LoRA over a
LoRA warm start over a base causal LM, maybe layer-truncated) or ``query_list_student`` (a small model's full
weights, distilled on-policy; its output layer restricted to its vocabulary when the folder has one:
``training.query_lists.output_vocabulary``).

Registered artefacts: ``settings.json`` (``kind``: ``policy`` or ``model``; the version, the base model
reference and ``keep_layers``, the list spec and the generation settings) and the adapters or the model folder.
A truncated base is cut again on the loading machine (``training.query_lists.policy.truncated_base``, cached
under ``$NEWSFORGE_HOME/cache/llm``); nothing is fetched from a model hub.

Input columns: ``user_id`` and ``message`` (``training.query_lists.prompt_rows.user_day_rows``' prompt).
Output: ``user_id``, ``query_rank``, ``query`` (a list that does not parse gives no rows, never an error).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from serving.query_generator import resolve_base_model

#: ``settings.json`` kinds: adapters over a base, or a plain model folder.
KINDS = ("policy", "model")


def load_list_model(settings: Mapping[str, Any], folders: Mapping[str, str | Path]) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a query-list model from its ``settings.json`` and its folders (``model``; or
    ``policy`` and ``warm_start``), in eval mode with the adapters merged."""
    from training.query_lists.output_vocabulary import load_student

    if settings.get("kind") not in KINDS:
        raise ValueError(f"settings.json kind must be one of {KINDS}, got {settings.get('kind')!r}")
    threads = int(settings["generation"].get("torch_threads", 2))
    if settings["kind"] == "model":
        return load_student(folders["model"], threads)
    from training.query_lists.policy import load_policy, truncated_base
    from training.settings import cache_dir

    if settings.get("warm_start_is_model"):   # a fully fine-tuned warm start: the policy's adapter sits on it
        return load_policy(folders["warm_start"], folders["policy"], None, torch_threads=threads)
    base = truncated_base(resolve_base_model(settings["base_model"]), int(settings.get("keep_layers", 0)),
                          cache_dir("llm"))
    return load_policy(base, folders["policy"], folders["warm_start"], torch_threads=threads)


class QueryListPyfunc(PythonModel):
    """A registered query-list model version: greedy lists of search queries for user prompts."""

    def load_context(self, context: PythonModelContext) -> None:
        from training.query_lists.query_list import QueryListSpec

        settings = json.loads(Path(context.artifacts["settings"]).read_text())
        self.version = settings["version"]
        self.generation = settings["generation"]
        self.spec = QueryListSpec.from_dict(settings["spec"])
        self.model, self.tokenizer = load_list_model(settings, context.artifacts)

    def lists(self, messages: list[str], **overrides: Any) -> list[list[str]]:
        """One greedy list per message (generation settings as registered, ``overrides`` on top)."""
        from training.query_lists.sampling import greedy_lists
        from training.slm.query_generation import GenerationConfig

        config = GenerationConfig.from_dict({**self.generation, **overrides})
        return greedy_lists(self.model, self.tokenizer, messages, self.spec, config)

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        missing = [c for c in ("user_id", "message") if c not in model_input.columns]
        if missing:
            raise ValueError(f"input lacks column(s) {missing}; expected user_id and message")
        lists = self.lists(model_input["message"].astype(str).tolist())
        rows = [(user, rank, query) for user, queries in zip(model_input["user_id"].astype(str), lists)
                for rank, query in enumerate(queries)]
        return pd.DataFrame(rows, columns=["user_id", "query_rank", "query"])
