"""The shown candidates of a behaviour log joined with what the figures group them by."""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from training.data.prepared import BehaviorLog

#: Category given to candidates whose news id has no row in the news table.
UNKNOWN = "(unknown)"


def require_columns(frame: pd.DataFrame, columns: Iterable[str], table: str) -> None:
    """Raise ``ValueError`` naming ``table`` and every column of ``columns`` that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{table} lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, frame.columns))}")


def labelled_candidates(log: BehaviorLog, news: pd.DataFrame) -> pd.DataFrame:
    """One row per shown candidate: ``label``, UTC ``hour`` of the impression, ``history_length`` (clicks in the
    user's history at that impression), ``category`` and ``subcategory`` (``(unknown)`` off the catalogue)."""
    require_columns(log.impressions, ("impression_id", "news_id", "label", "time"), "impressions")
    require_columns(log.histories, ("impression_id", "history"), "histories")
    require_columns(news, ("news_id", "category", "subcategory"), "news")
    lengths = log.histories.set_index("impression_id")["history"].map(
        lambda h: 0 if h is None else len(h))
    imps = log.impressions
    without = ~imps["impression_id"].isin(lengths.index)
    if without.any():
        ids = imps.loc[without, "impression_id"].unique()[:5].tolist()
        raise ValueError(f"impressions {ids} have no row in histories (impression_id)")
    catalogue = news.drop_duplicates("news_id").set_index("news_id")
    category = imps["news_id"].map(catalogue["category"]).fillna(UNKNOWN).astype(str)
    subcategory = imps["news_id"].map(catalogue["subcategory"]).fillna(UNKNOWN).astype(str)
    return pd.DataFrame({
        "label": imps["label"].astype(int).to_numpy(),
        "hour": pd.to_datetime(imps["time"], utc=True).dt.hour.to_numpy(),
        "history_length": imps["impression_id"].map(lengths).astype(int).to_numpy(),
        "category": category.to_numpy(),
        "subcategory": subcategory.to_numpy(),
    })
