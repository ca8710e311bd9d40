"""The interest path as a ranking feature (issue 24, item 6): for each logged (impression, candidate) row, whether
and where the candidate is in the union its user's interest list retrieves on the impression's day.

The columns follow the trigger paths' ``in_<path>`` / ``rank_<path>`` (``training.ltr.count_features``): 1/0, and
the 1-based rank in the union (NaN: absent). A list for day t is written from what the user showed by the end of
day t − 1 (``prompt_rows.user_day_rows``), so the feature reads nothing of the impression's own day but the news
live on it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from training.columns import require_columns
from training.retrieval.recall_paths import RecallPath

#: The two feature columns, in ``ltr_features`` order (``in_``, then ``rank_``).
INTEREST_FEATURES = (f"in_{RecallPath.INTEREST}", f"rank_{RecallPath.INTEREST}")


def interest_path_features(rows: pd.DataFrame, users: Mapping[str, str],
                           unions: Mapping[tuple[str, str], Sequence[str]]) -> pd.DataFrame:
    """``rows`` (``impression_id``, ``day``, ``candidate_id``) with :data:`INTEREST_FEATURES` added. ``users``:
    impression id -> user id; ``unions``: (user id, day) -> the news ids the user's list retrieves that day, in
    union order. Rows of an impression whose user has no union that day get 0 and NaN; an impression id missing
    from ``users`` raises."""
    require_columns(rows, ("impression_id", "day", "candidate_id"), "the feature rows")
    impressions = rows["impression_id"].astype(str)
    unknown = sorted(set(impressions) - set(map(str, users)))
    if unknown:
        raise ValueError(f"{len(unknown)} impression(s) have no user (first: {unknown[:3]})")
    owners = impressions.map({str(k): str(v) for k, v in users.items()})
    positions = {key: {str(n): rank for rank, n in enumerate(union, start=1)} for key, union in unions.items()}
    empty: dict[str, int] = {}
    ranks = np.array([positions.get((user, str(day)), empty).get(str(candidate), np.nan)
                      for user, day, candidate in zip(owners, rows["day"], rows["candidate_id"])], dtype=np.float64)
    in_name, rank_name = INTEREST_FEATURES
    return rows.assign(**{in_name: np.isfinite(ranks).astype(np.float32), rank_name: ranks.astype(np.float32)})
