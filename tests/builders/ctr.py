"""Seeded synthetic MIND-format tables whose clicks follow user × category affinity (tests, benchmarks)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from training.ctr.features import CtrData
from training.embedding_table import EmbeddingTable

START = pd.Timestamp("2019-11-09", tz="UTC")


@dataclass(frozen=True)
class SyntheticCtrConfig:
    num_users: int = 300
    num_news: int = 400
    num_categories: int = 8
    train_days: int = 3
    impressions_per_day: int = 600
    max_candidates: int = 20
    max_history: int = 30
    liked_click_rate: float = 0.45
    other_click_rate: float = 0.04
    cold_fraction: float = 0.1          # share of validation users and news never seen in training
    off_catalogue_fraction: float = 0.05  # news ids without a catalogue row
    vector_dim: int = 16
    seed: int = 0


def make_synthetic_ctr_data(cfg: SyntheticCtrConfig = SyntheticCtrConfig()) -> tuple[CtrData, CtrData]:
    """``(train, valid)``: ``train_days`` days then one validation day, sharing histories/news/tables.

    Every user likes 2 categories; a candidate is clicked with ``liked_click_rate`` when its category is
    liked, else ``other_click_rate``. Histories hold news of liked categories. News vectors are category
    centroids plus noise; user vectors the mean of the liked centroids plus noise.
    """
    rng = np.random.default_rng(cfg.seed)
    n_cold_users = max(1, int(cfg.num_users * cfg.cold_fraction))
    n_cold_news = max(1, int(cfg.num_news * cfg.cold_fraction))
    n_users, n_news = cfg.num_users + n_cold_users, cfg.num_news + n_cold_news
    news_cat = rng.integers(cfg.num_categories, size=n_news)
    news_sub = news_cat * 3 + rng.integers(3, size=n_news)
    liked = np.stack([rng.permutation(cfg.num_categories)[:2] for _ in range(n_users)])
    likes = np.zeros((n_users, cfg.num_categories), dtype=bool)
    likes[np.arange(n_users)[:, None], liked] = True
    user_ids = np.array([f"U{i}" for i in range(n_users)], dtype=object)
    news_ids = np.array([f"N{i}" for i in range(n_news)], dtype=object)

    # Per-user history: news of liked categories (fixed across the user's impressions, as in MIND).
    hist_len = rng.integers(0, cfg.max_history + 1, size=n_users)
    owner = np.repeat(np.arange(n_users), hist_len)
    want_cat = liked[owner, rng.integers(2, size=len(owner))]
    by_cat = [np.flatnonzero(news_cat[: cfg.num_news] == c) for c in range(cfg.num_categories)]
    pick = rng.random(len(owner))
    hist_items = np.empty(len(owner), dtype=np.int64)
    for c in range(cfg.num_categories):  # loop over categories, not rows
        sel = want_cat == c
        hist_items[sel] = by_cat[c][(pick[sel] * len(by_cat[c])).astype(np.int64)]
    hist_offsets = np.concatenate([[0], np.cumsum(hist_len)])

    def day_impressions(day: int, first_id: int, users: np.ndarray, news_pool: np.ndarray) -> pd.DataFrame:
        n = cfg.impressions_per_day
        user = users[rng.integers(len(users), size=n)]
        seconds = np.sort(rng.integers(0, 86_400, size=n))
        sizes = rng.integers(2, cfg.max_candidates + 1, size=n)
        imp = np.repeat(np.arange(n), sizes)
        cand = news_pool[rng.integers(len(news_pool), size=len(imp))]
        p = np.where(likes[user[imp], news_cat[cand]], cfg.liked_click_rate, cfg.other_click_rate)
        return pd.DataFrame({
            "impression_id": (first_id + imp).astype(np.int64),
            "user_id": user_ids[user[imp]],
            "time": START + pd.Timedelta(days=day) + pd.to_timedelta(seconds[imp], unit="s"),
            "day": (START + pd.Timedelta(days=day)).strftime("%Y-%m-%d"),
            "position": (np.arange(len(imp)) - np.repeat(np.cumsum(sizes) - sizes, sizes)).astype(np.int32),
            "news_id": news_ids[cand],
            "label": (rng.random(len(imp)) < p).astype(np.int8),
            "user_index": user[imp],
        })

    warm_users, all_users = np.arange(cfg.num_users), np.arange(n_users)
    warm_news, all_news = np.arange(cfg.num_news), np.arange(n_news)
    days = [day_impressions(d, 1 + d * cfg.impressions_per_day, warm_users, warm_news)
            for d in range(cfg.train_days)]
    days.append(day_impressions(cfg.train_days, 1 + cfg.train_days * cfg.impressions_per_day, all_users, all_news))
    impressions = pd.concat(days, ignore_index=True)

    off_catalogue = rng.random(n_news) < cfg.off_catalogue_fraction
    impressions["in_catalogue"] = ~off_catalogue[pd.Index(news_ids).get_indexer(impressions["news_id"])]
    first = impressions.drop_duplicates("impression_id")
    u = first["user_index"].to_numpy()
    starts, ends = hist_offsets[u], hist_offsets[u + 1]
    take = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(u) else np.empty(0, np.int64)
    lists = pa.ListArray.from_arrays(np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int32),
                                     pa.array(news_ids[hist_items[take.astype(np.int64)]], pa.string()))
    histories = pd.DataFrame({
        "impression_id": first["impression_id"].to_numpy(), "user_id": first["user_id"].to_numpy(),
        "time": first["time"].to_numpy(), "day": first["day"].to_numpy(),
        "history": lists.to_pandas(),
    })
    histories["time"] = pd.to_datetime(histories["time"], utc=True)
    impressions = impressions.drop(columns="user_index")

    keep = ~off_catalogue
    news = pd.DataFrame({
        "news_id": news_ids[keep], "category": [f"cat{c}" for c in news_cat[keep]],
        "subcategory": [f"sub{s}" for s in news_sub[keep]], "title": "", "abstract": "", "url": "",
        "title_entities": "[]", "abstract_entities": "[]",
    })
    centroids = rng.normal(size=(cfg.num_categories, cfg.vector_dim)).astype(np.float32)
    news_vec = centroids[news_cat] + 0.3 * rng.normal(size=(n_news, cfg.vector_dim)).astype(np.float32)
    has_vec = rng.random(n_news) >= 0.05
    news_table = EmbeddingTable(list(news_ids[has_vec]), news_vec[has_vec].astype(np.float32))
    user_vec = centroids[liked].mean(axis=1) + 0.3 * rng.normal(size=(n_users, cfg.vector_dim))
    user_table = EmbeddingTable(list(user_ids), user_vec.astype(np.float32))

    valid_day = (START + pd.Timedelta(days=cfg.train_days)).strftime("%Y-%m-%d")
    is_valid = (impressions["day"] == valid_day).to_numpy()
    split = lambda mask: CtrData(impressions[mask].reset_index(drop=True), histories, news, news_table, user_table)  # noqa: E731
    return split(~is_valid), split(is_valid)
