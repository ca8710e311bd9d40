"""Standalone scoring with a saved CTR model artefact.

Artefact layout (a directory)::

    config.json               CtrConfig.to_dict()
    model.pt                  state_dict of the trainable weights (frozen vectors are not in it)
    features.json             field order and sizes, history length, age buckets, PAD/OOV indices
    vocab/<field>.parquet     id → index (user_id, news_id, category, subcategory); 0 = PAD, 1 = OOV
    first_seen.parquet        news_id → first time seen in the training logs (news-age feature)
    news_vectors/             EmbeddingTable of the frozen news vectors used in training (prec news, news+user)
    user_vectors/             EmbeddingTable of the frozen user vectors used in training (prec news+user)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from training.ctr.base_model import CtrModel
from training.ctr.config import CtrConfig
from training.ctr.features import CtrData, CtrFeatures, FeatureSpace, table_index
from training.ctr.registry import build_model
from training.embedding_table import EmbeddingTable

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.pt"
NEWS_VECTORS_DIR = "news_vectors"
USER_VECTORS_DIR = "user_vectors"


class CtrPredictor:
    """A trained model with its feature space and frozen tables; scores MIND-format tables."""

    def __init__(self, model: CtrModel, features: FeatureSpace, config: CtrConfig,
                 news_embeddings: EmbeddingTable | None = None, user_embeddings: EmbeddingTable | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval()
        self.features = features
        self.config = config
        self.device = torch.device(device)
        self.news_embeddings = news_embeddings if config.uses_news_vectors else None
        self.user_embeddings = user_embeddings if config.uses_user_vectors else None
        self._installed: tuple[EmbeddingTable | None, EmbeddingTable | None] | None = None
        self._indexes: dict[int, tuple[EmbeddingTable, pd.Index]] = {}

    def save(self, directory: str | Path) -> Path:
        """Write the artefact described in the module docstring; returns ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory / CONFIG_FILE)
        torch.save({k: v.cpu() for k, v in self.model.state_dict().items()}, directory / WEIGHTS_FILE)
        self.features.save(directory)
        if self.news_embeddings is not None:
            self.news_embeddings.save(directory / NEWS_VECTORS_DIR)
        if self.user_embeddings is not None:
            self.user_embeddings.save(directory / USER_VECTORS_DIR)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> CtrPredictor:
        directory = Path(directory)
        saved = json.loads((directory / CONFIG_FILE).read_text())
        saved.setdefault("vector_norm", False)  # saved before the field existed: a projection without a norm
        config = CtrConfig.from_dict(saved)
        features = FeatureSpace.load(directory)
        news = EmbeddingTable.load(directory / NEWS_VECTORS_DIR) if config.uses_news_vectors else None
        user = EmbeddingTable.load(directory / USER_VECTORS_DIR) if config.uses_user_vectors else None
        model = build_model(config, features.field_sizes(), None if news is None else news.dim,
                            None if user is None else user.dim)
        model.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        return cls(model, features, config, news, user, device)

    def _index(self, table: EmbeddingTable | None) -> pd.Index | None:
        """``table_index`` cached per table object (tables are immutable)."""
        if table is None:
            return None
        cached = self._indexes.get(id(table))
        if cached is None or cached[0] is not table:
            if len(self._indexes) >= 8:
                self._indexes.clear()
            cached = (table, table_index(table))
            self._indexes[id(table)] = cached
        return cached[1]

    def _install(self, news: EmbeddingTable | None, user: EmbeddingTable | None) -> None:
        if self._installed is None or self._installed[0] is not news or self._installed[1] is not user:
            self.model.set_frozen_vectors(news, user)
            self.model.to(self.device)
            self._installed = (news, user)

    def _use_tables(self, news_embeddings: EmbeddingTable | None,
                    user_embeddings: EmbeddingTable | None) -> tuple[EmbeddingTable | None, EmbeddingTable | None]:
        """Install the frozen tables of this call (given ones, else the stored ones; None for tables the
        model does not use) and return them."""
        news_table = news_embeddings if news_embeddings is not None else self.news_embeddings
        user_table = user_embeddings if user_embeddings is not None else self.user_embeddings
        news_table = news_table if self.config.uses_news_vectors else None
        user_table = user_table if self.config.uses_user_vectors else None
        self._install(news_table, user_table)
        return news_table, user_table

    def featurize(self, impressions: pd.DataFrame, histories: pd.DataFrame | None, news: pd.DataFrame,
                  news_embeddings: EmbeddingTable | None = None,
                  user_embeddings: EmbeddingTable | None = None) -> CtrFeatures:
        """Feature tensors for ``impressions`` (tables default to the stored ones; see ``score``)."""
        news_table, user_table = self._use_tables(news_embeddings, user_embeddings)
        data = CtrData(impressions, histories, news)
        return self.features.transform(data, self._index(news_table), self._index(user_table))

    @torch.inference_mode()
    def score_features(self, features: CtrFeatures, batch_size: int | None = None,
                       news_embeddings: EmbeddingTable | None = None,
                       user_embeddings: EmbeddingTable | None = None) -> np.ndarray:
        """Click probabilities of pre-built features, in row order; their vector rows index into the given
        frozen tables (default: the stored ones)."""
        self._use_tables(news_embeddings, user_embeddings)
        batch_size = batch_size or self.config.eval_batch_size
        out = np.empty(len(features), dtype=np.float32)
        for start in range(0, len(features), batch_size):
            rows = torch.arange(start, min(start + batch_size, len(features)))
            batch = {k: v.to(self.device) for k, v in features.batch(rows).items()}
            out[start:start + len(rows)] = torch.sigmoid(self.model(batch)).float().cpu().numpy()
        return out

    def score(self, impressions: pd.DataFrame, histories: pd.DataFrame | None, news: pd.DataFrame,
              news_embeddings: EmbeddingTable | None = None, user_embeddings: EmbeddingTable | None = None,
              batch_size: int | None = None) -> np.ndarray:
        """Click probabilities (float32) aligned with ``impressions`` rows.

        Unknown users/news/categories use the OOV embeddings. ``news_embeddings``/``user_embeddings``
        replace the stored frozen tables for this call (e.g. the user table as of the scored partition);
        ids absent from the table in use get the learned "missing" embedding.
        """
        features = self.featurize(impressions, histories, news, news_embeddings, user_embeddings)
        return self.score_features(features, batch_size, news_embeddings, user_embeddings)
