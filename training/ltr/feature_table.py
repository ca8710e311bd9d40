"""The ``ltr_features`` table: the logged rows of each day-role part (``training.ltr.tradeoff.PARTS``)
with their quality grades, then the candidate store's ``related`` rows as served (``training.ltr.rows``).

``pair_grades`` says where a pair's 0-4 quality comes from (the demo generator's truth, else the judge's
labels); ``lambda_day_roles`` records on which day λ is chosen and whether that day is held out.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.data.quality_truth import pair_quality
from training.embedding_table import EmbeddingTable
from training.ltr.count_features import LogCounts, PathRanks
from training.ltr.rows import CtrScorer, StudentScorer, logged_rows, related_rows
from training.ltr.tradeoff import PARTS
from training.quality.evaluation import sample_impressions


def pair_grades(pairs: pd.DataFrame, truth: pd.DataFrame | None, news: pd.DataFrame,
                quality_labels: pd.DataFrame) -> pd.Series:
    """0-4 quality of each (``trigger_id``, ``candidate_id``) pair (float32, in ``pairs``' order): the
    generator's ``truth`` on demo data, else the judge's ``score`` in ``quality_labels`` (first label of a
    pair wins; NaN unlabelled)."""
    if truth is not None:
        return pd.Series(pair_quality(truth, news, pairs["trigger_id"], pairs["candidate_id"]), dtype="float32")
    judged = quality_labels[["trigger_id", "candidate_id", "score"]].drop_duplicates(["trigger_id", "candidate_id"])
    merged = pairs[["trigger_id", "candidate_id"]].merge(judged, on=["trigger_id", "candidate_id"], how="left")
    return merged["score"].astype("float32")


def ranking_feature_rows(logged: pd.DataFrame, parts: np.ndarray, grades: Callable[[pd.DataFrame], ArrayLike],
                         union: pd.DataFrame, as_of_day: str, times: pd.Series, counts: LogCounts,
                         news_vectors: EmbeddingTable | None, path_ranks: PathRanks, student: StudentScorer,
                         ctr: CtrScorer | None, *, train_impressions: int = 0, ctr_mask_fraction: float = 0.5,
                         seed: int = 0, batch_size: int = 0, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Feature rows of ``logged`` pairs by their ``parts`` (one per row: ``row_parts``), in ``PARTS`` order, each
    with ``part`` and ``quality`` (``grades(pairs)``), then the ``union`` lists' rows with ``part`` ``related``
    (counts as of ``as_of_day``, no user). Only ``train`` is sampled (``train_impressions`` impressions, seeded;
    0: all) and only its CTR scores are masked (``ctr_mask_fraction`` of impressions, as for ``/v1/related``).
    ``log`` gets one line per non-empty part."""
    parts = np.asarray(parts, dtype=object)
    if parts.shape != (len(logged),):
        raise ValueError(f"parts must hold one part per logged row ({len(logged)}), got shape {parts.shape}")
    frames = []
    for part in PARTS:
        chunk = logged[parts == part].assign(part=part)
        if chunk.empty:
            continue
        if part == "train" and train_impressions:
            chunk = sample_impressions(chunk, train_impressions, seed)
        chunk["quality"] = np.asarray(grades(chunk))
        frames.append(logged_rows(chunk, times, counts, news_vectors, path_ranks, student, ctr,
                                  ctr_mask_fraction if part == "train" else 0.0, seed, batch_size))
        log(f"{part}: {len(chunk):,} pairs, {chunk['impression_id'].nunique():,} impressions")
        del chunk
    related = related_rows(union, counts, as_of_day, news_vectors, path_ranks, student, batch_size)
    frames.append(related.assign(part="related"))
    return pd.concat(frames, ignore_index=True)


def lambda_day_roles(parts: np.ndarray, fit_days: list[str], early_stopping_day: str,
                     selection_day: str) -> dict[str, str | bool]:
    """The day roles ``ltr_features`` records: the fit days (comma-joined), the early-stopping day, the day
    λ is chosen on (the selection day when a row is in part ``selection``, else the early-stopping day) and
    ``lambda_day_held_out``."""
    held_out = bool((np.asarray(parts, dtype=object) == "selection").any())
    return {"fit_days": ", ".join(fit_days), "early_stopping_day": early_stopping_day,
            "selection_day": selection_day if held_out else early_stopping_day, "lambda_day_held_out": held_out}
