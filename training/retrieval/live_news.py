"""The news a recall path may propose: those *live* when the service shows an impression, i.e. first shown
within ``days`` days before the impression's time, up to that time (MIND has no publication time; the first
impression stands in).

News live for a few days only, so an index over the whole catalogue mostly returns news nobody is shown
any more; recall paths retrieve from the live news instead, as a news site's index holds what it can still
recommend. Per impression, news first shown *after* it are not live (they did not exist for the service
yet). A day's store is built over :meth:`LiveWindow.day_news`, the news live at some moment of the day, and
each impression keeps the candidates live at its own time (:meth:`LiveWindow.live`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.embedding_table import EmbeddingTable
from training.retrieval.news_index import IndexConfig, NewsIndex

#: Days a news stays live after it is first shown (the default of every recall asset).
LIVE_DAYS = 2


@dataclass(frozen=True)
class LiveWindow:
    """``first_seen``: news id -> time first shown; a news is live at ``t`` when ``t - days <= first_seen <= t``."""

    first_seen: pd.Series
    days: float = LIVE_DAYS

    def __post_init__(self) -> None:
        if not self.days > 0:
            raise ValueError(f"live days must be > 0, got {self.days}")

    @classmethod
    def from_impressions(cls, impressions: pd.DataFrame, days: float = LIVE_DAYS) -> LiveWindow:
        """First-shown times from impression rows (``news_id``, ``time``)."""
        missing = [c for c in ("news_id", "time") if c not in impressions.columns]
        if missing:
            raise ValueError(f"impressions lacks column(s) {missing}")
        first = impressions.groupby("news_id")["time"].min()
        first.index = first.index.astype(str)
        return cls(first, days)

    @property
    def span(self) -> pd.Timedelta:
        return pd.Timedelta(days=self.days)

    def live(self, news_ids: Sequence[str], times: Sequence[Any] | pd.Series) -> np.ndarray:
        """Per row: whether ``news_ids[i]`` was live at ``times[i]`` (a news never shown is never live)."""
        first = pd.Series(pd.Index(np.asarray(news_ids, dtype=object).astype(str)).map(self.first_seen))
        times = pd.Series(pd.to_datetime(pd.Series(list(times)) if not isinstance(times, pd.Series) else times)
                          ).reset_index(drop=True)
        if len(first) != len(times):
            raise ValueError(f"{len(first)} news ids for {len(times)} times")
        ok = first.notna() & (first <= times) & (first >= times - self.span)
        return ok.to_numpy(dtype=bool)

    def _day_start(self, day: str) -> pd.Timestamp:
        """Midnight of ``day`` in the log's time zone (if it has one)."""
        start = pd.Timestamp(day)
        tz = getattr(self.first_seen.dtype, "tz", None)
        return start.tz_localize(tz) if tz is not None else start

    def shown_before(self, day: str) -> set[str]:
        """The news first shown before ``day`` starts."""
        first = self.first_seen
        return set(first.index[(first < self._day_start(day)).to_numpy()])

    def day_news(self, day: str) -> set[str]:
        """The news live at some moment of ``day``: first shown in ``[day start - days, day end)``."""
        start = self._day_start(day)
        first = self.first_seen
        ok = (first >= start - self.span) & (first < start + pd.Timedelta(days=1))
        return set(first.index[ok.to_numpy()])


def live_news(impressions: pd.DataFrame, day: str, days: float = LIVE_DAYS) -> set[str]:
    """Ids of the news live at some moment of ``day`` (:meth:`LiveWindow.day_news`)."""
    return LiveWindow.from_impressions(impressions, days).day_news(day)


def live_index(index: NewsIndex, live: set[str]) -> NewsIndex:
    """An exact index over the ``live`` news of ``index`` (a few hundred to a few thousand vectors)."""
    rows = [i for i, news_id in enumerate(index.ids) if news_id in live]
    if not rows:
        raise ValueError("no live news in the index: is the partition day in the behaviour log?")
    table = EmbeddingTable([index.ids[i] for i in rows], index.vectors[rows])
    return NewsIndex.build(table, IndexConfig(kind="flat", threads=index.config.threads), index.model_version)
