"""PREC user encoder: frozen news vectors of the click history (+ profile views) -> Transformer -> mean pool.

Sequence: ``[USR] item_1 ... item_L [region] [device]``. Item embeddings come from a frozen news-vector
table (a non-persistent buffer, swapped in with ``set_news_table``) projected to ``hidden``; learned
vectors in news space stand for [PAD]/[UNK]/[MASK]. View ids: 0 [USR], 1 history, 2.. profile views.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from training.prec.config import UserPretrainConfig
from training.prec.user_data import ITEM_OFFSET, ITEM_PAD


class UserEncoder(nn.Module):
    def __init__(self, news_dim: int, config: UserPretrainConfig, profile_sizes: list[int] | None = None) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.news_dim, self.hidden_size = news_dim, hidden
        self.special_items = nn.Parameter(torch.randn(ITEM_OFFSET, news_dim) * 0.02)
        self.register_buffer("news_table", torch.zeros(0, news_dim), persistent=False)
        self.item_projection = nn.Linear(news_dim, hidden)
        self.user_token = nn.Parameter(torch.randn(hidden) * 0.02)
        self.positions = nn.Embedding(config.max_history + 1, hidden)
        profile_sizes = list(profile_sizes or [])
        self.views = nn.Embedding(2 + len(profile_sizes), hidden)
        self.profile_embeddings = nn.ModuleList(nn.Embedding(size, hidden) for size in profile_sizes)
        layer = nn.TransformerEncoderLayer(hidden, config.num_heads, config.intermediate_size, config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        for emb in (self.positions, self.views, *self.profile_embeddings):
            nn.init.normal_(emb.weight, std=0.02)

    @property
    def n_profile_views(self) -> int:
        return len(self.profile_embeddings)

    def set_news_table(self, vectors: np.ndarray | torch.Tensor) -> None:
        """Install the (frozen) news vectors; row ``r`` is item index ``ITEM_OFFSET + r``."""
        table = vectors if torch.is_tensor(vectors) else torch.from_numpy(np.asarray(vectors, dtype=np.float32))
        if table.ndim != 2 or table.shape[1] != self.news_dim:
            raise ValueError(f"news table must be (n, {self.news_dim}), got {tuple(table.shape)}")
        self.news_table = table.to(self.special_items.device, torch.float32)

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """News-space vectors of item indices (specials are learned, news rows frozen)."""
        is_news = items >= ITEM_OFFSET
        news_rows = (items - ITEM_OFFSET).clamp_min(0)
        news = self.news_table[news_rows] if len(self.news_table) else torch.zeros(
            *items.shape, self.news_dim, device=items.device)
        special = self.special_items[items.clamp_max(ITEM_OFFSET - 1)]
        return torch.where(is_news.unsqueeze(-1), news, special)

    def hidden_states(self, items: torch.Tensor, profile: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """States ``(B, 1 + L + P, H)`` and the validity mask ``(B, 1 + L + P)``."""
        batch, length = items.shape
        device = items.device
        item_states = self.item_projection(self.item_vectors(items))
        item_states = item_states + self.positions(torch.arange(1, length + 1, device=device)) + \
            self.views.weight[1]
        parts = [(self.user_token + self.views.weight[0]).expand(batch, 1, -1), item_states]
        valid = [torch.ones(batch, 1, dtype=torch.bool, device=device), items != ITEM_PAD]
        if self.n_profile_views and profile is not None:
            tokens = [emb(profile[:, j]) + self.views.weight[2 + j] for j, emb in enumerate(self.profile_embeddings)]
            parts.append(torch.stack(tokens, dim=1))
            valid.append(torch.ones(batch, len(tokens), dtype=torch.bool, device=device))
        states = torch.cat(parts, dim=1)
        mask = torch.cat(valid, dim=1)
        states = self.norm(self.transformer(states, src_key_padding_mask=~mask))
        return states, mask

    @staticmethod
    def pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def forward(self, items: torch.Tensor, profile: torch.Tensor | None = None) -> torch.Tensor:
        """User vectors ``(B, H)``: average over [USR], history items and profile tokens."""
        states, mask = self.hidden_states(items, profile)
        return self.pool(states, mask)
