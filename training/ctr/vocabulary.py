"""String id → contiguous integer maps with reserved padding and OOV indices."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

#: Index reserved for padding (history slots); its embedding is fixed at zero.
PAD = 0
#: Index of every value unseen in training (cold users/news, unknown categories, missing time).
OOV = 1
#: First index given to a known value.
FIRST_KNOWN = 2


def value_counts(values: pd.Series | np.ndarray) -> pd.Series:
    """Occurrences of each non-null value, as strings (what ``Vocabulary.fit`` counts)."""
    return pd.Series(values, dtype=object).dropna().astype(str).value_counts()


class Vocabulary:
    """Known values get ``FIRST_KNOWN + i``; anything else maps to ``OOV``. Size includes PAD and OOV."""

    def __init__(self, values: list[str]) -> None:
        self._index = pd.Index(values, dtype=object)
        if not self._index.is_unique:
            raise ValueError("vocabulary values must be unique")

    @classmethod
    def fit(cls, values: pd.Series, min_count: int = 1) -> Vocabulary:
        """Values occurring at least ``min_count`` times (nulls ignored), sorted for determinism."""
        return cls.from_counts(value_counts(values), min_count)

    @classmethod
    def from_counts(cls, counts: pd.Series, min_count: int = 1) -> Vocabulary:
        """From occurrence counts (value -> count, e.g. summed over chunks by ``value_counts``)."""
        return cls(sorted(counts.index[counts.to_numpy() >= min_count]))

    @property
    def values(self) -> list[str]:
        return self._index.tolist()

    def __len__(self) -> int:
        return len(self._index) + FIRST_KNOWN

    def encode(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Vectorised lookup: int64 indices, ``OOV`` for unknown or null values."""
        pos = self._index.get_indexer(pd.Index(np.asarray(values, dtype=object)))
        return np.where(pos >= 0, pos + FIRST_KNOWN, OOV).astype(np.int64)

    def save(self, path: str | Path) -> None:
        """Parquet with columns ``id`` (string) and ``index`` (int64)."""
        table = pa.table({
            "id": pa.array(self.values, pa.string()),
            "index": pa.array(np.arange(len(self._index), dtype=np.int64) + FIRST_KNOWN),
        })
        pq.write_table(table, path)

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        frame = pq.read_table(path).to_pandas().sort_values("index")
        expected = np.arange(len(frame)) + FIRST_KNOWN
        if not np.array_equal(frame["index"].to_numpy(), expected):
            raise ValueError(f"{path}: indices are not contiguous from {FIRST_KNOWN}")
        return cls(frame["id"].tolist())
