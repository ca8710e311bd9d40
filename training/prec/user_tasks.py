"""User pre-training tasks: MUTP (masked user-behaviour prediction, token or PUNR behaviour masking), UVA (user view
alignment) and PUNR's generation decoder; batch construction, sampled-softmax scoring and heads.

UVA adaptation: MIND has no explicit multi-view user data, so a user's history is split into two chronological
halves (older / recent) that act as two views; with probability ``uva_prob`` one half (or, when profiles are
given, any non-empty proper subset of {older, recent, profile}) is replaced by another user's, and a binary
head on the user vector predicts whether the views still belong to the same user.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.prec.config import UserPretrainConfig
from training.prec.masking import IGNORE_INDEX, mask_tokens, span_mask
from training.prec.user_data import ITEM_MASK, ITEM_OFFSET, ITEM_PAD, UserSequences

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserTasks:
    """Enabled user tasks with their loss weights (0 = off)."""

    mutp: float
    uva: float
    generation: float

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n in ("mutp", "uva", "generation") if getattr(self, n) > 0)


def resolve_user_tasks(config: UserPretrainConfig, sequences: UserSequences) -> UserTasks:
    """Switch off (with a warning) tasks without data; raise when nothing is left."""
    uva = config.weight_uva
    splittable = sum(len(s) >= 2 for s in sequences.items)
    has_profile = sequences.profile is not None and bool((sequences.profile > 0).any())
    if uva > 0 and splittable < 2 and not has_profile:
        log.warning("UVA switched off: fewer than two users have a history of >= 2 clicks and no profiles")
        uva = 0.0
    tasks = UserTasks(config.weight_mutp, uva, config.weight_generation)
    if not tasks.names:
        raise ValueError("all user pre-training tasks are switched off")
    return tasks


def _pad(rows: list[np.ndarray], value: int) -> torch.Tensor:
    width = max(1, max((len(r) for r in rows), default=0))
    out = np.full((len(rows), width), value, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out)


class UserBatchCollator:
    """Builds user task batches from indices into ``UserSequences`` (validation batches are seeded by their
    indices so validation is repeatable)."""

    def __init__(self, sequences: UserSequences, n_news: int, config: UserPretrainConfig, tasks: UserTasks,
                 pool: np.ndarray, train: bool = True) -> None:
        self.seq, self.n_news, self.config, self.tasks = sequences, n_news, config, tasks
        self.pool, self.train = np.asarray(pool), train
        self.rng = np.random.default_rng(config.seed)
        self.random_items = torch.arange(ITEM_OFFSET, ITEM_OFFSET + max(1, n_news))

    def _views(self, items: np.ndarray, profile: np.ndarray | None) -> dict[str, np.ndarray]:
        half = len(items) // 2
        views: dict[str, np.ndarray] = {"older": items[:half], "recent": items[half:]}
        if profile is not None:
            views["profile"] = profile
        return views

    def _swap(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None, int]:
        """UVA: replace a non-empty proper subset of user ``i``'s views with a donor's (-1: no swap)."""
        items, profile = self.seq.items[i], self.seq.profile[i] if self.seq.profile is not None else None
        for _ in range(8):
            donor = int(self.pool[rng.integers(len(self.pool))])
            if donor == i:
                continue
            d_items = self.seq.items[donor]
            d_profile = self.seq.profile[donor] if self.seq.profile is not None else None
            candidates = []
            if len(items) >= 2 and len(d_items) >= 2:
                candidates += ["older", "recent"]
            if profile is not None and d_profile is not None and not np.array_equal(profile, d_profile):
                candidates.append("profile")
            if len(candidates) < 2:
                continue
            chosen = set(rng.choice(candidates, size=int(rng.integers(1, len(candidates))), replace=False).tolist())
            mine, theirs = self._views(items, profile), self._views(d_items, d_profile)
            new = {k: theirs[k] if k in chosen else mine[k] for k in mine}
            changed = any(not np.array_equal(mine[k], theirs[k]) for k in chosen)
            if changed:
                merged = np.concatenate([new["older"], new["recent"]])
                return merged, new.get("profile"), donor
        return items, profile, -1

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rng = self.rng if self.train else np.random.default_rng([self.config.seed, *map(int, indices)])
        rows: list[np.ndarray] = []
        profiles: list[np.ndarray] = []  # one per row where the sequences have profiles
        donors: list[int] = []
        for i in map(int, indices):
            items = self.seq.items[i]
            profile = self.seq.profile[i] if self.seq.profile is not None else None
            donor = -1
            if self.tasks.uva > 0 and rng.random() < self.config.uva_prob:
                items, profile, donor = self._swap(i, rng)
            rows.append(items[-self.config.max_history:])
            if profile is not None:
                profiles.append(profile)
            donors.append(donor)
        items_t = _pad(rows, ITEM_PAD)
        donor_t = torch.tensor(donors, dtype=torch.long)
        batch = {"index": torch.tensor(list(indices), dtype=torch.long), "items": items_t,
                 "original_items": items_t.clone(), "uva_donor": donor_t, "uva_label": (donor_t < 0).float()}
        if self.seq.profile is not None:
            batch["profile"] = torch.from_numpy(np.stack(profiles).astype(np.int64))
        if self.tasks.mutp > 0:
            batch["items"], batch["mutp_labels"] = self._mask(items_t, rng)
        return batch

    def _mask(self, items: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """MUTP corruption: ``(items, labels)``; labels hold the original item at masked positions, else -100."""
        maskable = items >= ITEM_OFFSET  # padding and [UNK] clicks are never targets
        mask_id = torch.tensor(ITEM_MASK)
        if self.config.masking == "span":
            selected, from_span = torch.zeros_like(maskable), torch.zeros_like(maskable)
            for row, row_maskable in enumerate(maskable.numpy()):
                row_selected, row_spans = span_mask(row_maskable, self.config.span_mask_ratio, self.config.span_share,
                                                    self.config.span_length, rng)
                selected[row], from_span[row] = torch.from_numpy(row_selected), torch.from_numpy(row_spans)
            generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
            corrupted, _ = mask_tokens(items, selected & ~from_span, mask_id, self.random_items, 1.0,
                                       self.config.mask_replace_prob, self.config.mask_random_prob, generator)
            labels = torch.where(selected, items, torch.full_like(items, IGNORE_INDEX))
            return torch.where(from_span, mask_id, corrupted), labels
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return mask_tokens(items, maskable, mask_id, self.random_items, self.config.mask_prob,
                           self.config.mask_replace_prob, self.config.mask_random_prob, generator)


def sampled_softmax(queries: torch.Tensor, targets: torch.Tensor, news_table: torch.Tensor, num_negatives: int,
                    temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE of ``queries`` (N, d) against their target news rows ``targets`` (N,) among the union of all
    targets in the batch and ``num_negatives`` uniformly sampled news (the whole table when it is smaller);
    cosine similarity / temperature. Returns (loss, top-1 accuracy)."""
    n_news = news_table.shape[0]
    if num_negatives >= n_news:
        candidates = torch.arange(n_news, device=targets.device)
    else:
        sampled = torch.randint(n_news, (num_negatives,), device=targets.device)
        candidates = torch.unique(torch.cat([targets, sampled]))  # sorted, duplicates removed
    labels = torch.searchsorted(candidates, targets)
    keys = F.normalize(news_table[candidates], dim=-1)
    logits = F.normalize(queries, dim=-1) @ keys.T / temperature
    return F.cross_entropy(logits, labels), (logits.argmax(-1) == labels).float().mean()


class GenerationDecoder(nn.Module):
    """PUNR generation: a single causal Transformer decoder layer reconstructs the history (teacher forcing)
    from the user vector (its only memory slot)."""

    def __init__(self, news_dim: int, config: UserPretrainConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.bos = nn.Parameter(torch.randn(hidden) * 0.02)
        self.input_projection = nn.Linear(news_dim, hidden)
        self.positions = nn.Embedding(config.max_history, hidden)
        self.layer = nn.TransformerDecoderLayer(hidden, config.num_heads, config.intermediate_size, config.dropout,
                                                activation="gelu", batch_first=True, norm_first=True)
        self.output_projection = nn.Linear(hidden, news_dim)

    def forward(self, user_vectors: torch.Tensor, item_vectors: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Predicted news-space vectors ``(B, L, news_dim)``; position ``t`` sees items ``< t`` only."""
        batch, length, _ = item_vectors.shape
        shifted = torch.cat([self.bos.expand(batch, 1, -1), self.input_projection(item_vectors[:, :-1])], dim=1)
        shifted = shifted + self.positions(torch.arange(length, device=shifted.device))
        causal = torch.ones(length, length, dtype=torch.bool, device=shifted.device).triu(1)
        out = self.layer(shifted, user_vectors.unsqueeze(1), tgt_mask=causal, tgt_is_causal=True,
                         tgt_key_padding_mask=~valid)
        return self.output_projection(out)


class UserTaskHeads(nn.Module):
    def __init__(self, hidden: int, news_dim: int, tasks: UserTasks, config: UserPretrainConfig) -> None:
        super().__init__()
        self.mutp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden),
                                  nn.Linear(hidden, news_dim)) if tasks.mutp > 0 else None
        self.uva = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)) \
            if tasks.uva > 0 else None
        self.generation = GenerationDecoder(news_dim, config) if tasks.generation > 0 else None

