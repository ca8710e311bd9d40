"""PREC: plug-and-play pre-training of news and user encoders, with encode-once cached vectors.

Typical flow::

    news_result = train_news_encoder(news_df, NewsPretrainConfig(), out_dir / "news_encoder")
    news_vectors, stats = encode_news(news_result.encoder_dir, news_df, cache_dir)
    user_result = train_user_encoder(histories_df, news_vectors, UserPretrainConfig(), out_dir / "user_encoder")
    user_vectors = encode_users(user_result.encoder_dir, histories_df, news_vectors, as_of_day="2019-11-14")

Heavy modules (torch, lightning, transformers) load on first use of an attribute.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "NewsPretrainConfig": "training.prec.config",
    "UserPretrainConfig": "training.prec.config",
    "NEWS_VIEWS": "training.prec.config",
    "train_news_encoder": "training.prec.news_pretrainer",
    "NewsPretrainResult": "training.prec.news_pretrainer",
    "load_news_encoder": "training.prec.news_encoder_store",
    "SavedNewsEncoder": "training.prec.news_encoder_store",
    "encode_news": "training.prec.encode_cache",
    "EncodeStats": "training.prec.encode_cache",
    "news_vectors": "training.prec.encode_cache",
    "query_vectors": "training.prec.encode_cache",
    "train_user_encoder": "training.prec.user_pretrainer",
    "UserPretrainResult": "training.prec.user_pretrainer",
    "encode_users": "training.prec.user_pretrainer",
    "load_user_encoder": "training.prec.user_encoder_store",
    "SavedUserEncoder": "training.prec.user_encoder_store",
    "latest_histories": "training.prec.user_data",
    "category_probe": "training.prec.probe",
    "ProbeConfig": "training.prec.probe",
    "plot_news_tsne": "training.prec.plots",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'training.prec' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
