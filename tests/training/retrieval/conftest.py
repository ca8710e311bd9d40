"""Builders shared by the recall tests: a small live catalogue and a tiny PREC news encoder (random weights)."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from training.prec.config import NewsPretrainConfig
from training.prec.news_encoder_store import load_news_encoder, save_news_encoder
from training.prec.news_model import build_news_encoder
from training.prec.news_pretrainer import build_tokenizer
from training.prec.news_views import view_texts

TITLES = ["storm hits the coast", "lakers win in overtime", "fed raises rates", "storm damage report",
          "rates and mortgages", "coast guard rescue", "overtime thriller ends", "old election recap"]


@pytest.fixture(scope="session")
def catalogue() -> pd.DataFrame:
    """Eight news N1..N8 (news_id, title, abstract, title_entities, category)."""
    ids = [f"N{i}" for i in range(1, len(TITLES) + 1)]
    return pd.DataFrame({"news_id": ids, "title": TITLES, "abstract": [f"about {t}" for t in TITLES],
                         "title_entities": "", "category": "news"})


@pytest.fixture(scope="session")
def tiny_news_encoder(catalogue, tmp_path_factory):
    config = NewsPretrainConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_len=32,
                                views=("title", "abstract"))
    tokenizer = build_tokenizer(config, view_texts(catalogue, config.views))
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("news_encoder")
    save_news_encoder(build_news_encoder(config, tokenizer), tokenizer, config, directory)
    return load_news_encoder(directory, "cpu")
