"""Encode-once news vectors (SpeedyFeed style): cached by (content hash of the view text, model version).

Cache layout: ``cache_dir/<model_version>/{vectors.npy, ids.parquet}`` — an EmbeddingTable whose ids are
content hashes. A refresh encodes only news whose content hash is not cached for the current model version,
each distinct content once, in length-bucketed, dynamically padded batches under ``torch.inference_mode``.
"""
from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from training.embedding_table import EmbeddingTable
from training.prec.news_encoder_store import SavedNewsEncoder, load_news_encoder
from training.prec.news_views import content_hashes, view_texts
from training.prec.tokenization import NewsTokenizer, pad_batch
from training.staging import staged_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodeStats:
    """What one ``encode_news`` call did."""

    n_total: int          # news rows in the input (= n_cached + n_encoded + n_duplicates)
    n_encoded: int        # distinct contents run through the model
    n_cached: int         # rows served from the cache as it was before the call
    seconds: float        # wall time of the whole call
    tokens: int           # non-padding tokens run through the model
    n_duplicates: int = 0  # rows sharing their content with another row encoded in this call
    model_version: str = ""

    @property
    def news_per_second(self) -> float:
        return self.n_total / self.seconds if self.seconds > 0 else float("inf")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def length_bucketed_batches(lengths: Sequence[int] | np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (longest first), so padding stays small."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many small lists (its full passes would dominate tokenisation)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def assemble_news(encoder: SavedNewsEncoder, texts: list[list[str]]) -> list[tuple[list[int], list[int]]]:
    """Tokenise per-view texts and assemble the model's input sequences."""
    tokenizer: NewsTokenizer = encoder.tokenizer
    max_len = encoder.config.max_len
    with gc_paused():
        return [tokenizer.assemble(views, max_len) for views in tokenizer.tokenize_views(texts, cap=max_len)]


def chunk_bounds(n: int, batch_size: int, chunk_batches: int = 32) -> list[tuple[int, int]]:
    """Row ranges tokenised as one unit: a small first chunk (the pipeline fills fast), then
    ``chunk_batches`` batches each (length bucketing happens within a chunk)."""
    bounds, start = [], 0
    size = min(2 * batch_size, chunk_batches * batch_size)
    while start < n:
        bounds.append((start, min(n, start + size)))
        start, size = start + size, chunk_batches * batch_size
    return bounds


def encode_texts(encoder: SavedNewsEncoder, texts: list[list[str]], batch_size: int = 256,
                 device: torch.device | str | None = None, progress: bool | None = None,
                 overlap: bool | None = None) -> tuple[np.ndarray, int]:
    """Vectors ``(n, hidden)`` for per-view texts (row-aligned) and the number of tokens encoded.

    Texts are tokenised chunk by chunk and encoded in length-bucketed, dynamically padded batches under
    ``torch.inference_mode``. With ``overlap`` (default: on accelerators) a background thread tokenises the
    next chunk while the model encodes the current one; on CPU both compete for the same cores and the GIL
    (measured: no gain on 2 cores), so by default all texts are tokenised first and bucketed globally.
    """
    n = len(texts[0]) if texts else 0
    model = encoder.model
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device).eval()
    out = np.zeros((n, model.hidden_size), dtype=np.float32)
    if overlap is None:
        overlap = device.type != "cpu"
    bounds = chunk_bounds(n, batch_size) if overlap else ([(0, n)] if n else [])
    n_batches = sum(-(-(stop - start) // batch_size) for start, stop in bounds)
    show = progress if progress is not None else n_batches >= 20
    tokens = 0

    def prepare(bound: tuple[int, int]) -> list[tuple[list[int], list[int]]]:
        return assemble_news(encoder, [column[bound[0]: bound[1]] for column in texts])

    with ThreadPoolExecutor(max_workers=1) as pool, torch.inference_mode(), \
            tqdm(total=n_batches, desc="encode news", unit="batch", disable=not show) as bar:
        pending = pool.submit(prepare, bounds[0]) if bounds and overlap else None
        for k, (start, _) in enumerate(bounds):
            if pending is not None:  # overlap: this bound was submitted one step ahead
                sequences = pending.result()
                pending = pool.submit(prepare, bounds[k + 1]) if k + 1 < len(bounds) else None
            else:
                sequences = prepare(bounds[k])
            tokens += sum(len(ids) for ids, _ in sequences)
            for rows in length_bucketed_batches([len(ids) for ids, _ in sequences], batch_size):
                arrays = pad_batch([sequences[r] for r in rows], encoder.tokenizer.pad_id)
                batch = {key: torch.from_numpy(v).to(device, non_blocking=True) for key, v in arrays.items()}
                out[start + rows] = model(**batch).float().cpu().numpy()
                bar.update(1)
    return out, tokens


def news_vectors(encoder: SavedNewsEncoder, news: pd.DataFrame, batch_size: int = 256,
                 device: torch.device | str | None = None, progress: bool | None = None) -> np.ndarray:
    """Uncached vectors for every row of ``news`` (row-aligned)."""
    return encode_texts(encoder, view_texts(news, encoder.views), batch_size, device, progress)[0]


def query_vectors(encoder: SavedNewsEncoder, queries: Sequence[str], batch_size: int = 256,
                  progress: bool | None = None) -> np.ndarray:
    """Vectors ``(n, hidden)`` for free-text queries, encoded as news whose title is the query and whose
    other views are empty: queries and news then live in the same space (Q' retrieval)."""
    queries = [str(q) for q in queries]
    texts = [queries if view == "title" else [""] * len(queries) for view in encoder.views]
    if "title" not in encoder.views:
        raise ValueError(f"the news encoder has views {encoder.views}; query vectors need its title view")
    return encode_texts(encoder, texts, batch_size, progress=progress)[0]


class NewsVectorCache:
    """Content-hash -> vector store of one model version under ``cache_dir``."""

    def __init__(self, cache_dir: str | Path, model_version: str) -> None:
        self.directory = Path(cache_dir) / model_version

    def load(self) -> EmbeddingTable | None:
        if not (self.directory / "vectors.npy").exists():
            return None
        return EmbeddingTable.load(self.directory)

    def save(self, table: EmbeddingTable) -> None:
        """Write next to the old entry, then swap directories (readers never see half a cache)."""
        with staged_dir(self.directory) as staging:
            table.save(staging)


def encode_news(encoder_dir: str | Path | SavedNewsEncoder, news: pd.DataFrame, cache_dir: str | Path,
                batch_size: int = 256, device: torch.device | str | None = None,
                progress: bool | None = None) -> tuple[EmbeddingTable, EncodeStats]:
    """Vectors for every news row (ids = ``news.news_id`` in input order), encoding only uncached content.

    ``encoder_dir``: a directory written by ``train_news_encoder`` (or an already loaded encoder).
    """
    start = time.perf_counter()
    ids = news["news_id"].astype(str).tolist()
    if len(set(ids)) != len(ids):
        raise ValueError("news_id must be unique in the news table passed to encode_news")
    encoder = encoder_dir if isinstance(encoder_dir, SavedNewsEncoder) else \
        load_news_encoder(encoder_dir, device or default_device())
    texts = view_texts(news, encoder.views)
    hashes = content_hashes(texts, encoder.views)
    cache = NewsVectorCache(cache_dir, encoder.model_version)
    cached = cache.load()
    known = cached.index() if cached is not None else {}
    todo: dict[str, int] = {}  # distinct uncached content hash -> first row holding it
    for row, h in enumerate(hashes):
        if h not in known and h not in todo:
            todo[h] = row
    tokens = 0
    new_vectors = np.zeros((0, encoder.dim), dtype=np.float32)
    if todo:
        rows = list(todo.values())
        new_vectors, tokens = encode_texts(encoder, [[column[r] for r in rows] for column in texts], batch_size,
                                           device, progress)
        merged = EmbeddingTable(
            ids=(cached.ids if cached is not None else []) + list(todo),
            vectors=np.concatenate([cached.vectors, new_vectors]) if cached is not None else new_vectors,
        )
        cache.save(merged)
        known = merged.index()
        cached = merged
    if ids:
        assert cached is not None  # every id's content was cached or has just been encoded
        vectors = cached.vectors[[known[h] for h in hashes]]
    else:
        vectors = np.zeros((0, encoder.dim), np.float32)
    n_new_rows = sum(1 for h in hashes if h in todo)
    stats = EncodeStats(n_total=len(ids), n_encoded=len(todo), n_cached=len(ids) - n_new_rows,
                        seconds=time.perf_counter() - start, tokens=tokens, n_duplicates=n_new_rows - len(todo),
                        model_version=encoder.model_version)
    log.info("encode_news: %d news, %d encoded, %d cached, %.2fs (model %s)", stats.n_total, stats.n_encoded,
             stats.n_cached, stats.seconds, encoder.model_version)
    return EmbeddingTable(ids=ids, vectors=np.ascontiguousarray(vectors, dtype=np.float32)), stats
