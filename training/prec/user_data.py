"""User inputs for the user pre-trainer: latest history per user, item indices, profile codes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.embedding_table import EmbeddingTable

#: Item index space: 0 padding, 1 unknown news ([UNK]), 2 [MASK], then news-table rows from ITEM_OFFSET.
ITEM_PAD, ITEM_UNK, ITEM_MASK, ITEM_OFFSET = 0, 1, 2, 3
PROFILE_VIEWS = ("region", "device")


def latest_histories(histories: pd.DataFrame, as_of_day: str | None = None) -> pd.DataFrame:
    """One row per user (``user_id``, ``history``, ``day``): the latest impression with ``day <= as_of_day``
    (all days when None), ordered by time then impression id; sorted by user id."""
    rows = histories if as_of_day is None else histories[histories["day"].astype(str) <= str(as_of_day)]
    if rows.empty:
        return pd.DataFrame({"user_id": pd.Series(dtype=str), "history": pd.Series(dtype=object),
                             "day": pd.Series(dtype=str)})
    rows = rows.sort_values(["time", "impression_id"], kind="stable")
    latest = rows.groupby("user_id", sort=True).tail(1)
    return latest[["user_id", "history", "day"]].sort_values("user_id").reset_index(drop=True)


@dataclass(frozen=True)
class ProfileVocab:
    """Value -> code per profile view (code 0 = missing or unseen)."""

    values: dict[str, list[str]]

    @classmethod
    def fit(cls, profiles: pd.DataFrame) -> ProfileVocab:
        return cls({v: sorted(set(profiles[v].dropna().astype(str)) - {""}) for v in PROFILE_VIEWS})

    @property
    def sizes(self) -> list[int]:
        return [len(self.values[v]) + 1 for v in PROFILE_VIEWS]

    def codes(self, user_ids: list[str], profiles: pd.DataFrame | None) -> np.ndarray:
        """``(len(user_ids), len(PROFILE_VIEWS))`` codes; users without a profile row get zeros."""
        out = np.zeros((len(user_ids), len(PROFILE_VIEWS)), dtype=np.int64)
        if profiles is None or profiles.empty:
            return out
        table = profiles.drop_duplicates("user_id", keep="last").set_index("user_id")
        for j, view in enumerate(PROFILE_VIEWS):
            index = {value: k + 1 for k, value in enumerate(self.values[view])}
            column = table[view].astype(str).to_dict()
            out[:, j] = [index.get(column.get(u, ""), 0) for u in user_ids]
        return out


@dataclass(frozen=True)
class UserSequences:
    """Per user: item indices of the (truncated, oldest-first) history and optional profile codes."""

    user_ids: list[str]
    items: list[np.ndarray]
    profile: np.ndarray | None
    n_unknown: int          # history clicks whose news is absent from the news table (-> [UNK])
    n_clicks: int

    def __len__(self) -> int:
        return len(self.user_ids)


def build_user_sequences(latest: pd.DataFrame, news: EmbeddingTable, max_history: int,
                         profiles: pd.DataFrame | None = None,
                         profile_vocab: ProfileVocab | None = None) -> UserSequences:
    """Map each user's latest ``max_history`` clicks to item indices (unknown news -> ITEM_UNK)."""
    index = news.index()
    items, n_unknown, n_clicks = [], 0, 0
    for history in latest["history"]:
        clicks = list(history if history is not None else [])[-max_history:]
        rows = np.array([index.get(str(c), -1) for c in clicks], dtype=np.int64)
        n_unknown += int((rows < 0).sum())
        n_clicks += len(rows)
        items.append(np.where(rows >= 0, rows + ITEM_OFFSET, ITEM_UNK))
    user_ids = latest["user_id"].astype(str).tolist()
    profile = profile_vocab.codes(user_ids, profiles) if profile_vocab is not None else None
    return UserSequences(user_ids, items, profile, n_unknown, n_clicks)
