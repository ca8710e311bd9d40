"""Lineage facts recorded on every MLflow run: code version and the upstream runs an asset read."""
from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

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


#: MLflow experiment of an asset: ``newsforge/<asset>``.
EXPERIMENT_PREFIX = "newsforge/"


def latest_finished_run(client: MlflowClient, experiment_id: str, partition: str | None) -> Run | None:
    """The newest FINISHED run of an experiment (tagged with ``partition`` when given)."""
    query = "attributes.status = 'FINISHED'"
    if partition is not None:
        query += f" and tags.`dagster.partition` = '{partition}'"
    runs = client.search_runs([experiment_id], query, ViewType.ACTIVE_ONLY, max_results=1,
                              order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None
