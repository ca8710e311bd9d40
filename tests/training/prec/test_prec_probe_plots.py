"""Linear-probe table and t-SNE picture."""
from __future__ import annotations

import numpy as np
import pandas as pd

from training.embedding_table import EmbeddingTable
from training.prec.config import NewsPretrainConfig
from training.prec.news_encoder_store import SavedNewsEncoder
from training.prec.news_pretrainer import prepare_news_pretraining
from training.prec.plots import plot_news_tsne
from training.prec.probe import ProbeConfig, category_probe

WORDS = {"sports": "goal match team coach league", "finance": "stock market bank rate profit",
         "health": "doctor virus care diet sleep"}


def make_news(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    cats = list(WORDS)
    rows = []
    for i in range(n):
        cat = cats[i % 3]
        rows.append({"news_id": f"N{i}", "category": cat, "subcategory": cat,
                     "title": " ".join(rng.choice(WORDS[cat].split(), 4)), "abstract": f"story {i}",
                     "url": "", "title_entities": "[]", "abstract_entities": "[]"})
    return pd.DataFrame(rows)


def test_category_probe_table():
    news = make_news(90)
    config = NewsPretrainConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, max_len=24,
                                vocab_size=200, min_frequency=1, progress_bar=False)
    setup = prepare_news_pretraining(news, config)
    encoder = SavedNewsEncoder(setup.module.encoder.eval(), setup.tokenizer, config, "test")
    table = category_probe(encoder, news, ProbeConfig(test_fraction=0.3, seed=1))
    assert table["representation"].tolist() == ["prec_pretrained", "prec_untrained", "tfidf"]
    assert set(table.columns) >= {"accuracy", "dim", "n_train", "n_test", "majority_baseline"}
    assert (table["n_test"] == 27).all() and table.loc[0, "dim"] == 16
    assert table["accuracy"].between(0, 1).all()
    # the category words separate the classes: TF-IDF must beat the majority class by far
    assert table.loc[2, "accuracy"] > table.loc[2, "majority_baseline"] + 0.3


def test_tsne_plot_writes_png(tmp_path):
    news = make_news(45)
    rng = np.random.default_rng(0)
    centres = {c: rng.normal(size=8) * 5 for c in WORDS}
    vectors = np.stack([centres[c] + rng.normal(size=8) for c in news["category"]]).astype(np.float32)
    path = plot_news_tsne(EmbeddingTable(news["news_id"].tolist(), vectors), news, tmp_path / "p" / "tsne.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
