"""The judge's quality labels of a partition (``quality_labels``): which pairs it scores, a labels file's pairs,
the pairs it failed on left out, and the labels with their grade shares."""
from __future__ import annotations

import numpy as np
import pandas as pd

from training.data.pairs import PairLogs
from training.quality.evaluation import sample_impressions

#: columns of the labels (``part``: ``train`` for the teachers and students, ``test`` for the evaluation)
LABEL_COLUMNS = ("trigger_id", "candidate_id", "score", "part")
PAIR_KEYS = ["trigger_id", "candidate_id"]


def pairs_to_judge(pair_logs: PairLogs, n_pairs: int, eval_impressions: int, seed: int, *,
                   with_test: bool) -> pd.DataFrame:
    """trigger_id, candidate_id, part: a seeded sample of at most ``n_pairs`` distinct pairs of the fit and
    early-stopping days (``part=train``; never the selection day) and, ``with_test`` (data without truth: the
    evaluation needs judged pairs), the distinct pairs of a seeded sample of ``eval_impressions`` partition-day
    impressions (``part=test``; 0: all)."""
    train = pair_logs.role("fit", "early_stopping")[PAIR_KEYS].drop_duplicates()
    train = train.sample(n=min(n_pairs, len(train)), random_state=seed).reset_index(drop=True)
    wanted = [train.assign(part="train")]
    if with_test:
        test = sample_impressions(pair_logs.part("test"), eval_impressions, seed)
        wanted.append(test[PAIR_KEYS].drop_duplicates().assign(part="test"))
    return pd.concat(wanted, ignore_index=True)


def labels_file_pairs(given: pd.DataFrame, test: pd.DataFrame | None) -> pd.DataFrame:
    """A labels file's rows (trigger_id, candidate_id, score) as ``part=train`` and, when the partition-day pairs
    ``test`` are given (data without truth), those of them among ``test`` again as ``part=test``."""
    pairs = given.assign(part="train")
    if test is None:
        return pairs
    on_test = given.merge(test[PAIR_KEYS].drop_duplicates(), on=PAIR_KEYS)
    return pd.concat([pairs, on_test.assign(part="test")], ignore_index=True)


def without_errors(pairs: pd.DataFrame, scores: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The pairs a judge scored and their scores: a NaN score (the judge failed on the pair, e.g. no label token
    among the openai judge's top log-probs) leaves its pair out, never a default score."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(pairs),):
        raise ValueError(f"expected {len(pairs)} judge scores, got shape {scores.shape}")
    ok = ~np.isnan(scores)
    return pairs[ok].reset_index(drop=True), scores[ok]


def judge_labels(pairs: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """The labels (``LABEL_COLUMNS``): ``pairs`` (trigger_id, candidate_id, part) with their judge ``scores``."""
    labels = pairs[["trigger_id", "candidate_id", "part"]].assign(score=np.asarray(scores, dtype=np.float64))
    return labels[list(LABEL_COLUMNS)]


def label_stats(labels: pd.DataFrame, seconds: float) -> dict[str, float]:
    """``n_labels``, ``mean_score``, ``pairs_per_second`` (judged in ``seconds``) and ``share_grade_<g>``: the share
    of scores that round to grade g (0-4, clipped)."""
    histogram = np.bincount(np.clip(np.rint(labels["score"]).astype(int), 0, 4), minlength=5)
    return {"n_labels": len(labels), "mean_score": float(labels["score"].mean()),
            "pairs_per_second": len(labels) / max(seconds, 1e-9),
            **{f"share_grade_{g}": float(c / max(len(labels), 1)) for g, c in enumerate(histogram)}}
