"""Cosine-similarity faiss index over news vectors, with atomic save/load and incremental refresh.

Vectors are L2-normalised on add and on query (zero vectors stay zero), so inner product is cosine.
``kind="auto"`` searches exactly (``IndexFlatIP``) up to ``exact_max`` vectors and with the approximate
kind past it. Row ``i`` of the faiss index is ``ids[i]``; a refresh only ever appends.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from training.embedding_table import EmbeddingTable
from training.staging import staged_dir

KINDS = ("flat", "hnsw", "ivf")
#: k-means for IVF trains on at most this many points per centroid (faiss' default, 256, makes 1M x 4000 slow)
IVF_TRAIN_POINTS_PER_CENTROID = 64
IVF_TRAIN_ITERATIONS = 10
_IVF_MIN_POINTS_PER_CENTROID = 39  # below this faiss warns that k-means is under-trained


@dataclass(frozen=True)
class IndexConfig:
    """How to index news vectors; see ``benchmarks/bench_faiss.py`` for the measured trade-offs."""

    kind: str = "auto"  # "auto" | "flat" | "hnsw" | "ivf"
    exact_max: int = 200_000  # auto: exact (IndexFlatIP) up to this many vectors (2,200 q/s at 100k), approximate above
    # IVF over HNSW as the default approximate kind, from benchmarks/bench_faiss.py (1M x 128 clustered
    # vectors, one query thread, shared 2-core box): IVF (nlist ~4*sqrt(n) = 4000, nprobe 8) gives recall@10
    # 0.996 at 20-24x exact search's queries/s and builds in 1-2 min; HNSW with M=16/efConstruction=40 builds in
    # 3+ min and misses (efSearch 64: 0.947 at 20x; 128: 0.970 at 11x); M=32/efConstruction=80 would take over
    # 10 min to build here. IVF's centroids stay those of its first build when a refresh appends; appending a
    # few % of news at a time barely moves the distribution, and a new encoder version rebuilds anyway.
    approximate: str = "ivf"  # which approximate kind "auto" picks past exact_max: "hnsw" | "ivf"
    hnsw_m: int = 16  # 16/40: a 1M build in ~3 min on 2 cores (32/80 takes ~3x longer)
    hnsw_ef_construction: int = 40
    hnsw_ef_search: int = 64  # recall@10 0.947 at 1M, 0.995 at 100k (32: 0.886 / 0.989)
    ivf_nlist: int = 0  # 0: about 4 * sqrt(n)
    ivf_nprobe: int = 8  # 1M: recall@10 0.996 at 20-24x exact (4: 0.990 at 38x; 16: 0.997 at 11-13x)
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("auto", *KINDS):
            raise ValueError(f"IndexConfig.kind must be 'auto', 'flat', 'hnsw' or 'ivf', got {self.kind!r}")
        if self.approximate not in ("hnsw", "ivf"):
            raise ValueError(f"IndexConfig.approximate must be 'hnsw' or 'ivf', got {self.approximate!r}")
        if self.threads < 1:
            raise ValueError(f"IndexConfig.threads must be >= 1, got {self.threads}")

    def structure(self, kind: str) -> dict[str, Any]:
        """The fields a ``kind`` index fixes at build time (changing them needs a rebuild; search knobs do not)."""
        if kind == "hnsw":
            return {"hnsw_m": self.hnsw_m, "hnsw_ef_construction": self.hnsw_ef_construction}
        if kind == "ivf":
            return {"ivf_nlist": self.ivf_nlist, "seed": self.seed}
        return {}


def choose_kind(n: int, config: IndexConfig) -> str:
    """The faiss index kind for ``n`` vectors: the configured kind, or under "auto" exact up to ``exact_max``."""
    if config.kind != "auto":
        return config.kind
    return "flat" if n <= config.exact_max else config.approximate


def ivf_nlist(n: int, config: IndexConfig) -> int:
    """Number of IVF lists: ``config.ivf_nlist`` or about 4*sqrt(n), capped so k-means has enough points."""
    nlist = config.ivf_nlist or round(4 * math.sqrt(max(n, 1)))
    return max(1, min(nlist, n // _IVF_MIN_POINTS_PER_CENTROID))


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Float32 rows scaled to unit L2 norm; zero rows stay zero."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def make_faiss_index(kind: str, vectors: np.ndarray, config: IndexConfig) -> faiss.Index:
    """An inner-product faiss index of ``kind`` holding ``vectors`` (already normalised), search knobs set."""
    n, dim = vectors.shape
    faiss.omp_set_num_threads(config.threads)
    index: faiss.Index
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = config.hnsw_ef_construction
        index = hnsw
    elif kind == "ivf":
        if n == 0:
            raise ValueError("an IVF index needs vectors to train on; got none")
        nlist = ivf_nlist(n, config)
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = config.seed
        ivf.cp.niter = IVF_TRAIN_ITERATIONS
        ivf.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_CENTROID
        ivf.cp.min_points_per_centroid = 1
        ivf.train(vectors)
        index = ivf
    else:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {KINDS}")
    if n:
        index.add(vectors)
    set_search_params(index, kind, config)
    return index


def set_search_params(index: faiss.Index, kind: str, config: IndexConfig) -> None:
    """Apply the search-time knobs (efSearch, nprobe) of ``config`` to ``index``."""
    if kind == "hnsw":
        if not isinstance(index, faiss.IndexHNSW):
            raise TypeError(f"an 'hnsw' index must be a faiss IndexHNSW, got {type(index).__name__}")
        index.hnsw.efSearch = config.hnsw_ef_search
    elif kind == "ivf":
        if not isinstance(index, faiss.IndexIVF):
            raise TypeError(f"an 'ivf' index must be a faiss IndexIVF, got {type(index).__name__}")
        index.nprobe = min(config.ivf_nprobe, index.nlist)


class NewsIndex:
    """Faiss index over news vectors from one encoder version; ``ids[i]`` is faiss row ``i``."""

    def __init__(self, index: faiss.Index, ids: list[str], vectors: np.ndarray, kind: str,
                 config: IndexConfig, model_version: str = "") -> None:
        if index.ntotal != len(ids) or vectors.shape[0] != len(ids):
            raise ValueError(f"index holds {index.ntotal} vectors, {vectors.shape[0]} raw vectors, {len(ids)} ids")
        self._index = index
        self.ids = ids
        self.vectors = vectors  # normalised, as added; kept for refresh's change check
        self.kind = kind
        self.dim = int(index.d)
        self.config = config
        self.model_version = model_version

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"NewsIndex(kind={self.kind!r}, n={len(self)}, dim={self.dim}, model_version={self.model_version!r})"

    @classmethod
    def build(cls, table: EmbeddingTable, config: IndexConfig = IndexConfig(), model_version: str = "") -> NewsIndex:
        """Index every vector of ``table`` with the kind ``choose_kind`` picks for its size."""
        kind = choose_kind(len(table.ids), config)
        vectors = normalise(table.vectors)
        return cls(make_faiss_index(kind, vectors, config), list(table.ids), vectors, kind, config, model_version)

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        """Append news (ids must be new) without rebuilding."""
        known = set(self.ids).intersection(ids)
        if known:
            raise ValueError(f"{len(known)} ids are already indexed, e.g. {sorted(known)[:3]}")
        vectors = normalise(vectors)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self.dim}), got {vectors.shape}")
        faiss.omp_set_num_threads(self.config.threads)
        self._index.add(vectors)
        self.ids = self.ids + list(ids)
        self.vectors = np.concatenate([self.vectors, vectors])

    def search(self, queries: np.ndarray, k: int,
               exclude: list[set[str]] | None = None) -> tuple[list[list[str]], list[list[float]]]:
        """Per query row, up to ``k`` (ids, cosine similarities) best first, without that row's ``exclude`` ids."""
        queries = np.atleast_2d(queries)
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {queries.shape[1]}, the index {self.dim}")
        if exclude is not None and len(exclude) != len(queries):
            raise ValueError(f"{len(exclude)} exclude sets for {len(queries)} queries")
        if k <= 0 or not len(self) or not len(queries):
            return [[] for _ in range(len(queries))], [[] for _ in range(len(queries))]
        extra = max((len(s) for s in exclude), default=0) if exclude else 0
        fetch = min(k + extra, len(self))
        faiss.omp_set_num_threads(self.config.threads)
        scores, rows = self._index.search(normalise(queries), fetch)
        out_ids: list[list[str]] = []
        out_scores: list[list[float]] = []
        for i in range(len(queries)):
            drop = exclude[i] if exclude else ()
            row_ids, row_scores = [], []
            for r, s in zip(rows[i].tolist(), scores[i].tolist()):
                if r < 0:
                    break
                news = self.ids[r]
                if news in drop:
                    continue
                row_ids.append(news)
                row_scores.append(s)
                if len(row_ids) == k:
                    break
            out_ids.append(row_ids)
            out_scores.append(row_scores)
        return out_ids, out_scores

    def save(self, directory: str | Path) -> Path:
        """Write ``index.faiss``, ``ids.parquet``, ``vectors.npy`` and ``meta.json`` atomically to ``directory``."""
        directory = Path(directory)
        with staged_dir(directory) as staging:
            faiss.write_index(self._index, str(staging / "index.faiss"))
            pq.write_table(pa.table({"id": pa.array(self.ids, pa.string())}), staging / "ids.parquet")
            np.save(staging / "vectors.npy", self.vectors)
            meta = {"kind": self.kind, "dim": self.dim, "model_version": self.model_version, "n": len(self),
                    "config": asdict(self.config)}
            (staging / "meta.json").write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> NewsIndex:
        """Read an index written by ``save``."""
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"no news index at {directory} (missing meta.json)")
        meta = json.loads(meta_path.read_text())
        known = {f.name for f in fields(IndexConfig)}
        config = IndexConfig(**{k: v for k, v in meta["config"].items() if k in known})
        index = faiss.read_index(str(directory / "index.faiss"))
        set_search_params(index, meta["kind"], config)
        ids = pq.read_table(directory / "ids.parquet").column("id").to_pylist()
        vectors = np.load(directory / "vectors.npy")
        return cls(index, ids, vectors, meta["kind"], config, meta.get("model_version", ""))


@dataclass(frozen=True)
class RefreshStats:
    """What ``refresh_index`` did: ``n_added`` counts news absent from the previous index (all of them when
    there was none); ``reason`` says why it rebuilt, or "incremental"."""

    kind: str
    n_total: int
    n_added: int
    rebuilt: bool
    reason: str
    seconds: float


def _rebuild_reason(previous: NewsIndex | None, table: EmbeddingTable, config: IndexConfig,
                    model_version: str, normalised: np.ndarray) -> str | None:
    if previous is None:
        return "no previous index"
    if previous.model_version != model_version:
        return "encoder version changed"
    if previous.dim != table.dim:
        return f"dimension changed {previous.dim}->{table.dim}"
    kind = choose_kind(len(table.ids), config)
    if previous.kind != kind:
        return f"kind changed {previous.kind}->{kind}"
    if previous.config.structure(kind) != config.structure(kind):
        return "index config changed"
    pos = table.index()
    rows = np.array([pos.get(i, -1) for i in previous.ids], dtype=np.int64)
    present = rows >= 0
    same = np.zeros(len(rows), dtype=bool)
    same[present] = (normalised[rows[present]] == previous.vectors[present]).all(axis=1)
    bad = int((~same).sum())
    if bad:
        return f"{bad} news removed or changed"
    return None


def refresh_index(previous: NewsIndex | None, table: EmbeddingTable, config: IndexConfig,
                  model_version: str) -> tuple[NewsIndex, RefreshStats]:
    """Bring an index up to date with ``table``: append the new news when nothing else changed, else rebuild.

    Appending needs the same encoder version, dimension, kind (as ``choose_kind`` picks it now) and build
    config, and every previously indexed news still in ``table`` with an identical (normalised) vector.
    """
    start = time.perf_counter()
    normalised = normalise(table.vectors)
    reason = _rebuild_reason(previous, table, config, model_version, normalised)
    n_new = len(table.ids) if previous is None else len(set(table.ids).difference(previous.ids))
    if reason is not None:
        kind = choose_kind(len(table.ids), config)
        index = NewsIndex(make_faiss_index(kind, normalised, config), list(table.ids), normalised, kind,
                          config, model_version)
    else:
        assert previous is not None
        known = set(previous.ids)
        rows = [i for i, news in enumerate(table.ids) if news not in known]
        faiss.omp_set_num_threads(config.threads)
        cloned = faiss.clone_index(previous._index)  # the previous index stays usable (and unchanged)
        set_search_params(cloned, previous.kind, config)
        index = NewsIndex(cloned, list(previous.ids), previous.vectors, previous.kind, config, model_version)
        if rows:
            index.add([table.ids[i] for i in rows], table.vectors[rows])
        reason = "incremental"
    stats = RefreshStats(kind=index.kind, n_total=len(index), n_added=n_new, rebuilt=reason != "incremental",
                         reason=reason, seconds=time.perf_counter() - start)
    return index, stats
