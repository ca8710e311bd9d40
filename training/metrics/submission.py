"""MIND's prediction file (``prediction.txt``): read, write and score it.

One line per impression, ``<ImpressionID> [r1,r2,...,rn]``, where ``r_i`` is the 1-based rank of
the i-th candidate (candidate order of behaviors.tsv) and the ranks are a permutation of 1..n.
Scoring follows the official evaluator: each candidate's score is ``1 / rank``.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.metrics.mind import MindMetrics, mind_metrics, rank_within_impressions, split_impressions

_ID = re.compile(r"[0-9]+")
_RANKS = re.compile(r"\[\s*[0-9]+\s*(?:,\s*[0-9]+\s*)*\]")
_MAX_LISTED = 10


class PredictionFormatError(ValueError):
    """A prediction file line that does not follow MIND's format; names the file, line and reason."""

    def __init__(self, path: str | os.PathLike[str], line: int, reason: str) -> None:
        self.path, self.line, self.reason = os.fspath(path), line, reason
        super().__init__(f"{self.path}, line {line}: {reason}")


class PredictionMismatchError(ValueError):
    """Predictions that do not fit the ground-truth impressions (missing, unknown or wrong-length)."""


def _permutation_problem(ranks: np.ndarray) -> str | None:
    n = ranks.size
    out_of_range = ranks[(ranks < 1) | (ranks > n)]
    if out_of_range.size:
        return f"ranks are not a permutation of 1..{n}: {int(out_of_range[0])} is out of range"
    counts = np.bincount(ranks - 1, minlength=n)
    if (counts != 1).any():
        repeated = int(np.argmax(counts > 1)) + 1
        missing = int(np.argmax(counts == 0)) + 1
        return f"ranks are not a permutation of 1..{n}: {repeated} repeated, {missing} missing"
    return None


def _parse_line(text: str) -> tuple[int, np.ndarray] | str:
    """``(impression_id, ranks)`` or the reason the line is invalid."""
    parts = text.split(None, 1)
    if len(parts) != 2:
        return "malformed line, expected '<impression id> [r1,r2,...]'"
    id_text, ranks_text = parts[0], parts[1].strip()
    if not _ID.fullmatch(id_text):
        return f"impression id {id_text!r} is not a non-negative integer"
    if not _RANKS.fullmatch(ranks_text):
        shown = ranks_text if len(ranks_text) <= 60 else ranks_text[:57] + "..."
        return f"ranks {shown!r} are not a list of integers like [2,1,3]"
    values = [int(v) for v in ranks_text[1:-1].split(",")]
    if max(values) > len(values):  # also keeps huge literals away from int64
        return f"ranks are not a permutation of 1..{len(values)}: {max(values)} is out of range"
    ranks = np.array(values, dtype=np.int64)
    problem = _permutation_problem(ranks)
    return problem if problem else (int(id_text), ranks)


def read_prediction_file(path: str | os.PathLike[str]) -> dict[int, np.ndarray]:
    """Parse a MIND prediction file into ``{impression_id: ranks}`` (int64 arrays, candidate order).

    Blank lines are ignored. Raises ``PredictionFormatError`` on a malformed line, a non-integer id,
    ranks that are not an integer list or not a permutation of 1..n, or a duplicate impression id.
    """
    predictions: dict[int, np.ndarray] = {}
    first_line: dict[int, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parsed = _parse_line(line.strip())
            if isinstance(parsed, str):
                raise PredictionFormatError(path, lineno, parsed)
            impression_id, ranks = parsed
            if impression_id in predictions:
                raise PredictionFormatError(
                    path, lineno, f"duplicate impression id {impression_id} (first on line {first_line[impression_id]})"
                )
            predictions[impression_id] = ranks
            first_line[impression_id] = lineno
    return predictions


def write_prediction_file(path: str | os.PathLike[str], impression_ids: ArrayLike, scores: ArrayLike) -> None:
    """Write ranks (1 = highest score, ties by candidate order) for contiguous per-impression scores.

    Impressions are written in order of first appearance; ids must be integers.
    """
    ids = np.asarray(impression_ids)
    if ids.size and ids.dtype.kind not in "iu":
        raise ValueError(f"impression ids must be integers, got dtype {ids.dtype}")
    segments = split_impressions(ids)
    rank_text = rank_within_impressions(ids, scores).astype(str)
    bounds = np.append(segments.starts, ids.size).tolist()
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for k, impression_id in enumerate(segments.ids.tolist()):
            f.write(f"{impression_id} [{','.join(rank_text[bounds[k]:bounds[k + 1]])}]\n")


def _listed(ids: Iterable[int]) -> str:
    ids = sorted(ids)
    shown = ", ".join(str(i) for i in ids[:_MAX_LISTED])
    more = f", ... ({len(ids)} in all)" if len(ids) > _MAX_LISTED else f" ({len(ids)})"
    return shown + more


def score_prediction(truth: pd.DataFrame, predictions: Mapping[int, np.ndarray]) -> MindMetrics:
    """Score MIND predictions against ground truth with the official ``1 / rank`` scores.

    ``truth`` has columns ``impression_id``, ``position`` (0-based candidate position) and ``label``.
    Raises ``PredictionMismatchError`` listing (up to 10) impressions missing from the predictions,
    predictions for unknown impressions and rank lists whose length differs from the candidate count.
    """
    missing_cols = {"impression_id", "position", "label"} - set(truth.columns)
    if missing_cols:
        raise ValueError(f"truth lacks column(s) {', '.join(sorted(missing_cols))}")
    impression = truth["impression_id"].to_numpy(dtype=np.int64)
    position = truth["position"].to_numpy(dtype=np.int64)
    order = np.lexsort((position, impression))
    impression, position = impression[order], position[order]
    labels = truth["label"].to_numpy()[order]

    segments = split_impressions(impression)
    expected = np.arange(position.size) - segments.starts[segments.row_impression]
    bad_position = position != expected
    if bad_position.any():
        bad = np.unique(impression[bad_position])
        raise ValueError(f"truth positions are not 0..n-1 for impression(s) {_listed(bad.tolist())}")

    truth_ids = segments.ids.tolist()
    truth_set = set(truth_ids)
    problems = []
    missing = [i for i in truth_ids if i not in predictions]
    if missing:
        problems.append(f"no prediction for impression(s) {_listed(missing)}")
    unknown = [i for i in predictions if i not in truth_set]
    if unknown:
        problems.append(f"prediction for impression(s) not in the truth: {_listed(unknown)}")
    if not missing:
        lengths = np.fromiter((len(predictions[i]) for i in truth_ids), dtype=np.int64, count=len(truth_ids))
        wrong = segments.ids[lengths != segments.sizes]
        if wrong.size:
            problems.append(f"rank list length differs from the number of candidates for impression(s) "
                            f"{_listed(wrong.tolist())}")
    if problems:
        raise PredictionMismatchError("; ".join(problems))

    ranks = (np.concatenate([np.asarray(predictions[i], dtype=np.int64) for i in truth_ids])
             if truth_ids else np.empty(0, dtype=np.int64))
    offsets = segments.starts[segments.row_impression]
    slot = offsets + ranks - 1
    valid = (ranks >= 1) & (ranks <= segments.sizes[segments.row_impression])
    if not valid.all() or (np.bincount(slot[valid], minlength=ranks.size) != 1).any():
        filled = np.bincount(slot[valid], minlength=ranks.size)
        bad_seg = np.unique(np.concatenate((segments.row_impression[~valid],
                                            segments.row_impression[filled != 1])))
        raise PredictionMismatchError(
            f"ranks are not a permutation of 1..n for impression(s) {_listed(segments.ids[bad_seg].tolist())}"
        )
    return mind_metrics(impression, labels, 1.0 / ranks)
