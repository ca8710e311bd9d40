"""Fakes shared by the query-list tests: a keyword retriever over a handful of news and a quality scorer."""
from __future__ import annotations

import numpy as np
import pytest

#: news id -> title words; four topics, three news each.
NEWS_WORDS = {
    "N1": "nba lakers score tonight", "N2": "lakers trade rumors nba", "N3": "nba playoffs schedule",
    "N4": "winter storm snow warning", "N5": "heavy snow forecast weekend", "N6": "storm power outages",
    "N7": "stock market rally today", "N8": "interest rates stock prices", "N9": "mortgage rates rise",
    "N10": "space launch nasa rocket", "N11": "nasa moon mission", "N12": "rocket launch delayed",
}
QUALITY = {nid: (0.9 if int(nid[1:]) % 3 == 1 else 0.3) for nid in NEWS_WORDS}


class KeywordRetriever:
    """``retrieve(queries)``: per query, the news sharing a word with it, most shared words first (ties: id
    order), at most ``k``; every call's queries are recorded in ``calls``."""

    def __init__(self, k: int = 3) -> None:
        self.k = k
        self.calls: list[list[str]] = []

    def __call__(self, queries: list[str]) -> list[list[str]]:
        self.calls.append(list(queries))
        out = []
        for query in queries:
            words = set(query.split())
            scored = [(-len(words & set(text.split())), int(nid[1:]), nid) for nid, text in NEWS_WORDS.items()]
            out.append([nid for score, _, nid in sorted(scored) if score < 0][: self.k])
        return out


@pytest.fixture
def retriever() -> KeywordRetriever:
    """A fresh keyword retriever (top 3 per query) with an empty call record."""
    return KeywordRetriever()


@pytest.fixture
def new_retriever() -> type[KeywordRetriever]:
    """The keyword retriever's class, for tests that need several."""
    return KeywordRetriever


@pytest.fixture
def quality_scorer():
    """``quality(news_ids)``: 0.9 for N1, N4, N7, N10 (the first news of each topic), 0.3 for the others."""
    def quality(news_ids: list[str]) -> np.ndarray:
        return np.array([QUALITY[n] for n in news_ids])
    return quality
