"""Prompts that open alike run their shared opening through a causal LM once.

The judge's prompts (instructions and chat template) and the query generators' prompts (system message and
few-shot turns) share their first 100-140 SmolLM2 tokens, half to three quarters of each prompt. The opening
runs once; its key/value cache is repeated over each batch, whose own tokens are left padded after it (the
attention mask hides the padding between opening and text; position ids continue from the opening).
Results equal running each prompt whole (to float rounding; tests compare both).

    opening = PromptOpening.of(model, token_ids)           # None where the prompts share too little
    logits = opening.forward(model, batch_ids, batch_mask, logits_to_keep=1).logits
    new_tokens = greedy_continue(model, opening, batch_ids, batch_mask, 32, pad_id=0, eos_id=2)
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import Cache
    from transformers.modeling_outputs import CausalLMOutputWithPast

    from training.slm.causal_lm import CausalLM

#: A shared opening of at least this many tokens is worth running once.
MIN_SHARED_TOKENS = 8


def shared_prefix_length(token_ids: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix that every sequence shares, short of the shortest sequence's last token (each
    keeps at least one token of its own, where its next-token logits are read)."""
    if not token_ids:
        return 0
    limit = min(len(ids) for ids in token_ids) - 1
    first = token_ids[0]
    n = 0
    while n < limit and all(ids[n] == first[n] for ids in token_ids):
        n += 1
    return max(n, 0)


def cache_argument(model: CausalLM) -> str:
    """The name under which ``model.forward`` takes a key/value cache (transformers renamed
    ``past_key_values`` to ``cache``); a peft wrapper is asked about the model it wraps."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"


def _output_cache(output: Mapping[str, Any]) -> Cache:
    return output["cache"] if "cache" in output else output["past_key_values"]


@dataclass(frozen=True)
class PromptOpening:
    """The key/value cache of the tokens every prompt of a call opens with."""

    length: int
    cache: Cache
    argument: str

    @classmethod
    def of(cls, model: CausalLM, token_ids: Sequence[Sequence[int]],
           min_tokens: int | None = None) -> PromptOpening | None:
        """Runs the shared opening of ``token_ids`` once (None when it is shorter than ``min_tokens``, default
        :data:`MIN_SHARED_TOKENS`)."""
        length = shared_prefix_length(token_ids)
        if length < max(MIN_SHARED_TOKENS if min_tokens is None else min_tokens, 1):
            return None
        output = model(input_ids=torch.tensor([list(token_ids[0][:length])]), use_cache=True)
        return cls(length, _output_cache(output), cache_argument(model))

    def forward(self, model: CausalLM, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                **kwargs: Any) -> CausalLMOutputWithPast:
        """``model`` on a left-padded batch of the prompts' remaining tokens, after the opening; returns the
        model output (its cache holds opening + batch)."""
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(len(input_ids))
        mask = torch.cat([torch.ones(len(input_ids), self.length, dtype=attention_mask.dtype), attention_mask], 1)
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0) + self.length
        return model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                     **{self.argument: cache}, **kwargs)


def greedy_continue(model: CausalLM, opening: PromptOpening, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    max_new_tokens: int, pad_id: int, eos_id: int) -> torch.Tensor:
    """Greedy continuations (B, <= max_new_tokens) of opening + each left-padded row: rows that wrote
    ``eos_id`` continue with ``pad_id``; stops when every row is done (as ``generate`` does greedily)."""
    output = opening.forward(model, input_ids, attention_mask, logits_to_keep=1)
    mask = torch.cat([torch.ones(len(input_ids), opening.length, dtype=attention_mask.dtype), attention_mask], 1)
    position = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, -1] + opening.length
    done = torch.zeros(len(input_ids), dtype=torch.bool)
    tokens = []
    for step in range(max_new_tokens):
        # ignore: transformers types every model-output field Optional; a causal LM's forward always sets logits
        token = output.logits[:, -1].argmax(-1)  # type: ignore[index]
        token = torch.where(done, torch.full_like(token, pad_id), token)
        tokens.append(token)
        done |= token == eos_id
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones(len(input_ids), 1, dtype=mask.dtype)], 1)
        position = position + 1
        output = model(input_ids=token[:, None], attention_mask=mask, position_ids=position[:, None],
                       use_cache=True, **{opening.argument: _output_cache(output)})
    return torch.stack(tokens, 1) if tokens else torch.zeros((len(input_ids), 0), dtype=torch.long)
