"""A tiny PREC news encoder (trained once per session on synthetic news) and a small toy news table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders.prec import synthetic_news

TOY_CATEGORIES = ("sports", "finance", "health")


@pytest.fixture(scope="session")
def prec_dir(tmp_path_factory):
    """PREC news encoder (hidden 32, 1 layer, max_len 32, views title + abstract), one epoch on synthetic news."""
    from training.prec.config import NewsPretrainConfig
    from training.prec.news_pretrainer import train_news_encoder

    config = NewsPretrainConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_len=32,
                                vocab_size=300, min_frequency=1, batch_size=16, max_epochs=1, progress_bar=False,
                                torch_threads=1)
    return train_news_encoder(synthetic_news(150, n_categories=3, seed=1), config,
                              tmp_path_factory.mktemp("prec_news_encoder")).encoder_dir


def make_toy_news(n: int, seed: int = 0) -> pd.DataFrame:
    """News whose title and abstract draw from a 6-word pool of their category (words known to the PREC
    tokenizer: ``synthetic_news`` uses the same pools), so "same category" is learnable in a few steps."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        category = TOY_CATEGORIES[i % len(TOY_CATEGORIES)]
        pool = [f"{category[:3]}{j}" for j in range(6)]
        rows.append({"news_id": f"T{i}", "category": category, "subcategory": category,
                     "title": " ".join(rng.choice(pool, 4)), "abstract": " ".join(rng.choice(pool, 6)), "url": "",
                     "title_entities": "[]", "abstract_entities": "[]"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def toy_news() -> pd.DataFrame:
    return make_toy_news(90)
