"""Recall of candidate generation: did a path propose the news actually clicked next after a trigger?

``candidates``: one path's rows ``trigger_id, rank, news_id`` (rank 0-based). ``targets``: rows
``trigger_id, news_id``, one per (impression, clicked news), duplicates counting each time. A target is
found at k when its news is among its trigger's rank < k candidates; triggers without candidates miss.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from training.columns import require_columns


def found_mask(candidates: pd.DataFrame, targets: pd.DataFrame, k: int) -> np.ndarray:
    """Per target row (in order): whether its news is among its trigger's top-``k`` candidates."""
    require_columns(candidates, ("trigger_id", "rank", "news_id"), "candidates")
    require_columns(targets, ("trigger_id", "news_id"), "targets")
    top = candidates.loc[candidates["rank"] < k, ["trigger_id", "news_id"]].drop_duplicates()
    keys = pd.MultiIndex.from_frame(top.astype(str))
    wanted = pd.MultiIndex.from_frame(targets[["trigger_id", "news_id"]].astype(str))
    return np.asarray(wanted.isin(keys), dtype=bool)


def recall_at_k(candidates: pd.DataFrame, targets: pd.DataFrame, k: int) -> float:
    """Share of target rows found at ``k``; nan when there are no targets."""
    if not len(targets):
        return float("nan")
    return float(found_mask(candidates, targets, k).mean())


def only_found_by(per_path: dict[str, pd.DataFrame], targets: pd.DataFrame, path: str, k: int) -> float:
    """Share of target rows that ``path`` finds at ``k`` and no other path does; nan without targets."""
    if path not in per_path:
        raise KeyError(f"unknown path {path!r}; have {sorted(per_path)}")
    if not len(targets):
        return float("nan")
    mine = found_mask(per_path[path], targets, k)
    others = np.zeros(len(targets), dtype=bool)
    for name, frame in per_path.items():
        if name != path:
            others |= found_mask(frame, targets, k)
    return float((mine & ~others).mean())


def recall_table(per_path: dict[str, pd.DataFrame], targets: pd.DataFrame,
                 ks: tuple[int, ...] = (10, 30, 100)) -> pd.DataFrame:
    """One row per path: ``path``, ``recall_at_<k>`` for each k, ``n_targets``."""
    rows = [{"path": name, **{f"recall_at_{k}": recall_at_k(frame, targets, k) for k in ks},
             "n_targets": len(targets)} for name, frame in per_path.items()]
    return pd.DataFrame(rows, columns=["path", *(f"recall_at_{k}" for k in ks), "n_targets"])
