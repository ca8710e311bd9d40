"""Quality-aware ranking metrics (Bing "Explore Further", KDD'25), vectorised over groups.

* ``reco_dcg``: RecoDCG@k, a DCG of judge grades (0-4, used as ``grade / 4``) normalised by the
  discounts alone, so it measures the absolute quality of the top k rather than its order.
* ``click_ndcg``: MIND-style nDCG@k with linear gain (the label itself), over groups with a click.
* ``quality_filtered_click_ndcg``: the same, dropping groups where a clicked item has low quality.
* ``pairwise_accuracy``: share of differently-labelled pairs whose predictions are ordered alike.

Every result is a plain float on the 0-1 scale (the paper's 0-100 scale is 100x). Groups follow
``training.metrics.mind``: one group's rows are contiguous (ids may be any ints or strings, in any
order), items are ranked by score descending and ties are broken by row order (earlier first), exactly
like ``mind_metrics``. There is no Python loop per group or item.
"""
from __future__ import annotations

import operator
from typing import SupportsIndex

import numpy as np
from numpy.typing import ArrayLike

from training.metrics.mind import (
    ImpressionSegments,
    _descending_order,
    _positions_in_order,
    split_impressions,
)

MAX_GRADE = 4.0  #: top of the judge scale of ``quality``; relevance is ``quality / MAX_GRADE``


def _groups(group_ids: ArrayLike) -> ImpressionSegments:
    ids = np.asarray(group_ids)
    if ids.ndim != 1:
        raise ValueError(f"group_ids must be 1-D, got shape {ids.shape}")
    if ids.size == 0:
        raise ValueError("inputs are empty: group_ids has no rows")
    try:
        return split_impressions(ids)
    except ValueError as exc:
        raise ValueError(f"group_ids: {exc}") from None


def _as_finite(name: str, values: ArrayLike, n: int, like: str = "group_ids") -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size != n:
        raise ValueError(f"{name} must be 1-D with {n} entries like {like}, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name} must be finite: row {row} is {x[row]}")
    return x


def _check_range(name: str, x: np.ndarray, low: float, high: float = np.inf) -> None:
    bad = (x < low) | (x > high)
    if bad.any():
        row = int(np.argmax(bad))
        span = f"in [{low:g}, {high:g}]" if np.isfinite(high) else f">= {low:g}"
        raise ValueError(f"{name} must be {span}: row {row} is {x[row]}")


def _as_k(k: object) -> int:
    try:
        if not isinstance(k, SupportsIndex):
            raise TypeError
        k = operator.index(k)
    except TypeError:
        raise ValueError(f"k must be an integer >= 1, got {k!r}") from None
    if k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k}")
    return k


def _discount_sums(k: int) -> np.ndarray:
    """``[0, 1/log2(2), 1/log2(2) + 1/log2(3), ...]`` up to k terms (the ideal DCG of j unit gains)."""
    return np.concatenate(([0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))))


def _top_k_dcg(imps: ImpressionSegments, order: np.ndarray, gains: np.ndarray, k: int) -> np.ndarray:
    """Per-group DCG@k of ``gains`` taken in ``order`` (an order that keeps every group in its block)."""
    rank = _positions_in_order(imps)
    top = np.flatnonzero(rank <= k)
    weights = gains[order[top]] / np.log2(rank[top] + 1.0)
    return np.bincount(imps.row_impression[top], weights=weights, minlength=imps.ids.size)


def reco_dcg_per_group(group_ids: ArrayLike, quality: ArrayLike, scores: ArrayLike, k: int) -> np.ndarray:
    """RecoDCG@k of each group, in order of first appearance (``reco_dcg`` is their mean; per-group values
    are the units of a paired bootstrap, ``training.metrics.intervals``)."""
    imps = _groups(group_ids)
    n = imps.row_impression.size
    q = _as_finite("quality", quality, n)
    _check_range("quality", q, 0.0, MAX_GRADE)
    s = _as_finite("scores", scores, n)
    k = _as_k(k)
    dcg = _top_k_dcg(imps, _descending_order(imps, s), q / MAX_GRADE, k)
    return dcg / _discount_sums(k)[np.minimum(imps.sizes, k)]


def reco_dcg(group_ids: ArrayLike, quality: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Mean over groups of RecoDCG@k = sum_{i<=k} (quality_i/4)/log2(i+1) / sum_{i<=k} 1/log2(i+1).

    ``quality`` is a judge grade in [0, 4]; items are ranked by ``scores`` descending. A group with
    fewer than k items uses its own length in both sums.
    """
    return float(np.mean(reco_dcg_per_group(group_ids, quality, scores, k)))


def _click_ndcg_per_group(imps: ImpressionSegments, y: np.ndarray, s: np.ndarray, k: int) -> np.ndarray:
    """Per-group nDCG@k with linear gain; NaN for groups without a click."""
    dcg = _top_k_dcg(imps, _descending_order(imps, s), y, k)
    positive = y > 0
    n_pos = np.bincount(imps.row_impression, weights=positive, minlength=imps.ids.size)
    gains = y[positive]
    if gains.size and gains.min() == gains.max():  # one click value (0/1 or 0/c): ideal from counts
        ideal = gains[0] * _discount_sums(k)[np.minimum(n_pos, k).astype(np.int64)]
    else:
        ideal = _top_k_dcg(imps, _descending_order(imps, y), y, k)
    return np.divide(dcg, ideal, out=np.full(dcg.shape, np.nan), where=n_pos > 0)


def _click_inputs(group_ids: ArrayLike, clicks: ArrayLike, scores: ArrayLike,
                  k: int) -> tuple[ImpressionSegments, np.ndarray, np.ndarray, int]:
    imps = _groups(group_ids)
    n = imps.row_impression.size
    y = _as_finite("clicks", clicks, n)
    _check_range("clicks", y, 0.0)
    s = _as_finite("scores", scores, n)
    return imps, y, s, _as_k(k)


def click_ndcg_per_group(group_ids: ArrayLike, clicks: ArrayLike, scores: ArrayLike, k: int) -> np.ndarray:
    """nDCG@k of each group, in order of first appearance; NaN for a group without a click."""
    imps, y, s, k = _click_inputs(group_ids, clicks, scores, k)
    return _click_ndcg_per_group(imps, y, s, k)


def click_ndcg(group_ids: ArrayLike, clicks: ArrayLike, scores: ArrayLike, k: int) -> float:
    """Mean nDCG@k over groups with at least one click, as in MIND (``mind_metrics().ndcg5`` for k=5).

    Gain is the click label itself (linear, non-negative; scaling all labels leaves the value unchanged);
    the ideal DCG ranks the labels descending. Raises ``ValueError`` if no group has a click.
    """
    ndcg = click_ndcg_per_group(group_ids, clicks, scores, k)
    kept = ndcg[~np.isnan(ndcg)]
    if kept.size == 0:
        raise ValueError("clicks: no group has a click, nDCG is undefined")
    return float(kept.mean())


def quality_filtered_click_ndcg_per_group(group_ids: ArrayLike, clicks: ArrayLike, quality: ArrayLike,
                                          scores: ArrayLike, k: int, threshold: float = 1.0) -> np.ndarray:
    """nDCG@k of each group, in order of first appearance; NaN for a group without a click or with a
    clicked item of ``quality <= threshold``."""
    imps, y, s, k = _click_inputs(group_ids, clicks, scores, k)
    q = _as_finite("quality", quality, imps.row_impression.size)
    _check_range("quality", q, 0.0, MAX_GRADE)
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    ndcg = _click_ndcg_per_group(imps, y, s, k)
    low_click = np.bincount(imps.row_impression, weights=(y > 0) & (q <= threshold), minlength=imps.ids.size)
    return np.where(low_click == 0, ndcg, np.nan)


def quality_filtered_click_ndcg(group_ids: ArrayLike, clicks: ArrayLike, quality: ArrayLike,
                                scores: ArrayLike, k: int, threshold: float = 1.0) -> float:
    """``click_ndcg`` over the groups in which no clicked item has ``quality <= threshold``.

    Raises ``ValueError`` if no group with a click is left after the filter.
    """
    ndcg = quality_filtered_click_ndcg_per_group(group_ids, clicks, quality, scores, k, threshold)
    kept = ndcg[~np.isnan(ndcg)]
    if kept.size == 0:
        raise ValueError("clicks: no group with a click is left after dropping clicks of quality "
                         f"<= {float(threshold):g}")
    return float(kept.mean())


def _pairs_within_runs(is_start: np.ndarray) -> int:
    """Sum of c*(c-1)/2 over the lengths c of the runs that ``is_start`` marks."""
    c = np.diff(np.append(np.flatnonzero(is_start), is_start.size))
    return int((c * (c - 1)).sum()) // 2


def _dense_levels(y: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense rank of every label (0 = lowest) and the number of distinct labels.

    Small-range integer labels (grades, clicks) take a ``bincount`` path instead of ``np.unique``'s sort.
    """
    if y.size:
        low, high = float(y.min()), float(y.max())
        if high - low <= max(y.size, 1 << 16):
            shifted = y - low
            as_int = shifted.astype(np.int64)
            if np.array_equal(as_int, shifted):
                present = np.bincount(as_int) > 0
                return (np.cumsum(present) - 1)[as_int], int(present.sum())
    levels, level = np.unique(y, return_inverse=True)
    return level.reshape(-1).astype(np.int64), int(levels.size)


def pairwise_accuracy(labels: ArrayLike, predictions: ArrayLike) -> float:
    """Share of pairs with ``labels_i != labels_j`` whose predictions are ordered the same way.

    Tied predictions count 1/2. O(n log n): one sort by prediction, then for every bit of the dense
    label rank an O(n) wavelet-tree pass counts, per item, the lower-labelled items with a lower
    prediction. Raises ``ValueError`` if no pair has different labels.
    """
    y = np.asarray(labels, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    n = y.size
    y = _as_finite("labels", y, n, like="labels")
    p = _as_finite("predictions", predictions, n, like="labels")
    level, n_levels = _dense_levels(y)
    per_level = np.bincount(level)
    differing = n * (n - 1) // 2 - int((per_level * (per_level - 1)).sum()) // 2
    if differing == 0:
        raise ValueError("labels: no pair has different labels, pairwise accuracy is undefined")

    # Labels in prediction order; inside a run of equal predictions, higher labels first.
    by_pred = np.argsort(p)
    p_sorted = p[by_pred]
    lab = level[by_pred]
    pred_start = np.ones(n, dtype=bool)
    np.not_equal(p_sorted[1:], p_sorted[:-1], out=pred_start[1:])
    tied = 0  # pairs with equal predictions and different labels: 1/2 each
    if not pred_start.all():
        run = np.cumsum(pred_start) - 1
        rows = np.flatnonzero((np.bincount(run) > 1)[run])  # rows inside a run of ties
        key = np.sort(run[rows] * n_levels + (n_levels - 1 - lab[rows]))  # run < n, so no int64 overflow
        lab[rows] = n_levels - 1 - key % n_levels
        label_start = pred_start.copy()
        np.not_equal(lab[1:], lab[:-1], out=label_start[1:])
        tied = _pairs_within_runs(pred_start) - _pairs_within_runs(pred_start | label_start)

    # Concordant pairs, one label bit b at a time (high to low): items sharing the bits above b form a
    # contiguous block, in prediction order; an item with bit b = 1 outranks every item of its block with
    # bit b = 0 before it (strictly lower prediction, as equal predictions list the higher label first).
    # Each block is then stably split by bit b (a counting sort on ``lab >> b``), keeping prediction order.
    concordant = 0
    idx = np.arange(n)
    for b in range((n_levels - 1).bit_length() - 1, -1, -1):
        key = lab >> b  # 2 * block + bit
        block_key = key & ~1
        is_zero = key == block_key
        count = np.bincount(key, minlength=int(key[-1] | 1) + 1)
        key_start = np.cumsum(count) - count  # first row of each key once split = of each block now
        zeros_earlier = key_start - np.cumsum(count[1::2]).repeat(2) + count[1::2].repeat(2)  # by block key
        zeros_before = np.cumsum(is_zero) - is_zero
        zeros_in_block = zeros_before - zeros_earlier[block_key]  # zeros of the block before the row
        concordant += int(zeros_in_block.sum(where=~is_zero))
        if b:
            rank_in_key = np.where(is_zero, zeros_in_block, idx - key_start[block_key] - zeros_in_block)
            split = np.empty_like(lab)
            split[key_start[key] + rank_in_key] = lab
            lab = split
    return float((concordant + 0.5 * tied) / differing)
