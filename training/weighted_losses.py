"""A training objective made of named loss terms, each with its weight (the cross-encoders' terms, PREC's tasks)."""
from __future__ import annotations

from collections.abc import Mapping

import torch


def weighted_sum(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """``sum_k weights[k] * losses[k]`` over the names in ``weights``, added left to right in their order;
    ``losses`` may hold more terms (measured, not trained on)."""
    if not weights:
        raise ValueError(f"no weighted loss term to sum (losses: {sorted(losses)})")
    missing = [name for name in weights if name not in losses]
    if missing:
        raise ValueError(f"weighted loss terms {missing} are not among the losses {sorted(losses)}")
    weighted = [weight * losses[name] for name, weight in weights.items()]
    total = weighted[0]
    for term in weighted[1:]:
        total = total + term
    return total
