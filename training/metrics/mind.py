"""MIND's official ranking metrics (AUC, MRR, nDCG@5, nDCG@10), vectorised over impressions.

Matches msnews.github.io ``evaluate.py``: each metric is computed within one impression, then
averaged over impressions. All work is done with whole-array segment operations (one packed-key ``argsort``
plus ``bincount`` reductions); there is no Python loop per impression.

Conventions
-----------
* Rows of one impression are contiguous and in candidate order (the order of behaviors.tsv).
* Ranking for MRR and nDCG: score descending, ties broken by candidate order (earlier candidate
  ranks first). The official code leaves ties to ``np.argsort``, i.e. unspecified; this makes
  them deterministic.
* AUC counts tied positive/negative pairs as 1/2 (average ranks), exactly like
  ``sklearn.metrics.roc_auc_score``; it is NaN for single-class impressions.
* MRR and nDCG are NaN for impressions without a click (the official code divides 0 by 0).
* Labels are binary, so the official gain ``2**y - 1`` equals ``y``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

NDCG_CUTOFFS = (5, 10)
#: The one spelling of the MIND metrics everywhere (dict keys, DataFrame columns, MLflow metric names,
#: Dagster metadata keys, JSON output); MLflow-safe and equal to the ``MindMetrics`` attribute names.
METRIC_KEYS = ("auc", "mrr", "ndcg5", "ndcg10")
#: Human-facing headers of ``METRIC_KEYS`` (tables only, never keys).
METRIC_LABELS = {"auc": "AUC", "mrr": "MRR", "ndcg5": "nDCG@5", "ndcg10": "nDCG@10"}
_KEY_LIMIT = 2**63  # packed sort keys must stay below this (int64)


@dataclass(frozen=True)
class MindMetrics:
    """Impression-averaged MIND metrics; each mean skips the impressions where that metric is NaN.

    ``n_auc_skipped`` counts single-class impressions (no click or all clicked);
    ``n_no_click`` counts impressions without a click (skipped by MRR and nDCG).
    """

    auc: float
    mrr: float
    ndcg5: float
    ndcg10: float
    n_impressions: int
    n_candidates: int
    n_auc_skipped: int
    n_no_click: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            **{key: getattr(self, key) for key in METRIC_KEYS},
            "n_impressions": self.n_impressions, "n_candidates": self.n_candidates,
            "n_auc_skipped": self.n_auc_skipped, "n_no_click": self.n_no_click,
        }


@dataclass(frozen=True)
class ImpressionSegments:
    """Contiguous impression segments of a flat candidate array (see ``split_impressions``)."""

    ids: np.ndarray        # one id per impression, in order of appearance
    starts: np.ndarray     # index of each impression's first row
    sizes: np.ndarray      # candidates per impression
    is_start: np.ndarray   # per row: first row of its impression
    row_impression: np.ndarray  # per row: index of its impression (0..n_impressions-1)


def _item(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def split_impressions(impression_ids: ArrayLike) -> ImpressionSegments:
    """Segment a 1-D id array into contiguous impressions; raise if an id reappears later."""
    ids = np.asarray(impression_ids)
    if ids.ndim != 1:
        raise ValueError(f"impression_ids must be 1-D, got shape {ids.shape}")
    n = ids.size
    is_start = np.ones(n, dtype=bool)
    if n > 1:
        np.not_equal(ids[1:], ids[:-1], out=is_start[1:])
    starts = np.flatnonzero(is_start)
    seg_ids = ids[starts]
    repeated = pd.Index(seg_ids).duplicated()
    if repeated.any():
        k = int(np.argmax(repeated))
        raise ValueError(
            f"rows of impression {_item(seg_ids[k])} are not contiguous: it reappears at row "
            f"{int(starts[k])} after rows of other impressions"
        )
    sizes = np.diff(np.append(starts, n))
    row_impression = np.cumsum(is_start) - 1
    return ImpressionSegments(seg_ids, starts, sizes, is_start, row_impression)


def _check_length(name: str, values: np.ndarray, n: int) -> None:
    if values.ndim != 1 or values.size != n:
        raise ValueError(f"{name} must be 1-D with {n} entries like impression_ids, got shape {values.shape}")


def _as_scores(scores: ArrayLike, imps: ImpressionSegments) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    _check_length("scores", s, imps.row_impression.size)
    bad = ~np.isfinite(s)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"scores must be finite: row {row} (impression {_item(imps.ids[imps.row_impression[row]])}) is {s[row]}"
        )
    return s


def _as_labels(labels: ArrayLike, imps: ImpressionSegments) -> np.ndarray:
    y = np.asarray(labels)
    _check_length("labels", y, imps.row_impression.size)
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"labels must be 0 or 1: row {row} (impression {_item(imps.ids[imps.row_impression[row]])}) "
            f"is {_item(y[row])!r}"
        )
    return y.astype(np.float64)


def _descending_order(imps: ImpressionSegments, scores: np.ndarray) -> np.ndarray:
    """Row order sorting each impression by score descending, ties by candidate order.

    Packs (impression, dense score rank, position) into one unique int64 key, so a fast unstable
    argsort gives the stable result; ~3x faster than ``np.lexsort``, which is the fallback when the
    key would overflow.
    """
    n = scores.size
    if n == 0:
        return np.empty(0, dtype=np.int64)
    by_score = np.argsort(scores)
    sorted_scores = scores[by_score]
    step = np.zeros(n, dtype=np.int64)
    np.not_equal(sorted_scores[1:], sorted_scores[:-1], out=step[1:], casting="unsafe")
    dense = np.empty(n, dtype=np.int64)
    dense[by_score] = np.cumsum(step)  # equal scores share a rank, ascending
    n_unique = int(dense[by_score[-1]]) + 1
    max_size = int(imps.sizes.max())
    if imps.ids.size * n_unique * max_size >= _KEY_LIMIT:
        return np.lexsort((-scores, imps.row_impression))
    key = (imps.row_impression * n_unique + (n_unique - 1 - dense)) * max_size + _positions_in_order(imps) - 1
    return np.argsort(key)


def _positions_in_order(imps: ImpressionSegments) -> np.ndarray:
    """1-based position of each row inside its impression (valid for any within-impression order)."""
    return np.arange(imps.row_impression.size) - imps.starts[imps.row_impression] + 1


def rank_within_impressions(impression_ids: ArrayLike, scores: ArrayLike) -> np.ndarray:
    """1-based rank of every candidate in its impression (1 = highest score; ties by candidate order)."""
    imps = split_impressions(impression_ids)
    order = _descending_order(imps, _as_scores(scores, imps))
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = _positions_in_order(imps)
    return ranks


def _safe_divide(num: np.ndarray, den: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=valid)


def _compute(
    impression_ids: ArrayLike, labels: ArrayLike, scores: ArrayLike
) -> tuple[ImpressionSegments, dict[str, np.ndarray]]:
    imps = split_impressions(impression_ids)
    y = _as_labels(labels, imps)
    s = _as_scores(scores, imps)
    m = imps.ids.size
    seg = imps.row_impression
    if m == 0:
        empty = np.empty(0)
        cols: dict[str, np.ndarray] = {c: empty for c in METRIC_KEYS}
        return imps, cols | {"n_candidates": imps.sizes, "n_clicks": np.empty(0, dtype=np.int64)}

    clicks = np.bincount(seg, weights=y, minlength=m)
    has_click = clicks > 0
    order = _descending_order(imps, s)
    y_ranked = y[order]
    s_ranked = s[order]
    rank = _positions_in_order(imps)  # the order keeps every impression in its own block of rows

    cols = {}
    # AUC (Mann-Whitney U): ascending average ranks of positives, ties share the mean rank.
    new_group = imps.is_start.copy()
    new_group[1:] |= s_ranked[1:] != s_ranked[:-1]
    group_first = np.flatnonzero(new_group)
    group_last = np.append(group_first[1:], rank.size) - 1
    mean_desc_rank = 0.5 * (rank[group_first] + rank[group_last])
    asc_rank = imps.sizes[seg] + 1 - mean_desc_rank[np.cumsum(new_group) - 1]
    pos_rank_sum = np.bincount(seg, weights=y_ranked * asc_rank, minlength=m)
    negatives = imps.sizes - clicks
    cols["auc"] = _safe_divide(pos_rank_sum - clicks * (clicks + 1) / 2, clicks * negatives,
                               has_click & (negatives > 0))

    cols["mrr"] = _safe_divide(np.bincount(seg, weights=y_ranked / rank, minlength=m), clicks, has_click)

    gain = y_ranked / np.log2(rank + 1.0)
    for k in NDCG_CUTOFFS:
        dcg = np.bincount(seg, weights=np.where(rank <= k, gain, 0.0), minlength=m)
        ideal_by_clicks = np.concatenate(([0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))))
        ideal = ideal_by_clicks[np.minimum(clicks, k).astype(np.int64)]
        cols[f"ndcg{k}"] = _safe_divide(dcg, ideal, has_click)

    cols["n_candidates"] = imps.sizes
    cols["n_clicks"] = clicks.astype(np.int64)
    return imps, cols


def impression_metrics(impression_ids: ArrayLike, labels: ArrayLike, scores: ArrayLike) -> pd.DataFrame:
    """Per-impression ``auc, mrr, ndcg5, ndcg10, n_candidates, n_clicks``, indexed by impression id.

    Inputs are equal-length 1-D arrays; an impression's rows are contiguous and in candidate order.
    Raises ``ValueError`` for non-contiguous impressions, labels other than 0/1 or non-finite scores.
    """
    imps, cols = _compute(impression_ids, labels, scores)
    return pd.DataFrame(cols, index=pd.Index(imps.ids, name="impression_id"))


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def mind_metrics(impression_ids: ArrayLike, labels: ArrayLike, scores: ArrayLike) -> MindMetrics:
    """MIND's leaderboard metrics: per-impression metrics averaged over impressions (see module doc)."""
    imps, cols = _compute(impression_ids, labels, scores)
    return MindMetrics(
        **{key: _nanmean(cols[key]) for key in METRIC_KEYS},
        n_impressions=int(imps.ids.size),
        n_candidates=int(imps.row_impression.size),
        n_auc_skipped=int(np.isnan(cols["auc"]).sum()),
        n_no_click=int((cols["n_clicks"] == 0).sum()),
    )


def format_metrics_table(rows: Mapping[str, MindMetrics | Mapping[str, float]],
                         keys: tuple[str, ...] = METRIC_KEYS) -> str:
    """Markdown table ``name | AUC | MRR | nDCG@5 | nDCG@10`` with 4 decimals (NaN shown as ``n/a``).

    Dict rows use ``keys`` (default ``METRIC_KEYS``, the keys of ``MindMetrics.as_dict()``); a missing key
    raises ``KeyError``.
    """
    headers = [METRIC_LABELS.get(key, key) for key in keys]
    lines = ["| name | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    for name, row in rows.items():
        values = row.as_dict() if isinstance(row, MindMetrics) else row
        missing = [k for k in keys if k not in values]
        if missing:
            raise KeyError(f"metrics row {name!r} lacks {', '.join(missing)}")
        cells = []
        for key in keys:
            v = float(values[key])
            cells.append("n/a" if np.isnan(v) else f"{v:.4f}")
        lines.append(f"| {str(name).replace('|', chr(92) + '|')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
