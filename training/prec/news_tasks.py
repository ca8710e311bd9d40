"""News pre-training tasks: which are on, batch construction (MNTP masking, NVA view swaps, NCP labels)
and the task heads."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from training.prec.config import NewsPretrainConfig
from training.prec.masking import IGNORE_INDEX, mask_tokens
from training.prec.tokenization import MASK, NewsTokenizer, pad_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewsTasks:
    """Enabled news tasks with their loss weights (0 = off)."""

    mntp: float
    nva: float
    ncp: float
    subcategory: float

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n in ("mntp", "nva", "ncp", "subcategory") if getattr(self, n) > 0)


def _usable_labels(news: pd.DataFrame, column: str) -> bool:
    if column not in news.columns:
        return False
    values = news[column].fillna("").astype(str)
    return values[values != ""].nunique() >= 2


def resolve_news_tasks(config: NewsPretrainConfig, news: pd.DataFrame) -> NewsTasks:
    """Switch off (with a warning) tasks whose data is absent; raise when nothing is left."""
    nva, ncp, sub = config.weight_nva, config.weight_ncp, config.weight_subcategory
    if nva > 0 and len(config.views) < 2:
        log.warning("NVA switched off: it needs at least two views, config has %s", config.views)
        nva = 0.0
    if ncp > 0 and not _usable_labels(news, "category"):
        log.warning("NCP switched off: the news table has fewer than two non-empty categories")
        ncp = 0.0
    if sub > 0 and not _usable_labels(news, "subcategory"):
        log.warning("NCP subcategory head switched off: fewer than two non-empty subcategories")
        sub = 0.0
    tasks = NewsTasks(mntp=config.weight_mntp, nva=nva, ncp=ncp, subcategory=sub)
    if not tasks.names:
        raise ValueError("all news pre-training tasks are switched off")
    return tasks


def label_codes(values: pd.Series, classes: list[str]) -> np.ndarray:
    """Integer codes of ``values`` in ``classes``; unknown/empty -> -100 (ignored by the loss)."""
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index.get(v, IGNORE_INDEX) for v in values.fillna("").astype(str)], dtype=np.int64)


def label_classes(values: pd.Series) -> list[str]:
    return sorted(set(values.fillna("").astype(str)) - {""})


class NewsBatchCollator:
    """Builds task batches from news indices into a tokenised corpus.

    ``views[i][v]`` are the token ids of view ``v`` of news ``i``. Training batches draw fresh randomness;
    validation batches (``train=False``) are seeded by their indices so validation is repeatable.
    """

    def __init__(self, views: list[list[list[int]]], tokenizer: NewsTokenizer, config: NewsPretrainConfig,
                 tasks: NewsTasks, pool: np.ndarray, categories: np.ndarray | None = None,
                 subcategories: np.ndarray | None = None, train: bool = True) -> None:
        self.views, self.tokenizer, self.config, self.tasks = views, tokenizer, config, tasks
        self.pool = np.asarray(pool)
        self.categories, self.subcategories = categories, subcategories
        self.train = train
        self.rng = np.random.default_rng(config.seed)
        generic = tokenizer.tokenizer.token_to_id(MASK)
        self.mask_by_view = torch.tensor([generic] + tokenizer.view_mask_ids, dtype=torch.long)
        self.random_ids = torch.from_numpy(tokenizer.regular_ids)

    def _swap(self, i: int, rng: np.random.Generator) -> tuple[list[list[int]], int, list[bool]]:
        """NVA: replace 1..n_views-1 views of news ``i`` with another news' (donor -1: unchanged)."""
        n_views = len(self.views[i])
        for _ in range(8):
            donor = int(self.pool[rng.integers(len(self.pool))])
            if donor == i:
                continue
            swapped = np.zeros(n_views, dtype=bool)
            swapped[rng.choice(n_views, size=int(rng.integers(1, n_views)), replace=False)] = True
            if any(self.views[donor][v] != self.views[i][v] for v in np.flatnonzero(swapped)):
                views = [self.views[donor][v] if swapped[v] else self.views[i][v] for v in range(n_views)]
                return views, donor, swapped.tolist()
        return self.views[i], -1, [False] * n_views

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rng = self.rng if self.train else np.random.default_rng([self.config.seed, *map(int, indices)])
        sequences, donors, swapped_views = [], [], []
        n_views = len(self.config.views)
        for i in indices:
            views, donor, swapped = self.views[i], -1, [False] * n_views
            if self.tasks.nva > 0 and rng.random() < self.config.nva_prob:
                views, donor, swapped = self._swap(int(i), rng)
            sequences.append(self.tokenizer.assemble(views, self.config.max_len))
            donors.append(donor)
            swapped_views.append(swapped)
        batch = {k: torch.from_numpy(v) for k, v in pad_batch(sequences, self.tokenizer.pad_id).items()}
        donor_t = torch.tensor(donors, dtype=torch.long)
        aligned = donor_t < 0
        batch.update(index=torch.tensor(list(indices), dtype=torch.long), nva_donor=donor_t,
                     nva_swapped=torch.tensor(swapped_views, dtype=torch.bool), nva_label=aligned.float())
        if self.tasks.mntp > 0:
            ids = batch["input_ids"]
            maskable = (batch["view_ids"] > 0) & (ids != self.tokenizer.sep_id) & (ids != self.tokenizer.pad_id)
            generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
            batch["masked_ids"], batch["mntp_labels"] = mask_tokens(
                ids, maskable, self.mask_by_view[batch["view_ids"]], self.random_ids, self.config.mask_prob,
                self.config.mask_replace_prob, self.config.mask_random_prob, generator)
        for key, labels in (("category", self.categories), ("subcategory", self.subcategories)):
            if labels is not None:
                values = torch.from_numpy(labels[np.asarray(indices)])
                batch[key] = torch.where(aligned, values, torch.full_like(values, IGNORE_INDEX))
        return batch


class NewsTaskHeads(nn.Module):
    """MNTP MLP head (decoder tied to the word embeddings), NVA binary head, NCP classifiers."""

    def __init__(self, hidden: int, vocab_size: int, tasks: NewsTasks, n_categories: int = 0,
                 n_subcategories: int = 0) -> None:
        super().__init__()
        self.mntp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden)) \
            if tasks.mntp > 0 else None
        self.mntp_bias = nn.Parameter(torch.zeros(vocab_size)) if tasks.mntp > 0 else None
        self.nva = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)) \
            if tasks.nva > 0 else None
        self.ncp = nn.Linear(hidden, n_categories) if tasks.ncp > 0 else None
        self.subcategory = nn.Linear(hidden, n_subcategories) if tasks.subcategory > 0 else None

    def mntp_logits(self, states: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        assert self.mntp is not None, "the heads were built without the MNTP task"
        return F.linear(self.mntp(states), word_embeddings, self.mntp_bias)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy and accuracy over rows whose label is not -100 (0 loss when none are)."""
    valid = labels != IGNORE_INDEX
    if not bool(valid.any()):
        return logits.sum() * 0.0, torch.tensor(float("nan"))
    logits, labels = logits[valid], labels[valid]
    return F.cross_entropy(logits, labels), (logits.argmax(-1) == labels).float().mean()
