"""Small synthetic MIND-shaped tables (news, histories, user profiles) for benchmarks and smoke runs.

Each category has its own word pool, so the pre-training tasks and the category probe have signal.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

_CATEGORIES = ("sports", "finance", "health", "travel", "music", "weather", "tech", "food")
_SHARED = ("the", "a", "new", "report", "says", "after", "today", "week", "first", "big", "local", "more")


def _pool(category: str, size: int) -> list[str]:
    return [f"{category[:3]}{j}" for j in range(size)]


def synthetic_news(n: int, n_categories: int = 6, seed: int = 0, id_prefix: str = "N") -> pd.DataFrame:
    """``n`` NEWS_SCHEMA rows whose titles/abstracts draw mostly from their category's word pool."""
    rng = np.random.default_rng(seed)
    categories = _CATEGORIES[:n_categories]
    pools = {c: _pool(c, 60) for c in categories}
    rows = []

    def words(k: int, pool: list[str]) -> str:
        own = rng.choice(pool, size=k)
        shared = rng.choice(_SHARED, size=k)
        return " ".join(o if rng.random() < 0.7 else s for o, s in zip(own, shared))

    for i in range(n):
        cat = categories[int(rng.integers(len(categories)))]
        sub = f"{cat}_{int(rng.integers(3))}"
        title = words(int(rng.integers(5, 12)), pools[cat])
        abstract = words(int(rng.integers(10, 30)), pools[cat]) if rng.random() > 0.1 else ""
        entity = {"Label": f"{cat.title()} {pools[cat][int(rng.integers(10))]}", "Type": "O", "WikidataId": "Q1",
                  "Confidence": 1.0, "OccurrenceOffsets": [0], "SurfaceForms": ["x"]}
        rows.append({
            "news_id": f"{id_prefix}{i}", "category": cat, "subcategory": sub, "title": title,
            "abstract": abstract, "url": f"https://example.org/{i}",
            "title_entities": json.dumps([entity]), "abstract_entities": "[]",
        })
    return pd.DataFrame(rows)


def synthetic_histories(news: pd.DataFrame, n_users: int, days: tuple[str, ...] = ("2019-11-09", "2019-11-10"),
                        history_len: tuple[int, int] = (3, 30), seed: int = 0) -> pd.DataFrame:
    """HISTORIES_SCHEMA rows: one impression per user and day; each user prefers two categories and the
    history on a later day extends the earlier one."""
    rng = np.random.default_rng(seed)
    by_cat = {c: g["news_id"].to_numpy() for c, g in news.groupby("category")}
    cats = sorted(by_cat)
    rows, impression = [], 1
    for u in range(n_users):
        liked = rng.choice(cats, size=min(2, len(cats)), replace=False)
        length = int(rng.integers(history_len[0], history_len[1] + 1))
        clicks = [str(rng.choice(by_cat[liked[int(rng.random() < 0.3)]])) for _ in range(length + len(days))]
        for d, day in enumerate(days):
            time = pd.Timestamp(f"{day} 08:00:00", tz="UTC") + pd.Timedelta(minutes=int(rng.integers(600)))
            rows.append({"impression_id": impression, "user_id": f"U{u}", "time": time, "day": day,
                         "history": clicks[: length + d]})
            impression += 1
    return pd.DataFrame(rows)


def synthetic_profiles(n_users: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "user_id": [f"U{u}" for u in range(n_users)],
        "region": rng.choice(["north", "south", "east", "west"], size=n_users),
        "device": rng.choice(["mobile", "desktop", "tablet"], size=n_users),
    })
