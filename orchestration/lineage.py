"""Lineage facts recorded on every MLflow run: code version and the upstream runs an asset read."""
from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

from orchestration.settings import project_root


@lru_cache(maxsize=1)
def code_version(root: Path | None = None) -> tuple[str, bool]:
    """(git commit, dirty?) of the checkout; ("unknown", True) outside git."""
    root = root or project_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip())
        return commit, dirty
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown", True
