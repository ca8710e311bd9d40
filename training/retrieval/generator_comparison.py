"""Query generators compared on the registered generator's gate triggers (``recall_evaluation``): the untrained
base model with its few-shot prompt, the registered generator, and LoRA SFT with its settings on the other
targets or other seeds. The rows feed :func:`training.retrieval.evaluation.comparison_markdown`."""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from training.retrieval.generator_gate import GateTriggers
from training.retrieval.qprime import sft_data

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from training.slm.causal_lm import CausalLM
    from training.slm.lora_sft import LoraSftConfig
    from training.slm.query_generation import GenerationConfig

#: The row label of the untrained base model, and of LoRA SFT per target set (``sft_data``'s ``which``).
BASE_VARIANT = "base model, few-shot (no training)"
SFT_VARIANTS = {"all": "LoRA SFT (all click targets)", "refined": "LoRA SFT (click-refined targets)"}


class LoadedGenerator(Protocol):
    """A loaded query generator version (serving's ``QueryGeneratorPyfunc``): merged model, tokenizer, version."""

    model: CausalLM
    tokenizer: PreTrainedTokenizerBase
    version: str


def compare_generators(gate: GateTriggers, base_dir: str | Path, generation: GenerationConfig, lora: LoraSftConfig,
                       registered_targets: str, load_registered: Callable[[], LoadedGenerator],
                       query_targets: pd.DataFrame, news: pd.DataFrame, *, other_targets: bool = False,
                       compare_seeds: Sequence[int] = (), cache: str | Path | None = None,
                       log: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """Rows (variant, seed, recall_at_10, recall_at_30, generation rates) on ``gate``'s triggers: the base model
    (few-shot) and the registered generator (trained on ``registered_targets`` with ``lora``, its seed included),
    their generations cached under ``cache``; with ``other_targets``, LoRA SFT on the other target set for
    ``lora.seed``; for each of ``compare_seeds`` but ``lora.seed``, both target sets. The extra trainings use
    ``lora`` but for the seed, generate into a scratch folder, and are ``log``-ged one line each."""
    from training.slm.lora_sft import train_lora

    if registered_targets not in SFT_VARIANTS:
        raise ValueError(f"registered_targets must be one of {sorted(SFT_VARIANTS)}, got {registered_targets!r}")
    rows = [{"variant": BASE_VARIANT, "seed": 0, **gate.base_recall(base_dir, generation, cache)}]
    registered = load_registered()
    metrics = gate.recall(registered.model, registered.tokenizer, registered.version, generation, cache)
    rows.append({"variant": SFT_VARIANTS[registered_targets], "seed": lora.seed, **metrics})
    del registered
    runs = [(which, lora.seed) for which in SFT_VARIANTS if which != registered_targets and other_targets]
    runs += [(which, seed) for seed in compare_seeds if seed != lora.seed for which in SFT_VARIANTS]
    for which, seed in runs:
        messages, targets = sft_data(query_targets, news, which)
        fit = train_lora(base_dir, messages, targets, lora.replace(seed=seed), progress=False)
        with tempfile.TemporaryDirectory() as scratch:  # one-off models: nothing worth caching
            metrics = gate.recall(fit.model, fit.tokenizer, f"compare-{which}-{seed}", generation, scratch)
        rows.append({"variant": SFT_VARIANTS[which], "seed": seed, **metrics})
        if log is not None:
            log(f"{SFT_VARIANTS[which]}, seed {seed}: recall@30 {metrics['recall_at_30']:.4f}")
        del fit
    return rows
