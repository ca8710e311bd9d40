"""Save / load a trained news encoder as a self-contained directory.

Layout: ``manifest.json`` (kind, model_version, views, hidden_size), ``config.json``
(NewsPretrainConfig), ``backbone_config.json`` (BertConfig), ``tokenizer.json``, ``model.safetensors``;
``train_news_encoder`` adds ``metrics.json``, ``split.json`` and ``lightning/``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import BertConfig

from training.prec.config import NewsPretrainConfig
from training.prec.model_files import content_version, load_weights, read_manifest, save_weights, write_manifest
from training.prec.news_model import NewsEncoder
from training.prec.tokenization import NewsTokenizer

NEWS_ENCODER_KIND = "prec-news-encoder"
BACKBONE_CONFIG_FILE = "backbone_config.json"
CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"  # {"val_news_ids": [...]}: news held out from pre-training


@dataclass
class SavedNewsEncoder:
    """A loaded news encoder with everything needed to encode raw news."""

    model: NewsEncoder
    tokenizer: NewsTokenizer
    config: NewsPretrainConfig
    model_version: str
    directory: Path | None = None

    @property
    def views(self) -> tuple[str, ...]:
        return self.config.views

    @property
    def dim(self) -> int:
        return self.model.hidden_size


def news_model_version(model: NewsEncoder, tokenizer: NewsTokenizer, config: NewsPretrainConfig) -> str:
    """Content hash of the weights, tokenizer and config (changes whenever encodings could change)."""
    return content_version(model.state_dict(), tokenizer.to_json(), json.dumps(config.to_dict(), sort_keys=True))


def save_news_encoder(model: NewsEncoder, tokenizer: NewsTokenizer, config: NewsPretrainConfig,
                      directory: str | Path) -> str:
    """Write the encoder directory; returns its model version."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = save_weights(model, directory)
    tokenizer.save(directory)
    config.save(directory / CONFIG_FILE)
    (directory / BACKBONE_CONFIG_FILE).write_text(model.backbone.config.to_json_string())
    version = content_version(state, tokenizer.to_json(), json.dumps(config.to_dict(), sort_keys=True))
    write_manifest(directory, {
        "kind": NEWS_ENCODER_KIND, "format": 1, "model_version": version, "views": list(config.views),
        "hidden_size": model.hidden_size, "pooling": config.pooling, "pretrained": config.pretrained,
        "torch": torch.__version__,
    })
    return version


def load_news_encoder(directory: str | Path, device: str | torch.device = "cpu") -> SavedNewsEncoder:
    """Load a directory written by ``save_news_encoder`` (no network, no MiniLM package needed)."""
    directory = Path(directory)
    manifest = read_manifest(directory, NEWS_ENCODER_KIND)
    config = NewsPretrainConfig.load(directory / CONFIG_FILE)
    tokenizer = NewsTokenizer.load(directory, len(config.views))
    backbone_config = BertConfig.from_dict(json.loads((directory / BACKBONE_CONFIG_FILE).read_text()))
    model = NewsEncoder(backbone_config, len(config.views), config.pooling)
    load_weights(model, directory)
    model.to(device).eval()
    return SavedNewsEncoder(model, tokenizer, config, manifest["model_version"], directory)
