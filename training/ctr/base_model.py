"""The base CTR model: field embeddings (+ pooled history, + PREC vectors) → a model-specific head."""
from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch
from torch import nn

from training.ctr.config import CtrConfig
from training.ctr.layers import FeatureEmbedding, FrozenVectorProjection, MaskedMeanPooling
from training.embedding_table import EmbeddingTable


class CtrModel(nn.Module):
    """Embeds all fields into ``(B, num_fields, embedding_dim)``; subclasses implement ``interact``.

    Fields: the categorical ones of ``field_sizes`` (``news_id`` must be among them), the user's history
    pooled over the shared ``news_id`` table, then the projected frozen news vector (``prec`` ``news``)
    and user vector (``news+user``).
    """

    def __init__(self, config: CtrConfig, field_sizes: Mapping[str, int], news_vector_dim: int | None = None,
                 user_vector_dim: int | None = None) -> None:
        super().__init__()
        self.config = config
        dim = config.embedding_dim
        self.embedding = FeatureEmbedding(field_sizes, dim)
        news_table = cast(nn.Embedding, self.embedding.tables["news_id"])  # a ModuleDict of nn.Embedding
        self.history_pooling: nn.Module = MaskedMeanPooling(news_table)
        self.news_vector = self.user_vector = None
        if config.uses_news_vectors:
            if not news_vector_dim:
                raise ValueError(f"prec={config.prec!r} needs news embeddings (news_vector_dim)")
            self.news_vector = FrozenVectorProjection(news_vector_dim, dim, config.vector_norm)
        if config.uses_user_vectors:
            if not user_vector_dim:
                raise ValueError(f"prec={config.prec!r} needs user embeddings (user_vector_dim)")
            self.user_vector = FrozenVectorProjection(user_vector_dim, dim, config.vector_norm)
        self.num_fields = len(field_sizes) + 1 + (self.news_vector is not None) + (self.user_vector is not None)

    def set_frozen_vectors(self, news: EmbeddingTable | None = None, user: EmbeddingTable | None = None) -> None:
        """Install the frozen tables that ``news_vector_row``/``user_vector_row`` index into (None: empty)."""
        for layer, table in ((self.news_vector, news), (self.user_vector, user)):
            if layer is not None:
                layer.set_vectors(table.vectors if table is not None else torch.zeros(0, layer.vector_dim))

    def embed(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(B, num_fields, D)`` field embeddings of a batch from ``CtrFeatures.batch``."""
        parts = [self.embedding(batch["fields"]), self.history_pooling(batch["history"]).unsqueeze(1)]
        if self.news_vector is not None:
            parts.append(self.news_vector(batch["news_vector_row"]).unsqueeze(1))
        if self.user_vector is not None:
            parts.append(self.user_vector(batch["user_vector_row"]).unsqueeze(1))
        return torch.cat(parts, dim=1)

    def interact(self, emb: torch.Tensor) -> torch.Tensor:
        """``(B, F, D)`` → ``(B,)`` logits."""
        raise NotImplementedError

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.interact(self.embed(batch))
