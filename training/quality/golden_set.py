"""Golden sets: (trigger, candidate) pairs with a known Good (1) / Bad (0) label, to measure judges by
pairwise accuracy. On demo data they come from the generator's truth; on real data from a user's file
(see :mod:`training.quality.pair_files`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.quality.pair_files import parse_golden_label, read_pair_file

#: Truth grades that count as Good and as Bad (grade 2 pairs are left out, as in the paper's golden set).
GOOD_MIN_GRADE, BAD_MAX_GRADE = 3, 1
GOLDEN_COLUMNS = ("trigger_id", "candidate_id", "label", "grade")


def truth_golden_set(pairs: pd.DataFrame, grades: np.ndarray, size: int, seed: int = 0) -> pd.DataFrame:
    """A balanced sample of ``size`` distinct pairs: half Good (grade >= 3), half Bad (grade <= 1)."""
    frame = pairs[["trigger_id", "candidate_id"]].assign(grade=np.asarray(grades, dtype=np.int64))
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


def read_golden_file(path: str | Path, news_ids: set[str]) -> pd.DataFrame:
    """A user's golden set (TSV: trigger_id, candidate_id, Good|Bad); ``grade`` is unknown (NaN)."""
    golden = read_pair_file(path, news_ids, "label", parse_golden_label)
    if golden["label"].nunique() < 2:
        raise ValueError(f"golden set {path} needs both Good and Bad pairs to measure pairwise accuracy")
    return golden.assign(grade=np.nan)[list(GOLDEN_COLUMNS)]


def balanced_subset(golden: pd.DataFrame, size: int, seed: int = 0) -> pd.DataFrame:
    """At most ``size`` golden pairs, half of each label where possible (the LLM judge rows of Table 1)."""
    if len(golden) <= size:
        return golden.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    parts = []
    for label in (1, 0):
        rows = np.flatnonzero(golden["label"].to_numpy() == label)
        parts.append(golden.iloc[np.sort(rng.choice(rows, size=min(size // 2, rows.size), replace=False))])
    return pd.concat(parts, ignore_index=True)
