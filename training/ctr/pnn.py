"""PNN (Qu et al. 2016), inner-product variant: [embeddings, pairwise inner products] → MLP."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from training.ctr.base_model import CtrModel
from training.ctr.layers import MLP, InnerProduct


class PNN(CtrModel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        flat = self.num_fields * self.config.embedding_dim
        self.inner_product = InnerProduct(self.num_fields)
        self.deep = MLP(flat + self.inner_product.output_dim, self.config.mlp_hidden, self.config.dropout)
        self.output = nn.Linear(self.deep.output_dim, 1)

    def interact(self, emb: torch.Tensor) -> torch.Tensor:
        x = torch.cat([emb.flatten(1), self.inner_product(emb)], dim=-1)
        return self.output(self.deep(x)).squeeze(-1)
