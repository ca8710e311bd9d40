"""Save / load a cross-encoder as a self-contained directory (loads offline from nothing but the directory).

Layout: ``manifest.json`` (kind "cross-encoder", model_version, backbone, views, max_len, extra),
``config.json`` (CrossEncoderConfig), ``pair_inputs.json`` (input layout), ``backbone_config.json`` (the
BERT / Hugging Face config), ``model.safetensors`` (all weights, heads included) and the tokenizer:
``tokenizer.json`` (the PREC NewsTokenizer; "prec" / "scratch") or ``tokenizer/`` (the Hugging Face tokenizer
files; "pretrained"). Warm start = ``load_cross_encoder`` then keep training.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig

from training.cross_encoder.config import CrossEncoderConfig
from training.cross_encoder.model import (
    CrossEncoder,
    HFPairEncoder,
    NewsPairEncoder,
    auto_model,
    hf_cross_encoder,
    news_cross_encoder,
)
from training.cross_encoder.pair_inputs import HFPairInputs, NewsPairInputs
from training.prec.model_files import content_version, load_weights, read_manifest, save_weights, write_manifest
from training.prec.news_model import NewsEncoder
from training.prec.tokenization import NewsTokenizer

CROSS_ENCODER_KIND = "cross-encoder"
CONFIG_FILE = "config.json"
INPUTS_FILE = "pair_inputs.json"
BACKBONE_CONFIG_FILE = "backbone_config.json"
HF_TOKENIZER_DIR = "tokenizer"


def _files_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def save_cross_encoder(model: CrossEncoder, directory: str | Path, extra: dict[str, Any] | None = None) -> str:
    """Write the model directory; returns its model version (content hash of weights, tokenizer and configs).

    ``extra``: JSON-serialisable provenance (e.g. teacher versions, data hashes) stored in the manifest.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = save_weights(model, directory)
    model.config.save(directory / CONFIG_FILE)
    spec = model.inputs.spec()
    if isinstance(model.inputs, NewsPairInputs):
        assert isinstance(model.encoder, NewsPairEncoder)  # news_cross_encoder pairs the two
        spec["n_view_embeddings"] = int(model.encoder.news.view_embeddings.num_embeddings)
        model.inputs.tokenizer.save(directory)
        tokenizer_text = model.inputs.tokenizer.to_json()
        backbone_json = model.encoder.backbone_config.to_json_string()
    else:
        backend = getattr(model.tokenizer, "backend_tokenizer", None)
        if backend is not None:  # per-call state a previous call may have left behind: not part of the model
            backend.no_truncation()
            backend.no_padding()
        model.tokenizer.save_pretrained(str(directory / HF_TOKENIZER_DIR))
        tokenizer_text = _files_digest(directory / HF_TOKENIZER_DIR)
        backbone = model.encoder.backbone_config.to_dict()
        backbone.pop("_name_or_path", None)  # where it was loaded from: not content
        backbone_json = json.dumps(backbone, indent=2, sort_keys=True, default=str)
    inputs_json = json.dumps(spec, indent=2, sort_keys=True)
    (directory / INPUTS_FILE).write_text(inputs_json)
    (directory / BACKBONE_CONFIG_FILE).write_text(backbone_json)
    config_json = json.dumps(model.config.to_dict(), sort_keys=True)
    version = content_version(state, tokenizer_text, config_json, inputs_json, backbone_json)
    assert model.config.views is not None  # resolved by CrossEncoderConfig
    write_manifest(directory, {
        "kind": CROSS_ENCODER_KIND, "format": 1, "model_version": version, "backbone": model.config.backbone,
        "views": list(model.config.views), "max_len": model.config.max_len, "hidden_size": model.hidden_size,
        "pooling": model.config.pooling, "extra": extra or {}, "torch": torch.__version__,
    })
    model.model_version = version
    return version


def load_cross_encoder(directory: str | Path, device: str | torch.device = "cpu") -> CrossEncoder:
    """Load a directory written by ``save_cross_encoder`` (eval mode); ``model.model_version`` is set."""
    directory = Path(directory)
    manifest = read_manifest(directory, CROSS_ENCODER_KIND)
    config = CrossEncoderConfig.load(directory / CONFIG_FILE)
    spec = json.loads((directory / INPUTS_FILE).read_text())
    backbone = json.loads((directory / BACKBONE_CONFIG_FILE).read_text())
    if spec["kind"] == NewsPairInputs.kind:
        tokenizer = NewsTokenizer.load(directory, int(spec["tokenizer_views"]))
        encoder = NewsEncoder(BertConfig.from_dict(backbone), int(spec["n_view_embeddings"]) - 1)
        model = news_cross_encoder(config, encoder, tokenizer, tuple(spec["view_ids"]), zero_segments=True)
    else:
        from transformers import AutoConfig, AutoTokenizer

        hf_tokenizer = AutoTokenizer.from_pretrained(str(directory / HF_TOKENIZER_DIR))
        hf_config = AutoConfig.for_model(**backbone)
        model = hf_cross_encoder(config, auto_model(hf_config, from_config=True), hf_tokenizer)
        assert isinstance(model.encoder, HFPairEncoder) and isinstance(model.inputs, HFPairInputs)
        if model.inputs.use_token_types != spec["use_token_types"]:
            raise ValueError(f"{directory}: token type usage differs from the saved model's")
    load_weights(model, directory)
    model.model_version = manifest["model_version"]
    return model.to(device).eval()
