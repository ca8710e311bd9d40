"""Golden sets: (trigger, candidate) pairs with a known Good (1) / Bad (0) label, to measure judges by
pairwise accuracy. On demo data they come from the generator's truth; on real data from a user's file
(see :mod:`training.quality.pair_files`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.data.pairs import logged_pairs
from training.data.prepared import BehaviorLog
from training.data.quality_truth import pair_quality, perfect_text_scores, visible_quality
from training.metrics.intervals import Interval, bootstrap_statistic
from training.metrics.quality import pairwise_accuracy
from training.quality.pair_files import parse_golden_label, read_pair_file

#: Truth grades that count as Good and as Bad (grade 2 pairs are left out, as in the paper's golden set).
GOOD_MIN_GRADE, BAD_MAX_GRADE = 3, 1
#: ``perfect_text_score``: the perfect-text judge's score of the pair (Table 1's ceiling), NaN without the truth.
GOLDEN_COLUMNS = ("trigger_id", "candidate_id", "label", "grade", "perfect_text_score")


def truth_golden_set(pairs: pd.DataFrame, grades: np.ndarray, size: int, seed: int = 0,
                     perfect_text_scores: np.ndarray | None = None) -> pd.DataFrame:
    """A balanced sample of ``size`` distinct pairs: half Good (grade >= 3), half Bad (grade <= 1), with the
    perfect-text judge's score of each pair where given (:func:`training.data.quality_truth.perfect_text_scores`)."""
    if perfect_text_scores is None:
        ceiling = np.full(len(pairs), np.nan)
    else:
        ceiling = np.asarray(perfect_text_scores, np.float64)
    if ceiling.shape != (len(pairs),):
        raise ValueError(f"perfect_text_scores: expected {len(pairs)} scores, got shape {ceiling.shape}")
    frame = pairs[["trigger_id", "candidate_id"]].assign(grade=np.asarray(grades, dtype=np.int64),
                                                         perfect_text_score=ceiling)
    frame = frame.drop_duplicates(["trigger_id", "candidate_id"]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    parts = []
    for label, mask in ((1, frame["grade"] >= GOOD_MIN_GRADE), (0, frame["grade"] <= BAD_MAX_GRADE)):
        rows = np.flatnonzero(mask.to_numpy())
        take = min(size // 2, rows.size)
        if take == 0:
            raise ValueError(f"no {'Good' if label else 'Bad'} pairs to build a golden set from")
        parts.append(frame.iloc[np.sort(rng.choice(rows, size=take, replace=False))].assign(label=label))
    golden = pd.concat(parts, ignore_index=True)[list(GOLDEN_COLUMNS)]
    return golden.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def demo_golden_set(log: BehaviorLog, news: pd.DataFrame, raw_dir: str | Path, truth: pd.DataFrame, size: int,
                    seed: int = 0) -> pd.DataFrame:
    """``truth_golden_set`` of the distinct pairs logged in ``log`` (``logged_pairs``), graded by the demo
    generator's ``truth``, with the perfect-text judge's scores when ``raw_dir`` holds the generator's report
    (``demo_report.json``; else NaN: no ceiling)."""
    pairs, _, _ = logged_pairs(log, set(news["news_id"]))
    pairs = pairs.drop_duplicates(["trigger_id", "candidate_id"])
    grades = pair_quality(truth, news, pairs["trigger_id"], pairs["candidate_id"])
    visible = visible_quality(raw_dir, truth)
    ceiling = None if visible is None else perfect_text_scores(visible, truth, news, pairs["trigger_id"],
                                                               pairs["candidate_id"])
    return truth_golden_set(pairs, grades, size, seed, perfect_text_scores=ceiling)


def read_golden_file(path: str | Path, news_ids: set[str]) -> pd.DataFrame:
    """A user's golden set (TSV: trigger_id, candidate_id, Good|Bad); ``grade`` is unknown (NaN)."""
    golden = read_pair_file(path, news_ids, "label", parse_golden_label)
    if golden["label"].nunique() < 2:
        raise ValueError(f"golden set {path} needs both Good and Bad pairs to measure pairwise accuracy")
    return golden.assign(grade=np.nan, perfect_text_score=np.nan)[list(GOLDEN_COLUMNS)]


def balanced_subset(golden: pd.DataFrame, size: int, seed: int = 0) -> pd.DataFrame:
    """At most ``size`` golden pairs, half of each label where possible; ``size`` 0 keeps all."""
    if size <= 0 or len(golden) <= size:
        return golden.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    parts = []
    for label in (1, 0):
        rows = np.flatnonzero(golden["label"].to_numpy() == label)
        parts.append(golden.iloc[np.sort(rng.choice(rows, size=min(size // 2, rows.size), replace=False))])
    return pd.concat(parts, ignore_index=True)


def pairwise_accuracy_interval(labels: np.ndarray, scores: np.ndarray, seed: int = 0) -> Interval:
    """A judge's pairwise accuracy on golden pairs with the protocol's 95 % bootstrap interval: PA is not a
    per-pair mean, so the golden pairs are resampled and PA recomputed on each resample."""
    labels, scores = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D and of equal length, got {labels.shape} and {scores.shape}")
    return bootstrap_statistic(labels.size, lambda idx: pairwise_accuracy(labels[idx], scores[idx]), seed=seed)
