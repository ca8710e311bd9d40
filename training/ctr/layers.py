"""Shared layer library of the CTR models (FuxiCTR-style building blocks)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from training.ctr.vocabulary import PAD

EMBEDDING_INIT_STD = 1e-2


class FeatureEmbedding(nn.Module):
    """One ``nn.Embedding`` per categorical field; index 0 is padding (zero, no gradient), 1 is OOV."""

    def __init__(self, field_sizes: Mapping[str, int], dim: int) -> None:
        super().__init__()
        self.field_names = tuple(field_sizes)
        tables = {name: nn.Embedding(size, dim, padding_idx=PAD) for name, size in field_sizes.items()}
        self.tables = nn.ModuleDict(tables)
        for table in tables.values():
            nn.init.normal_(table.weight, std=EMBEDDING_INIT_STD)
            with torch.no_grad():
                table.weight[PAD].zero_()

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        """(B, F) indices in ``field_names`` order → (B, F, D)."""
        return torch.stack([self.tables[name](fields[:, i]) for i, name in enumerate(self.field_names)], dim=1)


class MaskedMeanPooling(nn.Module):
    """Mean of a shared embedding over the non-padding ids of a multi-hot sequence (zeros when empty)."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids → (B, D)."""
        return F.embedding_bag(ids, self.embedding.weight, mode="mean", padding_idx=PAD)


class FrozenVectorProjection(nn.Module):
    """A frozen pre-trained vector table (non-persistent buffer) entering through a trainable projection.

    Row ``-1`` means "no vector": the output is then a learned ``missing`` embedding instead. With
    ``normalise`` (the default) the projection is followed by a LayerNorm: a raw linear map of a 256-d
    encoder vector enters the feature interactions at a scale unrelated to the id embeddings' (init std
    ``EMBEDDING_INIT_STD``), which let PREC's +NP fall below the base model (issue 22).
    """

    def __init__(self, vector_dim: int, dim: int, normalise: bool = True) -> None:
        super().__init__()
        self.vector_dim = vector_dim
        self.register_buffer("vectors", torch.zeros(0, vector_dim), persistent=False)
        self.projection = nn.Linear(vector_dim, dim)
        self.norm = nn.LayerNorm(dim) if normalise else nn.Identity()
        self.missing = nn.Parameter(torch.randn(dim) * EMBEDDING_INIT_STD)

    def project(self, vectors: torch.Tensor) -> torch.Tensor:
        """(N, vector_dim) frozen vectors → (N, D) model inputs (projection, then the norm)."""
        return self.norm(self.projection(vectors))

    def set_vectors(self, vectors: np.ndarray | torch.Tensor) -> None:
        """Replace the frozen table (float32, shape (n, vector_dim)); never trained."""
        if isinstance(vectors, np.ndarray):
            array = np.ascontiguousarray(vectors, dtype=np.float32)
            vectors = torch.from_numpy(array if array.flags.writeable else array.copy())
        vectors = vectors.detach().float()
        if vectors.ndim != 2 or vectors.shape[1] != self.vector_dim:
            raise ValueError(f"expected vectors of shape (n, {self.vector_dim}), got {tuple(vectors.shape)}")
        self.vectors = vectors.to(self.projection.weight.device)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """(B,) table rows (-1 = missing) → (B, D)."""
        found = rows >= 0
        if self.vectors.shape[0] == 0:
            found = torch.zeros_like(found)
            vec = torch.zeros(rows.shape[0], self.vector_dim, device=rows.device)
        else:
            vec = self.vectors[rows.clamp(min=0)] * found.unsqueeze(-1)
        return torch.where(found.unsqueeze(-1), self.project(vec), self.missing.expand(rows.shape[0], -1))


class MLP(nn.Module):
    """Linear → ReLU → Dropout blocks; ``output_dim`` is the last hidden width."""

    def __init__(self, input_dim: int, hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(input_dim, width), nn.ReLU(), nn.Dropout(dropout)]
            input_dim = width
        self.net = nn.Sequential(*layers)
        self.output_dim = input_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CrossNetwork(nn.Module):
    """DCN (v1) cross layers: ``x_{l+1} = x_0 · (x_l^T w_l) + b_l + x_l``."""

    def __init__(self, input_dim: int, num_layers: int) -> None:
        super().__init__()
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(input_dim) * input_dim ** -0.5)
                                         for _ in range(num_layers)])
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(input_dim)) for _ in range(num_layers)])

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for w, b in zip(self.weights, self.biases):
            x = x0 * (x @ w).unsqueeze(-1) + b + x
        return x


class InnerProduct(nn.Module):
    """Pairwise inner products of field embeddings (IPNN): (B, F, D) → (B, F·(F-1)/2)."""

    rows: torch.Tensor  # buffers: the upper triangle's row and column indices
    cols: torch.Tensor

    def __init__(self, num_fields: int) -> None:
        super().__init__()
        rows, cols = torch.triu_indices(num_fields, num_fields, offset=1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.output_dim = int(rows.numel())

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return (emb[:, self.rows] * emb[:, self.cols]).sum(dim=-1)


class FMSecondOrder(nn.Module):
    """Factorisation-machine pairwise term ``½ Σ_d ((Σ_f e_fd)² − Σ_f e_fd²)``: (B, F, D) → (B, 1)."""

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        square_of_sum = emb.sum(dim=1).pow(2)
        sum_of_square = emb.pow(2).sum(dim=1)
        return 0.5 * (square_of_sum - sum_of_square).sum(dim=-1, keepdim=True)
