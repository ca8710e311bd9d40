"""DeepFM (Guo et al. 2017): FM (first order as a linear map of the embeddings + pairwise term) + deep MLP."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from training.ctr.base_model import CtrModel
from training.ctr.layers import MLP, FMSecondOrder


class DeepFM(CtrModel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        flat = self.num_fields * self.config.embedding_dim
        self.first_order = nn.Linear(flat, 1)
        self.fm = FMSecondOrder()
        self.deep = MLP(flat, self.config.mlp_hidden, self.config.dropout)
        self.output = nn.Linear(self.deep.output_dim, 1)

    def interact(self, emb: torch.Tensor) -> torch.Tensor:
        x = emb.flatten(1)
        return (self.first_order(x) + self.fm(emb) + self.output(self.deep(x))).squeeze(-1)
