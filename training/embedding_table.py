"""Id-aligned float32 vectors (news or user embeddings) stored as ``vectors.npy`` + ``ids.parquet``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class EmbeddingTable:
    """Row ``i`` of ``vectors`` is the vector of ``ids[i]``; ids are unique strings."""

    ids: list[str]
    vectors: np.ndarray

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.dtype != np.float32:
            raise ValueError(f"vectors must be a 2-D float32 array, got {self.vectors.dtype} {self.vectors.shape}")
        if len(self.ids) != self.vectors.shape[0]:
            raise ValueError(f"{len(self.ids)} ids for {self.vectors.shape[0]} vectors")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("embedding ids must be unique")

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def index(self) -> dict[str, int]:
        return {id_: i for i, id_ in enumerate(self.ids)}

    def lookup(self, ids: list[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for ``ids`` and a boolean mask of which were found (missing rows are zeros)."""
        pos = self.index()
        rows = np.array([pos.get(i, -1) for i in ids], dtype=np.int64)
        found = rows >= 0
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        out[found] = self.vectors[rows[found]]
        return out, found

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "vectors.npy", self.vectors)
        pq.write_table(pa.table({"id": pa.array(self.ids, pa.string())}), directory / "ids.parquet")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> EmbeddingTable:
        directory = Path(directory)
        ids = pq.read_table(directory / "ids.parquet").column("id").to_pylist()
        return cls(ids=ids, vectors=np.load(directory / "vectors.npy"))
