"""Corruption functions: BERT-style 80/10/10 token masking and PUNR whole-behaviour span masking."""
from __future__ import annotations

import numpy as np
import torch

IGNORE_INDEX = -100


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_ids: torch.Tensor,
    random_ids: torch.Tensor,
    mask_prob: float = 0.15,
    replace_prob: float = 0.8,
    random_prob: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Select ``mask_prob`` of the ``maskable`` positions; of those, ``replace_prob`` become
    ``mask_ids`` (broadcast to ``input_ids``; e.g. the view-specific ``[MASK_i]`` per position),
    ``random_prob`` a uniform draw from ``random_ids``, the rest stay unchanged.

    Returns ``(corrupted ids, labels)``; labels hold the original id at selected positions, else -100.
    """
    selected = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & maskable
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    action = torch.rand(input_ids.shape, generator=generator)
    replace = selected & (action < replace_prob)
    randomise = selected & (action >= replace_prob) & (action < replace_prob + random_prob)
    corrupted = torch.where(replace, mask_ids.expand_as(input_ids), input_ids)
    n_random = int(randomise.sum())
    if n_random:
        draws = torch.randint(len(random_ids), (n_random,), generator=generator)
        corrupted[randomise] = random_ids[draws]
    return corrupted, labels


def span_mask(length: int, total_ratio: float, span_ratio: float, rng: np.random.Generator) -> np.ndarray:
    """PUNR whole-behaviour span masking over a history of ``length`` items.

    Exactly ``round(total_ratio * length)`` items are selected (at least one when ``length`` > 0 and
    ``total_ratio`` > 0), in contiguous spans of ``max(1, round(span_ratio * length))`` items (the last
    span may be shorter); returns a boolean array of selected positions.
    """
    selected = np.zeros(length, dtype=bool)
    if length == 0 or total_ratio <= 0:
        return selected
    budget = min(length, max(1, int(round(total_ratio * length))))
    span = max(1, int(round(span_ratio * length)))
    covered = 0
    while covered < budget:
        start = int(rng.choice(np.flatnonzero(~selected)))
        for pos in range(start, min(length, start + min(span, budget - covered))):
            if covered >= budget:
                break
            if not selected[pos]:
                selected[pos] = True
                covered += 1
    return selected
