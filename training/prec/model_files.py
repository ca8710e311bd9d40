"""Weights files, content-hash model versions and manifests shared by the saved encoders."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"


def content_version(state_dict: dict[str, torch.Tensor], *extras: str) -> str:
    """16-hex-digit SHA-256 over tensor names, dtypes, shapes and bytes (plus ``extras`` text)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    for extra in extras:
        digest.update(extra.encode("utf-8"))
    return digest.hexdigest()[:16]


def save_weights(module: torch.nn.Module, directory: Path) -> dict[str, torch.Tensor]:
    state = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE))
    return state


def load_weights(module: torch.nn.Module, directory: Path) -> None:
    module.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def read_manifest(directory: str | Path, kind: str) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_FILE
    if not path.exists():
        raise FileNotFoundError(f"{directory} is not a saved {kind} (no {MANIFEST_FILE})")
    manifest = json.loads(path.read_text())
    if manifest.get("kind") != kind:
        raise ValueError(f"{directory} holds a {manifest.get('kind')!r}, expected {kind!r}")
    return manifest
