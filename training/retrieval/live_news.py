"""The news a recall path may propose on a day: those *live* then, i.e. first shown within the last
``days`` days up to the end of that day (MIND has no publication time; the first impression stands in).

News live for a few days only, so an index over the whole catalogue mostly returns news nobody is shown
any more; recall paths retrieve from the live subset instead, as a news site's index holds what it can
still recommend. News first shown later on the day count as live: the store is refreshed as news arrive.
"""
from __future__ import annotations

import pandas as pd

from training.embedding_table import EmbeddingTable
from training.retrieval.news_index import IndexConfig, NewsIndex


def live_news(impressions: pd.DataFrame, day: str, days: int = 2) -> set[str]:
    """Ids of the news first shown in ``impressions`` on ``day`` or the ``days - 1`` days before it."""
    if days < 1:
        raise ValueError(f"live days must be >= 1, got {days}")
    first = impressions.groupby("news_id")["day"].min()
    start = (pd.Timestamp(day) - pd.Timedelta(days=days - 1)).strftime("%Y-%m-%d")
    return set(first[(first >= start) & (first <= day)].index.astype(str))


def live_index(index: NewsIndex, live: set[str]) -> NewsIndex:
    """An exact index over the ``live`` news of ``index`` (a few hundred to a few thousand vectors)."""
    rows = [i for i, news_id in enumerate(index.ids) if news_id in live]
    if not rows:
        raise ValueError("no live news in the index: is the partition day in the behaviour log?")
    table = EmbeddingTable([index.ids[i] for i in rows], index.vectors[rows])
    return NewsIndex.build(table, IndexConfig(kind="flat", threads=index.config.threads), index.model_version)
