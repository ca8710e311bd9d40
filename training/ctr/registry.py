"""The CTR model registry: model name (``CtrConfig.model``) → ``CtrModel`` subclass.

Imports neither the models nor their config, so ``config`` can validate names against it and the
models (``dcn``, ``deepfm``, ``pnn``) can register themselves without an import cycle; importing the
``training.ctr`` package fills it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.ctr.base_model import CtrModel
    from training.ctr.config import CtrConfig

#: Model name (``CtrConfig.model``) → class; filled by ``register_model``.
MODEL_REGISTRY: dict[str, type[CtrModel]] = {}


def register_model(name: str):
    """Class decorator adding a ``CtrModel`` subclass to ``MODEL_REGISTRY`` under ``name``."""
    def add(cls: type[CtrModel]) -> type[CtrModel]:
        MODEL_REGISTRY[name] = cls
        return cls
    return add


def build_model(config: CtrConfig, field_sizes: Mapping[str, int], news_vector_dim: int | None = None,
                user_vector_dim: int | None = None) -> CtrModel:
    """Instantiate ``MODEL_REGISTRY[config.model]``."""
    return MODEL_REGISTRY[config.model](config, field_sizes, news_vector_dim, user_vector_dim)
