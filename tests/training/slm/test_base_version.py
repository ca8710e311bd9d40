"""The generation cache's id of a base model folder: its config and its weight files' names and sizes."""
from __future__ import annotations

import shutil

import pytest

from training.slm.lora_sft import base_version


@pytest.fixture
def folder(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 32}')
    (model / "model.safetensors").write_bytes(b"\0" * 64)
    (model / "tokenizer.json").write_text("{}")
    return model


def test_base_version_is_short_and_follows_the_weights_not_the_folder(folder, tmp_path):
    version = base_version(folder)
    assert len(version) == 16 and version == base_version(str(folder))
    assert base_version(shutil.copytree(folder, tmp_path / "copy")) == version     # same weights elsewhere
    (folder / "tokenizer.json").write_text('{"changed": true}')                     # not a weight file
    assert base_version(folder) == version


def test_base_version_changes_with_a_weight_file_or_the_config(folder):
    version = base_version(folder)
    (folder / "model.safetensors").write_bytes(b"\0" * 65)
    resized = base_version(folder)
    (folder / "model-00002.safetensors").write_bytes(b"\0")
    sharded = base_version(folder)
    (folder / "config.json").write_text('{"hidden_size": 64}')
    assert len({version, resized, sharded, base_version(folder)}) == 4


def test_base_version_needs_a_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        base_version(tmp_path)
