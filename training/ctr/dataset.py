"""In-memory batch loading: whole batches are gathered by index tensors (no per-row Python work).

Under DDP every rank walks the same seeded global batches of ``world_size * batch_size`` rows and keeps
its own contiguous share of each, so the ranks see disjoint rows, take the same number of steps, and
their averaged gradient is the one-process gradient of the global batch (``training_step`` weighs each
share's loss by its size in the global batch: ``row_weight``).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from training.ctr.features import CtrFeatures
from training.distributed import rank_and_world_size


class RowShard(NamedTuple):
    """This rank's rows of one global batch and the global batch's size."""

    rows: torch.Tensor
    global_rows: int


class CtrDataset(Dataset[dict[str, torch.Tensor]]):
    """Map-style dataset indexed by a LongTensor of rows; each item is one model batch (a dict)."""

    def __init__(self, features: CtrFeatures) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, shard: RowShard) -> dict[str, torch.Tensor]:
        """Model inputs of the shard's rows plus ``row`` (their indices, to put gathered validation
        scores back in order) and ``row_weight`` (1 / global batch size, to weigh the summed loss)."""
        batch = self.features.batch(shard.rows)
        batch["row"] = shard.rows
        batch["row_weight"] = torch.full((len(shard.rows),), 1.0 / max(shard.global_rows, 1))
        return batch


class CandidateBatchSampler(Sampler[RowShard]):
    """Yields this rank's ``RowShard`` of each global batch; shuffles per epoch and optionally keeps, per
    impression, all positives and at most ``negative_ratio`` × (#positives) randomly drawn negatives of
    the same impression.

    ``batch_size`` is per rank. ``rank``/``world_size`` default to the process group's at iteration time
    (one process: 0/1), so a sampler built before Lightning spawns its ranks shards correctly in each.
    Every rank draws the same rows (same seed and epoch), so the shares are disjoint and cover them.
    """

    def __init__(self, label: torch.Tensor, impression_id: torch.Tensor, batch_size: int, shuffle: bool,
                 negative_ratio: int = 0, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None) -> None:
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.negative_ratio = negative_ratio
        self.seed = seed
        self.epoch = 0
        self.rank, self.world_size = rank, world_size
        self._n = int(label.shape[0])
        if negative_ratio > 0:
            positive = label.numpy() > 0.5
            _, group = np.unique(impression_id.numpy(), return_inverse=True)
            group = group.reshape(-1)
            self._positives = np.flatnonzero(positive)
            self._negatives = np.flatnonzero(~positive)
            self._negative_group = group[self._negatives]
            self._quota = negative_ratio * np.bincount(group, weights=positive).astype(np.int64)
            negatives_per_group = np.bincount(self._negative_group, minlength=len(self._quota))
            self._n = len(self._positives) + int(np.minimum(self._quota, negatives_per_group).sum())

    def _rows(self, rng: np.random.Generator) -> np.ndarray:
        if self.negative_ratio == 0:
            return np.arange(self._n)
        order = np.lexsort((rng.random(len(self._negatives)), self._negative_group))
        grouped = self._negative_group[order]
        index = np.arange(len(grouped))
        first = np.ones(len(grouped), dtype=bool)
        first[1:] = grouped[1:] != grouped[:-1]
        rank = index - np.maximum.accumulate(np.where(first, index, 0))
        kept = self._negatives[order][rank < self._quota[grouped]]
        return np.sort(np.concatenate([self._positives, kept]))

    def _rank_and_world_size(self) -> tuple[int, int]:
        return rank_and_world_size(self.rank, self.world_size)

    def __len__(self) -> int:
        return -(-self._n // (self.batch_size * self._rank_and_world_size()[1]))

    def __iter__(self) -> Iterator[RowShard]:
        rank, world = self._rank_and_world_size()
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        rows = self._rows(rng)
        if self.shuffle:
            rows = rows[rng.permutation(len(rows))]
        rows_t = torch.from_numpy(rows.astype(np.int64))
        for global_batch in torch.split(rows_t, self.batch_size * world):
            # contiguous shares of sizes differing by at most one; a rank may get none of a short last batch
            yield RowShard(torch.tensor_split(global_batch, world)[rank], len(global_batch))


def _whole_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


def make_loader(features: CtrFeatures, batch_size: int, shuffle: bool, negative_ratio: int = 0,
                seed: int = 0, rank: int | None = None,
                world_size: int | None = None) -> DataLoader[dict[str, torch.Tensor]]:
    """DataLoader over ``features`` yielding dict batches (batches are tensor gathers, no worker processes);
    under DDP each rank gets its share of every global batch (see ``CandidateBatchSampler``)."""
    sampler = CandidateBatchSampler(features.label, features.impression_id, batch_size, shuffle,
                                    negative_ratio, seed, rank, world_size)
    # ignore: torch types collate_fn as taking a list of samples; with batch_size=None it gets each sample as is
    return DataLoader(CtrDataset(features), sampler=sampler, batch_size=None,
                      collate_fn=_whole_batch)  # type: ignore[arg-type]
