"""The demo generator's true news quality (``news_quality.parquet``) and the true grade of article pairs.

Only golden sets, ceilings and the simulated judge read this truth, never a model. Real MIND data
has none, so :func:`load_quality_truth` returns None there.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.demo.generator import NEWS_QUALITY_FILE

QUALITY_COLUMNS = ("news_id", "quality", "clickbait", "spam", "duplicate_of")
#: Grade lost by a candidate whose category differs from the trigger's (off-topic for the reader).
OFF_TOPIC_PENALTY = 1


def load_quality_truth(raw_dir: str | Path) -> pd.DataFrame | None:
    """The truth table of a demo folder (columns ``QUALITY_COLUMNS``), or None when the file is absent."""
    path = Path(raw_dir) / NEWS_QUALITY_FILE
    if not path.is_file():
        return None
    truth = pd.read_parquet(path)
    missing = [c for c in QUALITY_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}")
    return truth


def _positions(index: pd.Index, ids: np.ndarray, what: str) -> np.ndarray:
    pos = index.get_indexer(ids)
    if (pos < 0).any():
        unknown = list(dict.fromkeys(ids[pos < 0].tolist()))
        raise ValueError(f"{len(unknown)} unknown {what} id(s), e.g. {unknown[:5]}")
    return pos


def pair_quality(truth: pd.DataFrame, news: pd.DataFrame, trigger_ids: Sequence[str] | np.ndarray,
                 candidate_ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """True 0-4 grade of each (trigger, candidate) pair: the candidate's grade, minus ``OFF_TOPIC_PENALTY``
    when its category differs from the trigger's, clipped to [0, 4] (int8).

    ``news`` is the MIND news table (``news_id``, ``category``, ...). Ids missing from ``news`` (either
    side) or from ``truth`` (candidates) raise ValueError naming the first few.
    """
    triggers = np.asarray(trigger_ids, dtype=object)
    candidates = np.asarray(candidate_ids, dtype=object)
    if triggers.shape != candidates.shape or triggers.ndim != 1:
        raise ValueError(f"trigger_ids and candidate_ids must be 1-D and of equal length, "
                         f"got shapes {triggers.shape} and {candidates.shape}")
    news_index = pd.Index(news["news_id"])
    category = news["category"].to_numpy()
    off_topic = category[_positions(news_index, triggers, "trigger")] != category[_positions(news_index, candidates, "candidate")]
    grade = truth["quality"].to_numpy()[_positions(pd.Index(truth["news_id"]), candidates, "candidate (no quality truth)")]
    return np.clip(grade.astype(np.int64) - OFF_TOPIC_PENALTY * off_topic, 0, 4).astype(np.int8)
