"""train_news_encoder output and the encode-once cache of encode_news."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from training.embedding_table import EmbeddingTable
from training.prec.config import NewsPretrainConfig
from training.prec.encode_cache import chunk_bounds, encode_news, length_bucketed_batches, news_vectors
from training.prec.news_encoder_store import load_news_encoder, save_news_encoder
from training.prec.news_pretrainer import train_news_encoder
from training.prec.probe import category_probe

WORDS = ["goal match team coach league", "stock market bank rate profit", "doctor virus care diet sleep"]
CATS = ["sports", "finance", "health"]


def make_news(n: int, start: int = 0) -> pd.DataFrame:
    rows = []
    for i in range(start, start + n):
        w = WORDS[i % 3].split()
        rows.append({"news_id": f"N{i}", "category": CATS[i % 3], "subcategory": "s",
                     "title": " ".join(w[(i + k) % 5] for k in range(3 + i % 4)) + f" w{i}",
                     "abstract": "" if i % 7 == 0 else " ".join(w[(i * 2 + k) % 5] for k in range(5 + i % 9)),
                     "url": "", "title_entities": "[]", "abstract_entities": "[]"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("news_encoder")
    config = NewsPretrainConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_len=32,
                                vocab_size=300, min_frequency=1, batch_size=16, max_epochs=2,
                                progress_bar=False, early_stopping_patience=1)
    result = train_news_encoder(make_news(60), config, out)
    return result


def test_train_news_encoder_writes_a_self_contained_encoder(trained):
    d = trained.encoder_dir
    for name in ("manifest.json", "config.json", "backbone_config.json", "tokenizer.json", "model.safetensors",
                 "metrics.json", "split.json"):
        assert (d / name).exists(), name
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["model_version"] == trained.model_version and len(trained.model_version) == 16
    assert trained.tasks == ("mntp", "nva", "ncp")
    assert (trained.n_train, trained.n_val) == (48, 12)
    for task in trained.tasks:
        assert np.isfinite(trained.metrics[f"val/{task}_loss"])
        assert 0.0 <= trained.metrics[f"val/{task}_acc"] <= 1.0
    assert trained.global_step > 0
    assert trained.best_checkpoint is not None and trained.best_checkpoint.exists()
    encoder = load_news_encoder(d)
    assert encoder.model_version == trained.model_version and encoder.dim == 32
    val_ids = json.loads((d / "split.json").read_text())["val_news_ids"]
    assert len(val_ids) == 12
    # the probe tests on the news held out from pre-training (NCP never saw their labels)
    table = category_probe(d, make_news(60))
    assert table["n_test"].tolist() == [12, 12, 12] and table["n_train"].tolist() == [48, 48, 48]


def test_encode_news_shapes_alignment_and_cache(trained, tmp_path):
    news = make_news(30)
    table, stats = encode_news(trained.encoder_dir, news, tmp_path / "cache", batch_size=8)
    assert isinstance(table, EmbeddingTable)
    assert table.ids == news["news_id"].tolist() and table.vectors.shape == (30, 32)
    assert (stats.n_total, stats.n_encoded, stats.n_cached, stats.n_duplicates) == (30, 30, 0, 0)
    assert stats.tokens > 30 and stats.seconds > 0
    # rows line up with ids: same vectors as an uncached pass, also for shuffled input
    reference = news_vectors(load_news_encoder(trained.encoder_dir), news)
    np.testing.assert_allclose(table.vectors, reference, atol=1e-5)
    shuffled = news.sample(frac=1.0, random_state=3)
    table2, stats2 = encode_news(trained.encoder_dir, shuffled, tmp_path / "cache")
    assert (stats2.n_encoded, stats2.n_cached) == (0, 30)  # cache hit on rerun
    assert table2.ids == shuffled["news_id"].tolist()
    np.testing.assert_array_equal(table2.lookup(table.ids)[0], table.vectors)

    changed = news.copy()
    changed.loc[4, "title"] = "a completely rewritten headline"
    new_rows = make_news(3, start=100)
    table3, stats3 = encode_news(trained.encoder_dir, pd.concat([changed, new_rows]), tmp_path / "cache")
    assert (stats3.n_total, stats3.n_encoded, stats3.n_cached) == (33, 4, 29)
    assert not np.allclose(table3.vectors[4], table.vectors[4])
    np.testing.assert_array_equal(table3.vectors[:4], table.vectors[:4])


def test_identical_content_is_encoded_once(trained, tmp_path):
    news = make_news(6)
    twins = news.iloc[[1, 2]].assign(news_id=["X1", "X2"])
    table, stats = encode_news(trained.encoder_dir, pd.concat([news, twins]), tmp_path / "cache")
    assert (stats.n_total, stats.n_encoded, stats.n_duplicates, stats.n_cached) == (8, 6, 2, 0)
    np.testing.assert_array_equal(table.vectors[6], table.vectors[1])


def test_new_model_version_invalidates_the_cache(trained, tmp_path):
    news = make_news(10)
    encode_news(trained.encoder_dir, news, tmp_path / "cache")
    encoder = load_news_encoder(trained.encoder_dir)
    with torch.no_grad():
        encoder.model.view_embeddings.weight.add_(0.5)
    version = save_news_encoder(encoder.model, encoder.tokenizer, encoder.config, tmp_path / "v2")
    assert version != trained.model_version
    table, stats = encode_news(tmp_path / "v2", news, tmp_path / "cache")
    assert (stats.n_encoded, stats.n_cached, stats.model_version) == (10, 0, version)
    _, again = encode_news(trained.encoder_dir, news, tmp_path / "cache")  # old version still cached
    assert again.n_encoded == 0


def test_length_bucketed_batches_group_similar_lengths():
    lengths = [3, 50, 4, 49, 5, 48, 6, 47]
    batches = length_bucketed_batches(lengths, 4)
    assert sorted(np.concatenate(batches).tolist()) == list(range(8))
    assert sorted(lengths[i] for i in batches[0]) == [47, 48, 49, 50]
    bounds = chunk_bounds(1000, batch_size=50, chunk_batches=4)
    assert bounds[0] == (0, 100) and bounds[1] == (100, 300) and bounds[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
