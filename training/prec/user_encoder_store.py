"""Save / load a trained user encoder.

Layout: ``manifest.json`` (kind, model_version, news_dim, hidden_size, profile views), ``config.json``
(UserPretrainConfig), ``profile_vocab.json`` (only with profiles), ``model.safetensors``. The news-vector
table is not stored: it is passed in at encode time (so refreshed news vectors plug in).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from training.prec.config import UserPretrainConfig
from training.prec.model_files import content_version, load_weights, read_manifest, save_weights, write_manifest
from training.prec.user_data import ProfileVocab
from training.prec.user_model import UserEncoder

USER_ENCODER_KIND = "prec-user-encoder"
CONFIG_FILE = "config.json"
PROFILE_VOCAB_FILE = "profile_vocab.json"


@dataclass
class SavedUserEncoder:
    model: UserEncoder
    config: UserPretrainConfig
    profile_vocab: ProfileVocab | None
    model_version: str
    directory: Path | None = None


def save_user_encoder(model: UserEncoder, config: UserPretrainConfig, profile_vocab: ProfileVocab | None,
                      directory: str | Path, news_model_version: str | None = None) -> str:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = save_weights(model, directory)
    config.save(directory / CONFIG_FILE)
    vocab_json = json.dumps(profile_vocab.values, sort_keys=True) if profile_vocab is not None else ""
    if profile_vocab is not None:
        (directory / PROFILE_VOCAB_FILE).write_text(vocab_json)
    version = content_version(state, json.dumps(config.to_dict(), sort_keys=True), vocab_json)
    write_manifest(directory, {
        "kind": USER_ENCODER_KIND, "format": 1, "model_version": version, "news_dim": model.news_dim,
        "hidden_size": model.hidden_size, "profile_views": profile_vocab is not None,
        "news_model_version": news_model_version, "torch": torch.__version__,
    })
    return version


def load_user_encoder(directory: str | Path, device: str | torch.device = "cpu") -> SavedUserEncoder:
    directory = Path(directory)
    manifest = read_manifest(directory, USER_ENCODER_KIND)
    config = UserPretrainConfig.load(directory / CONFIG_FILE)
    vocab_path = directory / PROFILE_VOCAB_FILE
    vocab = ProfileVocab(json.loads(vocab_path.read_text())) if vocab_path.exists() else None
    model = UserEncoder(manifest["news_dim"], config, vocab.sizes if vocab is not None else None)
    load_weights(model, directory)
    model.to(device).eval()
    return SavedUserEncoder(model, config, vocab, manifest["model_version"], directory)
