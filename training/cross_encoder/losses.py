"""Losses of the Explore-Further teachers and student, as plain functions on tensors."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from training.cross_encoder.config import N_QUALITY

MAX_GRADE = N_QUALITY - 1
_A = TypeVar("_A", np.ndarray, torch.Tensor, float)


def pairwise_softmax_loss(pos_logit: torch.Tensor, neg_logit: torch.Tensor,
                          weight: torch.Tensor | None = None) -> torch.Tensor:
    """Click teacher: ``-log(e^pos / (e^pos + e^neg)) = softplus(neg - pos)`` per triplet; mean weighted by
    ``weight`` (``sum(w * l) / sum(w)``), plain mean without weights."""
    losses = F.softplus(neg_logit - pos_logit)
    if weight is None:
        return losses.mean()
    weight = weight.to(losses.dtype)
    return (weight * losses).sum() / weight.sum()


def _checked_scores(scores: torch.Tensor) -> torch.Tensor:
    scores = scores.to(torch.float32)
    if bool(((scores < 0) | (scores > MAX_GRADE) | torch.isnan(scores)).any()):
        raise ValueError(f"quality scores must lie in [0, {MAX_GRADE}]")
    return scores


def rounded_grades(scores: torch.Tensor) -> torch.Tensor:
    """Judge scores -> integer grades, rounding half up (= half away from zero for scores >= 0): 2.5 -> 3,
    3.5 -> 4 (unlike numpy's round-half-to-even, which gives 2 and 4)."""
    return torch.floor(_checked_scores(scores) + 0.5).long().clamp_(0, MAX_GRADE)


def soft_quality_targets(scores: torch.Tensor) -> torch.Tensor:
    """``(B, 5)`` targets with the mass of each score on its two nearest grades, interpolated linearly:
    2.3 -> 0.7 on grade 2 and 0.3 on grade 3; an integer score puts all its mass on that grade."""
    scores = _checked_scores(scores)
    low = torch.floor(scores).long().clamp_(0, MAX_GRADE)
    frac = scores - low.to(scores.dtype)
    high = (low + 1).clamp_(max=MAX_GRADE)
    targets = torch.zeros(scores.shape[0], N_QUALITY, dtype=scores.dtype, device=scores.device)
    targets.scatter_add_(1, low.unsqueeze(1), (1.0 - frac).unsqueeze(1))
    targets.scatter_add_(1, high.unsqueeze(1), frac.unsqueeze(1))
    return targets


def quality_ce_loss(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the rounded grades (``rounded_grades``), mean over the batch."""
    return F.cross_entropy(logits, rounded_grades(scores).to(logits.device))


def quality_sce_loss(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Soft cross-entropy ``-sum_k target_k log softmax(logits)_k`` against ``soft_quality_targets``, batch mean."""
    targets = soft_quality_targets(scores).to(logits.device, logits.dtype)
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def centred(logits: torch.Tensor) -> torch.Tensor:
    """Each row minus its mean over the last axis: the part of the logits a softmax (hence the expected grade
    that ranks by quality) depends on; a per-row shift leaves it unchanged."""
    return logits - logits.mean(dim=-1, keepdim=True)


def click_label_loss(logits: torch.Tensor, clicked: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the click logit against logged click labels (a pair's click rate in [0, 1]);
    rows whose label is NaN (a judged pair never logged) are left out; a batch without labels gives 0."""
    clicked = clicked.to(logits.dtype)
    known = ~torch.isnan(clicked)
    if not bool(known.any()):
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[known], clicked[known])


class DistillLoss(NamedTuple):
    """``total = click_weight * click + quality_weight * quality``; ``click`` / ``quality`` are the unweighted
    terms (mean squared errors, the quality one on centred logits)."""

    total: torch.Tensor
    click: torch.Tensor
    quality: torch.Tensor


def distillation_loss(student_click: torch.Tensor, student_quality: torch.Tensor, teacher_click: torch.Tensor,
                      teacher_quality: torch.Tensor, click_weight: float = 1.0,
                      quality_weight: float = 1.0) -> DistillLoss:
    """MT student: MSE to the click teacher's logit plus MSE between the **centred** 5 quality logits of student
    and teacher (``centred``: each row minus its mean, both sides; mean over all elements), weighted.

    Centring removes the one direction of the 5 logits that the softmax ignores: the student neither spends
    capacity on the teacher's arbitrary per-row offset nor sees that offset inflate the term."""
    click = F.mse_loss(student_click, teacher_click.to(student_click.dtype))
    quality = F.mse_loss(centred(student_quality), centred(teacher_quality.to(student_quality.dtype)))
    return DistillLoss(click_weight * click + quality_weight * quality, click, quality)


def head_weights(initial: Mapping[str, float], ratios: Mapping[str, float]) -> dict[str, float]:
    """Weights that make each loss term equal to its ``ratio`` at step 0: ``ratio / initial`` per term with a
    positive ratio (terms with ratio 0 are left out). ``initial``: the unweighted terms measured on the first
    batches before training."""
    weights = {}
    for name, ratio in ratios.items():
        if ratio < 0 or not math.isfinite(ratio):
            raise ValueError(f"{name} weight must be a finite number >= 0, got {ratio}")
        if ratio == 0:
            continue
        value = initial.get(name, float("nan"))
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"the {name} term measured before training is {value}: it must be > 0 to set its "
                             "weight (the student already matches its target exactly?)")
        weights[name] = ratio / value
    if not weights:
        raise ValueError(f"every term weight is 0: {dict(ratios)}")
    return weights
