"""The policy's weights between stages: the warm start merged for GRPO, and a saved GRPO policy loaded back.

:func:`truncated_copy` makes the smaller model of the capacity comparison (protocol of issue 24: SmolLM2's
first 8 of 30 decoder layers).

GRPO trains a new LoRA on the warm start with its SFT adapter merged (:mod:`~training.query_lists.grpo`). A policy
is saved with ``training.slm.lora_sft.save_adapter(policy, folder, base_model_dir, settings,
base_adapter_dir=<the warm start's folder>)``, which records the warm start's folder and version beside the base
model's; :func:`load_policy` rebuilds it: the base, the warm start merged, then the policy's adapter merged.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from training.slm.lora_sft import ADAPTER_META_FILE, load_generator_model, read_adapter_version

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def merged_copy(model: PeftModel) -> PreTrainedModel:
    """A new model object: ``model``'s base weights with its adapter merged (``merge_and_unload``), in eval mode;
    ``model`` itself keeps its adapter unmerged."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise TypeError(f"merged_copy needs a peft model with an adapter to merge, got {type(model).__name__}")
    merged = copy.deepcopy(model).merge_and_unload()
    merged.eval()
    return merged


def truncated_copy(model: PreTrainedModel, n_layers: int) -> PreTrainedModel:
    """A new model object: ``model`` with only its first ``n_layers`` decoder layers (the final norm, embeddings
    and output layer kept; ``config.num_hidden_layers`` and any ``config.layer_types`` cut to match), in
    ``model``'s train/eval mode; ``model`` itself is unchanged. It saves and reloads as a plain model."""
    total = int(model.config.num_hidden_layers)
    if not 1 <= n_layers <= total:
        raise ValueError(f"n_layers must be in [1, {total}] (the model's decoder layers), got {n_layers}")
    return layer_subset(model, range(n_layers))


def layer_subset(model: PreTrainedModel, keep: Iterable[int]) -> PreTrainedModel:
    """A new model object with only the decoder layers ``keep`` (distinct indices, in ascending order), renumbered
    for the KV cache; otherwise as :func:`truncated_copy` (which keeps the first N)."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        raise TypeError("layer_subset needs a plain transformers model; merge the adapter first (merged_copy)")
    kept = list(keep)
    total = int(model.config.num_hidden_layers)
    if not kept or kept != sorted(set(kept)) or kept[0] < 0 or kept[-1] >= total:
        raise ValueError(f"keep must be distinct ascending layer indices in [0, {total - 1}], got {kept}")
    copied = copy.deepcopy(model)
    decoder = copied.get_decoder()
    if not isinstance(getattr(decoder, "layers", None), torch.nn.ModuleList):
        raise TypeError(f"{type(model).__name__}'s decoder has no ModuleList 'layers' to truncate")
    decoder.layers = torch.nn.ModuleList([decoder.layers[i] for i in kept])
    for position, layer in enumerate(decoder.layers):
        attention = getattr(layer, "self_attn", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = position
    for config in {id(c): c for c in (copied.config, decoder.config)}.values():
        config.num_hidden_layers = len(kept)
        if isinstance(getattr(config, "layer_types", None), list):
            config.layer_types = [config.layer_types[i] for i in kept]
    return copied


def load_policy(base_model_dir: str | Path, policy_dir: str | Path, warm_start_dir: str | Path | None = None,
                torch_threads: int = 2) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(model, tokenizer)`` for generation from a policy adapter saved by ``save_adapter``: the base model, the
    warm start in ``warm_start_dir`` merged (``load_generator_model``), then the policy's adapter merged. The warm
    start must be the one recorded with the policy (same version); a policy trained on the bare base model
    records none and takes ``warm_start_dir=None``."""
    from peft import PeftModel

    meta_path = Path(policy_dir) / ADAPTER_META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} is missing: not an adapter folder written by save_adapter")
    recorded = json.loads(meta_path.read_text()).get("base_adapter_sha256")
    given = read_adapter_version(warm_start_dir) if warm_start_dir is not None else None
    if recorded != given:
        raise ValueError(f"the policy in {policy_dir} was trained on warm start {recorded or '(none)'}, but the "
                         f"warm start given is {given or '(none)'} ({warm_start_dir})")
    model, tokenizer = load_generator_model(base_model_dir, warm_start_dir, merge=True, torch_threads=torch_threads)
    policy = PeftModel.from_pretrained(model, str(policy_dir), is_trainable=False).merge_and_unload()
    policy.eval()
    return policy, tokenizer


def truncated_base(base_model_dir: str | Path, keep_layers: int, cache_root: str | Path) -> Path:
    """The folder of ``base_model_dir``'s first ``keep_layers`` decoder layers (:func:`truncated_copy`), written
    once under ``cache_root`` (keyed by the base's version) and reused; ``base_model_dir`` itself when
    ``keep_layers`` is 0 or all of its layers."""
    import shutil
    import tempfile

    from training.slm.lora_sft import base_version, load_causal_lm

    total = int(json.loads((Path(base_model_dir) / "config.json").read_text())["num_hidden_layers"])
    if keep_layers == 0 or keep_layers == total:
        return Path(base_model_dir)
    folder = Path(cache_root) / f"{base_version(base_model_dir)}-first-{keep_layers}"
    if (folder / "config.json").is_file():
        return folder
    model, tokenizer = load_causal_lm(base_model_dir, torch_threads=0)
    small = truncated_copy(model, keep_layers)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    small.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    try:
        staging.rename(folder)   # atomic: a concurrent writer's folder wins, ours is dropped
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
