"""The held-out triggers query generators are scored on, by the gate of ``query_generator`` and by the comparison
of generators in ``recall_evaluation``: a seeded sample of the partition day's triggers with a click, their
prompts, the news clicked after them, and Q''s index over the news live on the day."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from training.prec.news_encoder_store import SavedNewsEncoder
from training.retrieval.live_news import LiveWindow
from training.retrieval.news_index import NewsIndex
from training.retrieval.qprime import gate_slice, generator_recall, qprime_index, trigger_messages

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from training.slm.causal_lm import CausalLM
    from training.slm.query_generation import GenerationConfig


@dataclass(frozen=True)
class GateTriggers:
    """Held-out triggers with what a generator's Q' path is measured with on them."""

    triggers: list[str]
    prompts: pd.DataFrame      # the triggers' generation inputs (trigger_messages)
    targets: pd.DataFrame      # the clicks that followed them on the day (fresh_targets rows)
    encoder: SavedNewsEncoder  # encodes the generated queries
    index: NewsIndex           # Q''s exact index over the news live on the day
    window: LiveWindow         # a click's candidates count when live at its time
    per_query: int             # news retrieved per generated query

    def recall(self, model: CausalLM, tokenizer: PreTrainedTokenizerBase, version: str,
               generation: GenerationConfig, cache: str | Path | None) -> dict[str, float]:
        """Recall@10/30 of one generator's Q' path and its generation rates
        (:func:`~training.retrieval.qprime.generator_recall`); generations cached under ``cache`` by ``version``."""
        metrics, _ = generator_recall(model, tokenizer, version, self.prompts, self.targets, self.encoder, self.index,
                                      generation, self.per_query, self.window, cache)
        return metrics

    def base_recall(self, base_dir: str | Path, generation: GenerationConfig,
                    cache: str | Path | None) -> dict[str, float]:
        """:meth:`recall` of the untrained base model with its few-shot prompt (the gate's floor), its generations
        cached as ``base-<base_version>``."""
        from training.slm.lora_sft import base_version, load_causal_lm

        model, tokenizer = load_causal_lm(base_dir, generation.torch_threads)
        return self.recall(model, tokenizer, f"base-{base_version(base_dir)}", generation.replace(few_shot=True),
                           cache)


def gate_triggers(heldout: pd.DataFrame, news: pd.DataFrame, encoder: SavedNewsEncoder, full_index: NewsIndex,
                  window: LiveWindow, day: str, *, n_triggers: int, seed: int, per_query: int,
                  vector_cache: str | Path | None = None) -> GateTriggers:
    """:class:`GateTriggers` of ``n_triggers`` of ``heldout``'s triggers (seeded; all when fewer, or 0), e.g.
    :func:`~training.retrieval.evaluation.heldout_targets`; Q''s index over the news live on ``day`` in
    ``full_index``'s catalogue, title vectors cached under ``vector_cache``."""
    triggers, targets = gate_slice(heldout, n_triggers, seed)
    index = qprime_index(encoder, news, full_index, window.day_news(day), cache=vector_cache)
    return GateTriggers(triggers, trigger_messages(news, triggers), targets, encoder, index, window, per_query)
