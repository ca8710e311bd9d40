"""Feature rows of (trigger, candidate) pairs for the two ranking stages.

* ``logged_rows``: pairs of logged impressions (one LambdaRank group per impression) for training and
  evaluation; counts are as of the start of each pair's day, so a row never sees its own day.
* ``related_rows``: the candidate store's union lists as the service ranks them; counts as of the end of
  the partition day, candidate age at that instant, no user (``ctr_score`` is NaN).

Both featurise ``batch_size`` impressions (union lists: triggers) at a time, so the memory a call takes
beyond its output is that of one batch whatever a day's size; the rows do not depend on the batch size.
Model scores come in through plain callables, so this module needs neither MLflow nor Dagster.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from training.embedding_table import EmbeddingTable
from training.ltr.count_features import LogCounts, PathRanks, pair_features

#: ``(trigger_ids, candidate_ids) -> (click, quality)`` scores of the ranking student's two heads.
StudentScorer = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
#: ``pairs (impression_id, position) -> click probability``; NaN where the CTR model does not know the user.
CtrScorer = Callable[[pd.DataFrame], np.ndarray]

#: What every row frame carries besides its features.
KEY_COLUMNS = ("trigger_id", "candidate_id")


def _batches(groups: pd.Series, batch_size: int) -> list[np.ndarray]:
    """Row positions of consecutive batches of ``batch_size`` distinct ``groups`` (first-appearance order;
    0: one batch). A group's rows stay in one batch, in their order."""
    codes, _ = pd.factorize(groups)
    if batch_size <= 0 or codes.size == 0 or codes.max() < batch_size:
        return [np.arange(codes.size)]
    batch = codes // batch_size
    order = np.argsort(batch, kind="stable")
    return np.split(order, np.searchsorted(batch[order], np.arange(1, batch.max() + 1)))


def _in_batches(groups: pd.Series, batch_size: int, featurise: Callable[[np.ndarray], pd.DataFrame]) -> pd.DataFrame:
    """``featurise(rows)`` per batch of ``groups``, stacked back into row order (index 0..n-1)."""
    batches = _batches(groups, batch_size)
    frame = pd.concat([featurise(rows) for rows in batches], ignore_index=True)
    order = np.concatenate(batches)
    if (order != np.arange(order.size)).any():
        frame = frame.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    return frame


def _features(counts_features: np.ndarray, count_names: list[str], trigger_ids: np.ndarray,
              candidate_ids: np.ndarray, news_vectors: EmbeddingTable | None,
              path_ranks: PathRanks | None, student: StudentScorer) -> pd.DataFrame:
    pair, pair_names = pair_features(trigger_ids, candidate_ids, news_vectors, path_ranks)
    click, quality = student(trigger_ids, candidate_ids)
    frame = pd.DataFrame(np.hstack([counts_features, pair]).astype(np.float32, copy=False),
                         columns=count_names + pair_names)
    frame["student_click"] = np.asarray(click, dtype=np.float32)
    frame["student_quality"] = np.asarray(quality, dtype=np.float32)
    return frame


def logged_rows(pairs: pd.DataFrame, times: pd.Series, counts: LogCounts, news_vectors: EmbeddingTable | None,
                path_ranks: PathRanks | pd.DataFrame | None, student: StudentScorer, ctr: CtrScorer | None,
                ctr_mask_fraction: float = 0.0, seed: int = 0, batch_size: int = 0) -> pd.DataFrame:
    """``pairs`` (``impression_id, day, position, trigger_id, candidate_id, clicked`` and any extra columns,
    kept) with every stage-2 feature. ``times`` maps ``impression_id`` to the impression's UTC time.
    ``path_ranks``: a ``PathRanks`` or the candidate store's frame (see ``pair_features``).

    ``ctr_mask_fraction`` of the impressions (seeded) get ``ctr_score`` NaN as if their user were unknown:
    the related-news endpoint has no user, and stage 2 must rank well without the CTR score too. ``ctr``
    scores all ``pairs`` in one call (the CTR model dates news it never saw by the tables it scores, so a
    batch would change their age); every other feature comes ``batch_size`` impressions at a time (0: all).
    """
    if not 0.0 <= ctr_mask_fraction <= 1.0:
        raise ValueError(f"ctr_mask_fraction must be in [0, 1], got {ctr_mask_fraction}")
    pairs = pairs.reset_index(drop=True)
    when = pairs["impression_id"].map(times)
    if when.isna().any():
        missing = pairs.loc[when.isna(), "impression_id"].unique()[:5].tolist()
        raise ValueError(f"no impression time for impression_id(s) {missing}")
    when = pd.to_datetime(when, utc=True)
    ctr_score = np.full(len(pairs), np.nan, dtype=np.float32) if ctr is None else np.asarray(ctr(pairs), np.float32)
    if ctr_mask_fraction > 0:
        ids = pairs["impression_id"].unique()
        rng = np.random.default_rng(seed)
        masked = ids[rng.random(ids.size) < ctr_mask_fraction]
        ctr_score = np.where(pairs["impression_id"].isin(masked).to_numpy(), np.nan, ctr_score).astype(np.float32)
    path_ranks = PathRanks.of(path_ranks)
    keys = pairs[["trigger_id", "candidate_id", "day"]]

    def featurise(rows: np.ndarray) -> pd.DataFrame:
        triggers, candidates, days = (keys[c].iloc[rows].to_numpy(dtype=object) for c in keys.columns)
        counted = counts.features(triggers, candidates, days, when.iloc[rows])
        return _features(counted, counts.feature_names(), triggers, candidates, news_vectors, path_ranks, student)

    frame = _in_batches(pairs["impression_id"], batch_size, featurise)
    frame["ctr_score"] = ctr_score
    return pd.concat([pairs, frame], axis=1)


def related_rows(union: pd.DataFrame, counts: LogCounts, as_of_day: str, news_vectors: EmbeddingTable | None,
                 path_ranks: PathRanks | pd.DataFrame | None, student: StudentScorer,
                 batch_size: int = 0) -> pd.DataFrame:
    """Rows ``trigger_id, candidate_id`` (= the store's ``news_id``) and the stage-2 features of each union
    candidate, with counts as of the start of ``as_of_day`` (the day after the partition) and ages at that
    instant (what ``counts.snapshot(as_of_day)`` serves, looked up without building the snapshot's tables);
    ``ctr_score`` NaN (no user). ``batch_size`` triggers' lists at a time (0: all)."""
    keys = union[["trigger_id", "news_id"]].reset_index(drop=True).rename(columns={"news_id": "candidate_id"})
    at = pd.Timestamp(as_of_day, tz="UTC")
    path_ranks = PathRanks.of(path_ranks)

    def featurise(rows: np.ndarray) -> pd.DataFrame:
        triggers, candidates = (keys[c].iloc[rows].to_numpy(dtype=object) for c in keys.columns)
        counted = counts.features(triggers, candidates, np.full(rows.size, as_of_day, dtype=object), at)
        return _features(counted, counts.feature_names(), triggers, candidates, news_vectors, path_ranks, student)

    frame = _in_batches(keys["trigger_id"], batch_size, featurise)
    frame["ctr_score"] = np.float32(np.nan)
    return pd.concat([keys, frame], axis=1)
