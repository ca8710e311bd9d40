"""Corruption functions: BERT-style 80/10/10 token masking and PUNR behaviour (span + single) masking."""
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


def _stochastic_round(value: float, rng: np.random.Generator) -> int:
    """``floor(value)``, plus one with probability ``value - floor(value)``: the expectation is ``value``
    (float noise such as 0.3 * 10 = 3.0000000000000004 is rounded away first)."""
    value = round(value, 9)
    whole = int(np.floor(value))
    return whole + int(rng.random() < value - whole)


def _free_starts(free: np.ndarray, length: int) -> np.ndarray:
    """Starts ``s`` with ``free[s:s + length]`` all True."""
    counts = np.concatenate([[0], np.cumsum(free)])
    return np.flatnonzero(counts[length:] - counts[:-length] == length)


def span_mask(maskable: np.ndarray, ratio: float, span_share: float, span_length: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """PUNR behaviour masking over one history, one position per behaviour; ``maskable`` (bool, 1-D) marks the
    known behaviours (padding and [UNK] clicks are never selected).

    Of the ``n`` maskable positions, ``ratio * n`` (PUNR α) are selected and ``span_share`` (PUNR β) of those
    lie in spans of ``span_length`` consecutive maskable positions, the rest are single positions drawn
    uniformly. Both counts are rounded stochastically, so the expected shares are exactly α and β at every
    history length and the counts are exact where ``ratio * n`` and ``span_share * ratio * n`` are whole numbers.
    A span is cut short by the span budget or, when no free run is long enough, to the longest that fits; spans
    never overlap but may touch. Returns ``(selected, from_span)``, boolean arrays shaped like ``maskable``.
    """
    maskable = np.asarray(maskable, dtype=bool)
    if maskable.ndim != 1:
        raise ValueError(f"maskable must be one history (1-D); got shape {maskable.shape}")
    n_selected = _stochastic_round(ratio * int(maskable.sum()), rng)
    n_span = _stochastic_round(span_share * n_selected, rng)
    from_span = np.zeros_like(maskable)
    covered = 0
    while covered < n_span:
        length = min(span_length, n_span - covered)
        starts = _free_starts(maskable & ~from_span, length)
        while starts.size == 0:  # length 1 always fits: n_span <= the number of maskable positions
            length -= 1
            starts = _free_starts(maskable & ~from_span, length)
        start = int(rng.choice(starts))
        from_span[start: start + length] = True
        covered += length
    selected = from_span.copy()
    singles = rng.choice(np.flatnonzero(maskable & ~from_span), size=n_selected - n_span, replace=False)
    selected[singles] = True
    return selected, from_span
