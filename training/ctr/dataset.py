"""In-memory batch loading: whole batches are gathered by index tensors (no per-row Python work)."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from training.ctr.features import CtrFeatures


class CtrDataset(Dataset):
    """Map-style dataset indexed by a LongTensor of rows; each item is one model batch (a dict)."""

    def __init__(self, features: CtrFeatures) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.features.batch(rows)


class CandidateBatchSampler(Sampler[torch.Tensor]):
    """Yields row-index batches; shuffles per epoch and optionally keeps, per impression, all positives
    and at most ``negative_ratio`` × (#positives) randomly drawn negatives of the same impression."""

    def __init__(self, label: torch.Tensor, impression_id: torch.Tensor, batch_size: int, shuffle: bool,
                 negative_ratio: int = 0, seed: int = 0) -> None:
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.negative_ratio = negative_ratio
        self.seed = seed
        self.epoch = 0
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

    def __len__(self) -> int:
        return -(-self._n // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        rows = self._rows(rng)
        if self.shuffle:
            rows = rows[rng.permutation(len(rows))]
        rows_t = torch.from_numpy(rows.astype(np.int64))
        yield from torch.split(rows_t, self.batch_size)


def _whole_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


def make_loader(features: CtrFeatures, batch_size: int, shuffle: bool, negative_ratio: int = 0,
                seed: int = 0) -> DataLoader:
    """DataLoader over ``features`` yielding dict batches (single process; batches are tensor gathers)."""
    sampler = CandidateBatchSampler(features.label, features.impression_id, batch_size, shuffle,
                                    negative_ratio, seed)
    return DataLoader(CtrDataset(features), sampler=sampler, batch_size=None, collate_fn=_whole_batch)
