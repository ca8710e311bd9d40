"""Typed configuration of a CTR model and its training run."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from training.distributed import check_strategy

#: The CTR models, each a ``CtrModel`` subclass in ``training.ctr.registry.MODEL_REGISTRY``.
MODEL_NAMES = ("dcn", "deepfm", "pnn")
#: How training rows are loaded (``training.ctr.stream`` for ``stream``).
DATA_LOADING = ("memory", "stream")
#: PREC plug-in variants (paper Table 2): ``none`` = base, ``news`` = +NP, ``news+user`` = +NP+UP.
PREC_VARIANTS = ("none", "news", "news+user")


@dataclass(frozen=True)
class CtrConfig:
    """Hyper-parameters of one CTR model; ``model`` is one of ``MODEL_NAMES``."""

    model: str = "dcn"                      # one of MODEL_NAMES
    prec: str = "none"                      # "none" | "news" | "news+user"
    vector_norm: bool = True                # PREC vectors enter through Linear then LayerNorm (False: Linear only)
    embedding_dim: int = 16
    mlp_hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.1
    cross_layers: int = 3                   # DCN only
    history_length: int = 50                # keep the last L clicked news of the history
    min_count: int = 2                      # rarer ids go to the OOV bucket (so OOV is trained)
    age_bucket_hours: tuple[float, ...] = (1, 2, 4, 8, 12, 24, 36, 48, 72, 120, 168)
    negative_ratio: int = 0                 # K in 1:K negative sampling per impression; 0 = off
    batch_size: int = 4096
    eval_batch_size: int = 16384
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    max_epochs: int = 10
    patience: int = 2                       # EarlyStopping patience on validation AUC
    seed: int = 42
    accelerator: str = "cpu"                # passed to lightning.Trainer
    strategy: str = "auto"                  # "auto" | "ddp_spawn" | "ddp_fork" | "ddp" (training.distributed)
    devices: int = 1                        # processes per node; batch_size is per process
    num_nodes: int = 1
    progress_bar: bool = True
    data_loading: str = "memory"            # "memory": one in-memory split | "stream": parquet record batches
    stream_read_rows: int = 65_536          # stream: rows per parquet record batch read
    shuffle_buffer_rows: int = 262_144      # stream: rows shuffled together (seeded per epoch)

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.model!r}; choose one of {MODEL_NAMES}")
        if self.prec not in PREC_VARIANTS:
            raise ValueError(f"unknown prec variant {self.prec!r}; choose one of {PREC_VARIANTS}")
        check_strategy(self.strategy, self.devices, self.num_nodes)
        if self.data_loading not in DATA_LOADING:
            raise ValueError(f"data_loading={self.data_loading!r}; expected one of {DATA_LOADING}")
        for name in ("embedding_dim", "history_length", "min_count", "batch_size", "eval_batch_size",
                     "max_epochs", "stream_read_rows", "shuffle_buffer_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.negative_ratio < 0 or self.cross_layers < 0 or self.patience < 0:
            raise ValueError("negative_ratio, cross_layers and patience must be >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        edges = self.age_bucket_hours
        if any(b <= a for a, b in zip(edges, edges[1:])) or any(e <= 0 for e in edges):
            raise ValueError(f"age_bucket_hours must be positive and strictly increasing, got {edges}")

    @property
    def uses_news_vectors(self) -> bool:
        return self.prec in ("news", "news+user")

    @property
    def uses_user_vectors(self) -> bool:
        return self.prec == "news+user"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CtrConfig:
        """Build from a plain mapping (JSON/YAML); an unknown key raises ``ValueError`` naming it."""
        known = {f.name: f for f in fields(cls)}
        unknown = [k for k in values if k not in known]
        if unknown:
            raise ValueError(f"unknown CtrConfig key(s): {', '.join(map(repr, unknown))}")
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(known[k].default, tuple) else v for k, v in values.items()}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> CtrConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
