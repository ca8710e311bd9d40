"""Streaming training rows: the training days are read from the prepared parquet tables in record batches.

``config.data_loading = "stream"`` trains from a ``CtrParquetData`` (prepared folder + days) instead of
in-memory frames. Two passes over the files:

1. ``fit_stream`` sums ``FitCounts`` over the batches: the same vocabularies and first-seen times as
   ``FeatureSpace.fit`` on the whole split (counts add up; first-seen times take the minimum).
2. ``CtrStreamDataset`` (an ``IterableDataset``) re-reads the days every epoch, featurises each batch
   with the fitted space, shuffles rows within a bounded buffer (seeded per epoch, day order too) and
   yields global batches of ``world_size * batch_size`` rows, keeping this rank's contiguous share of each:
   the same sharding, ``row_weight`` and step count per rank as ``training.ctr.dataset.CandidateBatchSampler``.
   Every rank reads and featurises all rows (that is what keeps the ranks' step counts equal).

Peak memory is bounded by ``stream_read_rows`` and ``shuffle_buffer_rows`` plus the fitted vocabularies,
the news catalogue and the frozen vector tables; it does not grow with the number of training rows.
The validation split stays an in-memory ``CtrData`` (one day).

Layout: ``impressions.parquet`` and ``histories.parquet`` are either one file or a folder of parquet files
(one per day); both are filtered on ``day``. Within a day, the impressions of one ``impression_id`` must be
contiguous and in the same order as their histories rows (what ``newsforge data prepare`` writes); a
candidate batch whose impression has no histories row in that order raises ``ValueError`` naming the file.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import torch
from torch.utils.data import DataLoader, IterableDataset

from training.ctr.config import CtrConfig
from training.ctr.features import CtrData, CtrFeatures, FeatureSpace, FitCounts, table_index
from training.data.schema import HISTORIES_FILE, IMPRESSIONS_FILE
from training.distributed import rank_and_world_size
from training.embedding_table import EmbeddingTable

log = logging.getLogger(__name__)
T = TypeVar("T")

IMPRESSION_COLUMNS = ["impression_id", "user_id", "time", "news_id", "label"]
HISTORY_COLUMNS = ["impression_id", "time", "history"]
#: Partial ``FitCounts`` kept before they are merged (bounds the fit pass's memory).
_MERGE_EVERY = 32


@dataclass(frozen=True)
class CtrParquetData:
    """A training split left on disk: the ``days`` of the prepared folder ``prepared_dir``.

    ``news`` and the frozen tables are in memory, as in ``CtrData``."""

    prepared_dir: Path
    days: tuple[str, ...]
    news: pd.DataFrame
    news_embeddings: EmbeddingTable | None = None
    user_embeddings: EmbeddingTable | None = None


def _dataset(path: Path, columns: list[str]) -> ds.Dataset:
    """One parquet file, or a folder of them (read in file-name order); checks the needed columns."""
    if path.is_file():
        dataset = ds.dataset(str(path), format="parquet")
    elif path.is_dir():
        files = sorted(str(f) for f in path.glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"{path}: no parquet files")
        dataset = ds.dataset(files, format="parquet")
    else:
        raise FileNotFoundError(f"{path}: no such file or folder")
    missing = [c for c in [*columns, "day"] if c not in dataset.schema.names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return dataset


def _batches(dataset: ds.Dataset, columns: list[str], day: str, rows: int) -> Iterator[pd.DataFrame]:
    scanner = dataset.scanner(columns=columns, filter=ds.field("day") == day, batch_size=rows, use_threads=False)
    for batch in scanner.to_batches():
        if batch.num_rows:
            yield batch.to_pandas()


def _whole_impressions(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Re-cut candidate batches so that no impression is split: the last impression of each batch is
    carried over to the next one."""
    carry: pd.DataFrame | None = None
    for batch in batches:
        if carry is not None:
            batch = pd.concat([carry, batch], ignore_index=True)
        ids = batch["impression_id"].to_numpy()
        cut = len(ids) - int(np.argmax(ids[::-1] != ids[-1])) if (ids != ids[-1]).any() else 0
        carry = batch.iloc[cut:]
        if cut:
            yield batch.iloc[:cut].reset_index(drop=True)
    if carry is not None and len(carry):
        yield carry.reset_index(drop=True)


class _HistoryCursor:
    """Walks a day's histories rows in file order, handing out those of each impressions chunk."""

    def __init__(self, batches: Iterator[pd.DataFrame], path: Path, day: str) -> None:
        self.batches, self.path, self.day = batches, path, day
        self.pending = pd.DataFrame(columns=HISTORY_COLUMNS)
        self.skipped = 0  # histories rows without candidates

    def take(self, impression_ids: np.ndarray) -> pd.DataFrame:
        """Histories rows of the impressions (ids in first-appearance order) of one chunk."""
        wanted = pd.unique(impression_ids)
        last = wanted[-1]
        while not (self.pending["impression_id"].to_numpy() == last).any():
            more = next(self.batches, None)
            if more is None:
                break
            self.pending = more if self.pending.empty else pd.concat([self.pending, more], ignore_index=True)
        index = pd.Index(self.pending["impression_id"].to_numpy())
        if not index.is_unique:
            raise ValueError(f"{self.path} (day {self.day}): more than one histories row for some impression_id")
        pos = index.get_indexer(wanted)
        if (pos < 0).any() or (np.diff(pos) <= 0).any():
            bad = wanted[np.argmax(pos < 0)] if (pos < 0).any() else wanted[1:][np.argmax(np.diff(pos) <= 0)]
            raise ValueError(f"{self.path} (day {self.day}): impression_id {bad} has no histories row in the "
                             f"impressions' order; streaming needs the layout `newsforge data prepare` writes")
        self.skipped += int(pos[-1] + 1 - len(pos))
        rows = self.pending.iloc[pos].reset_index(drop=True)
        self.pending = self.pending.iloc[pos[-1] + 1:].reset_index(drop=True)
        return rows


def iter_chunks(prepared_dir: str | Path, days: list[str] | tuple[str, ...],
                rows: int) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """``(impressions, histories)`` chunks of whole impressions of ``days`` (in the given order), about
    ``rows`` candidate rows each; histories hold exactly the chunk's impressions, in order."""
    prepared_dir = Path(prepared_dir)
    imp_path, hist_path = prepared_dir / IMPRESSIONS_FILE, prepared_dir / HISTORIES_FILE
    imps, hists = _dataset(imp_path, IMPRESSION_COLUMNS), _dataset(hist_path, HISTORY_COLUMNS)
    for day in days:
        cursor = _HistoryCursor(_batches(hists, HISTORY_COLUMNS, day, rows), hist_path, day)
        for chunk in _whole_impressions(_batches(imps, IMPRESSION_COLUMNS, day, rows)):
            yield chunk, cursor.take(chunk["impression_id"].to_numpy())
        if cursor.skipped:
            log.info("%s (day %s): %d histories rows have no candidate rows", hist_path, day, cursor.skipped)


def _progress(iterable: Iterable[T], total: int | None, desc: str) -> Iterable[T]:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency of lightning
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="chunk", leave=False, mininterval=5)


def fit_stream(data: CtrParquetData, config: CtrConfig) -> tuple[FeatureSpace, int]:
    """``FeatureSpace.fit`` of the whole split in one pass over its batches; also its candidate row count."""
    parts: list[FitCounts] = []
    for imps, hists in _progress(iter_chunks(data.prepared_dir, data.days, config.stream_read_rows), None,
                                 "fit features"):
        parts.append(FitCounts.of(imps, hists))
        if len(parts) >= _MERGE_EVERY:
            parts = [FitCounts.merge(parts)]
    if not parts:
        raise ValueError(f"{data.prepared_dir}: no impressions on the training days {', '.join(data.days)}")
    counts = FitCounts.merge(parts)
    return FeatureSpace.from_counts(counts, data.news, config), counts.rows


def _row_tensors(features: CtrFeatures) -> dict[str, torch.Tensor]:
    """One model-input row per candidate (histories expanded per row, as ``CtrFeatures.batch`` gives them)."""
    return features.batch(torch.arange(len(features)))


class CtrStreamDataset(IterableDataset[dict[str, torch.Tensor]]):
    """Global batches of featurised rows read from parquet; yields this rank's share of each (dicts with
    ``row_weight`` = 1 / global batch size, like ``training.ctr.dataset.CtrDataset``).

    ``rank``/``world_size`` default to the process group's at iteration time; ``shuffle=False`` keeps the
    file order (days as given)."""

    def __init__(self, data: CtrParquetData, space: FeatureSpace, num_rows: int, batch_size: int,
                 read_rows: int, buffer_rows: int, shuffle: bool = True, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None) -> None:
        self.data, self.space, self.num_rows = data, space, num_rows
        self.batch_size, self.read_rows, self.buffer_rows = batch_size, read_rows, buffer_rows
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.rank, self.world_size = rank, world_size
        self._news_index = table_index(data.news_embeddings)
        self._user_index = table_index(data.user_embeddings)

    def _rank_and_world_size(self) -> tuple[int, int]:
        return rank_and_world_size(self.rank, self.world_size)

    def __len__(self) -> int:
        return -(-self.num_rows // (self.batch_size * self._rank_and_world_size()[1]))

    def _featurised(self, days: list[str]) -> Iterator[dict[str, torch.Tensor]]:
        for imps, hists in iter_chunks(self.data.prepared_dir, days, self.read_rows):
            chunk = CtrData(imps, hists, self.data.news)
            yield _row_tensors(self.space.transform(chunk, self._news_index, self._user_index))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rank, world = self._rank_and_world_size()
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        days = list(self.data.days)
        if self.shuffle:
            days = [days[i] for i in rng.permutation(len(days))]
        global_rows = self.batch_size * world
        buffer: list[dict[str, torch.Tensor]] = []
        buffered = 0
        for rows in self._featurised(days):
            buffer.append(rows)
            buffered += len(rows["label"])
            if buffered >= self.buffer_rows:
                block = self._mix(buffer, rng)
                full = len(block["label"]) // global_rows * global_rows
                yield from self._shares(block, full, global_rows, rank, world)
                buffer = [{k: v[full:].clone() for k, v in block.items()}]  # frees the block
                buffered = len(block["label"]) - full
        if buffered:
            block = self._mix(buffer, rng)
            yield from self._shares(block, len(block["label"]), global_rows, rank, world)

    def _mix(self, parts: list[dict[str, torch.Tensor]], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        block = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        if not self.shuffle:
            return block
        order = torch.from_numpy(rng.permutation(len(block["label"])))
        return {k: v[order] for k, v in block.items()}

    @staticmethod
    def _shares(block: dict[str, torch.Tensor], end: int, global_rows: int, rank: int,
                world: int) -> Iterator[dict[str, torch.Tensor]]:
        for start in range(0, end, global_rows):
            size = min(global_rows, end - start)
            # contiguous shares of sizes differing by at most one, as CandidateBatchSampler cuts them
            share = torch.tensor_split(torch.arange(start, start + size), world)[rank]
            batch = {k: v[share] for k, v in block.items()}
            batch["row_weight"] = torch.full((len(share),), 1.0 / size)
            yield batch


def make_stream_loader(data: CtrParquetData, config: CtrConfig, space: FeatureSpace, num_rows: int,
                       rank: int | None = None, world_size: int | None = None
                       ) -> DataLoader[dict[str, torch.Tensor]]:
    """Training DataLoader over ``data`` (no worker processes; batches are built by the dataset)."""
    if config.negative_ratio > 0:
        raise ValueError("negative_ratio > 0 needs data_loading='memory' (the stream keeps every candidate)")
    dataset = CtrStreamDataset(data, space, num_rows, config.batch_size, config.stream_read_rows,
                               config.shuffle_buffer_rows, shuffle=True, seed=config.seed,
                               rank=rank, world_size=world_size)
    return DataLoader(dataset, batch_size=None)
