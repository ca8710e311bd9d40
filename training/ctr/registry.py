"""The CTR model registry: model name (``CtrConfig.model``, one of ``config.MODEL_NAMES``) → ``CtrModel`` subclass."""
from __future__ import annotations

from collections.abc import Mapping

from training.ctr.base_model import CtrModel
from training.ctr.config import CtrConfig
from training.ctr.dcn import DCN
from training.ctr.deepfm import DeepFM
from training.ctr.pnn import PNN

#: Model name → class; its keys are ``training.ctr.config.MODEL_NAMES`` (a test holds them equal).
MODEL_REGISTRY: dict[str, type[CtrModel]] = {"dcn": DCN, "deepfm": DeepFM, "pnn": PNN}


def build_model(config: CtrConfig, field_sizes: Mapping[str, int], news_vector_dim: int | None = None,
                user_vector_dim: int | None = None) -> CtrModel:
    """Instantiate ``MODEL_REGISTRY[config.model]``."""
    return MODEL_REGISTRY[config.model](config, field_sizes, news_vector_dim, user_vector_dim)
