"""Linear-probe category accuracy: pre-trained encoder vs the same architecture untrained vs TF-IDF."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from training.prec.encode_cache import news_vectors
from training.prec.news_encoder_store import SPLIT_FILE, SavedNewsEncoder, load_news_encoder
from training.prec.news_model import NewsEncoder
from training.prec.news_views import view_texts


@dataclass(frozen=True)
class ProbeConfig:
    test_fraction: float = 0.2
    seed: int = 0
    max_news: int | None = 20000        # subsample larger catalogues (seeded)
    max_iter: int = 1000
    C: float = 1.0
    tfidf_max_features: int = 50000
    use_pretrain_split: bool = True     # test on the encoder's validation news (never seen by its NCP head)


def probe_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out news split, stratified when every class has at least two news."""
    index = np.arange(len(labels))
    _, counts = np.unique(labels, return_counts=True)
    n_test = int(np.ceil(len(labels) * test_fraction))
    stratify = labels if counts.min() >= 2 and n_test >= len(counts) and len(labels) - n_test >= len(counts) else None
    train, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


def linear_probe_accuracy(features: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                          config: ProbeConfig = ProbeConfig(), scale: bool = True) -> float:
    x_train, x_test = features[train], features[test]
    if scale:
        scaler = StandardScaler().fit(x_train)
        x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    model = LogisticRegression(max_iter=config.max_iter, C=config.C)
    model.fit(x_train, labels[train])
    return float((model.predict(x_test) == labels[test]).mean())


def untrained_copy(encoder: SavedNewsEncoder) -> SavedNewsEncoder:
    """Same architecture and tokenizer, randomly initialised with the encoder's training seed."""
    torch.manual_seed(encoder.config.seed)
    model = NewsEncoder(encoder.model.backbone.config, len(encoder.views), encoder.config.pooling).eval()
    return SavedNewsEncoder(model, encoder.tokenizer, encoder.config, "untrained")


def pretrain_val_ids(encoder: SavedNewsEncoder) -> set[str] | None:
    """News ids the encoder held out for validation during pre-training (None when unknown)."""
    path = encoder.directory / SPLIT_FILE if encoder.directory is not None else None
    if path is None or not path.exists():
        return None
    return set(json.loads(path.read_text())["val_news_ids"])


def category_probe(encoder_dir: str | Path | SavedNewsEncoder, news: pd.DataFrame,
                   config: ProbeConfig = ProbeConfig(), batch_size: int = 256) -> pd.DataFrame:
    """Table with one row per representation (``prec_pretrained``, ``prec_untrained``, ``tfidf``):
    accuracy of a logistic-regression probe predicting ``category`` on held-out news, plus dims and the
    majority-class baseline.

    Held-out news: the encoder's pre-training validation news (``split.json``; its NCP head never saw their
    labels) when present in ``news``, else a seeded (stratified) ``test_fraction`` split.
    """
    news = news[news["category"].fillna("").astype(str) != ""].reset_index(drop=True)
    if config.max_news is not None and len(news) > config.max_news:
        news = news.sample(n=config.max_news, random_state=config.seed).reset_index(drop=True)
    labels = news["category"].astype(str).to_numpy()
    if len(np.unique(labels)) < 2:
        raise ValueError("the category probe needs at least two categories")
    encoder = encoder_dir if isinstance(encoder_dir, SavedNewsEncoder) else load_news_encoder(encoder_dir)
    held_out = pretrain_val_ids(encoder) if config.use_pretrain_split else None
    if held_out:
        is_test = news["news_id"].astype(str).isin(held_out).to_numpy()
        train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if not held_out or len(test) < 2 or len(np.unique(labels[train])) < 2:
        train, test = probe_split(labels, config.test_fraction, config.seed)
    texts = [" ".join(parts) for parts in zip(*view_texts(news, encoder.views))]
    tfidf = TfidfVectorizer(max_features=config.tfidf_max_features, sublinear_tf=True)
    tfidf_train = tfidf.fit_transform([texts[i] for i in train])
    tfidf_all = tfidf.transform(texts)
    representations = {
        "prec_pretrained": (news_vectors(encoder, news, batch_size), True),
        "prec_untrained": (news_vectors(untrained_copy(encoder), news, batch_size), True),
        "tfidf": (tfidf_all, False),
    }
    majority = pd.Series(labels[train]).value_counts().index[0]
    rows = []
    for name, (features, scale) in representations.items():
        rows.append({
            "representation": name,
            "accuracy": linear_probe_accuracy(features, labels, train, test, config, scale=scale),
            "dim": int(features.shape[1]) if name != "tfidf" else int(tfidf_train.shape[1]),
            "n_train": len(train), "n_test": len(test),
            "majority_baseline": float((labels[test] == majority).mean()),
        })
    return pd.DataFrame(rows)
