"""DCN (Wang et al. 2017): a cross network and a deep MLP in parallel over the flattened embeddings."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from training.ctr.base_model import CtrModel
from training.ctr.layers import MLP, CrossNetwork


class DCN(CtrModel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        flat = self.num_fields * self.config.embedding_dim
        self.cross = CrossNetwork(flat, self.config.cross_layers)
        self.deep = MLP(flat, self.config.mlp_hidden, self.config.dropout)
        self.output = nn.Linear(flat + self.deep.output_dim, 1)

    def interact(self, emb: torch.Tensor) -> torch.Tensor:
        x = emb.flatten(1)
        return self.output(torch.cat([self.cross(x), self.deep(x)], dim=-1)).squeeze(-1)
