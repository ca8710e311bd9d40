"""Where newsforge keeps its state; every location can be overridden by an environment variable.

| what | default | variable |
|---|---|---|
| project root (dvc.yaml, params.yaml) | the checkout holding this package | NEWSFORGE_ROOT |
| local state (MLflow store, asset artefacts, Dagster home) | ``<root>/.newsforge`` | NEWSFORGE_HOME |
| prepared, DVC-tracked tables | ``<root>/data/prepared`` | NEWSFORGE_PREPARED_DIR |
| first daily partition | 2019-11-09 (MIND-small's first day) | NEWSFORGE_PARTITION_START |
| recall candidates served online (SQLite, WAL) | ``<home>/serving/candidates.sqlite`` | NEWSFORGE_CANDIDATE_STORE |
| MLflow tracking (and registry) server | ``sqlite:///<home>/mlflow/mlflow.db`` | NEWSFORGE_MLFLOW_TRACKING_URI |
| MLflow UI that the assets' ``mlflow_run`` links point at | ``http://127.0.0.1:5000`` | NEWSFORGE_MLFLOW_UI_URL |

A tracking server's credentials stay in MLflow's own variables (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``
or ``MLFLOW_TRACKING_TOKEN``), never in the repository.
"""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    return Path(os.environ.get("NEWSFORGE_ROOT", Path(__file__).resolve().parent.parent))


def newsforge_home() -> Path:
    return Path(os.environ.get("NEWSFORGE_HOME", project_root() / ".newsforge"))


def prepared_dir() -> Path:
    return Path(os.environ.get("NEWSFORGE_PREPARED_DIR", project_root() / "data" / "prepared"))


def partition_start() -> str:
    return os.environ.get("NEWSFORGE_PARTITION_START", "2019-11-09")


def default_tracking_uri() -> str:
    """``$NEWSFORGE_MLFLOW_TRACKING_URI`` (e.g. a team's tracking server), else the local store
    ``sqlite:///$NEWSFORGE_HOME/mlflow/mlflow.db``."""
    configured = os.environ.get("NEWSFORGE_MLFLOW_TRACKING_URI")
    if configured:
        return configured
    path = newsforge_home() / "mlflow" / "mlflow.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def mlflow_ui_url() -> str:
    """The MLflow UI that run links point at: ``$NEWSFORGE_MLFLOW_UI_URL``, else ``mlflow ui``'s default address."""
    return os.environ.get("NEWSFORGE_MLFLOW_UI_URL", "http://127.0.0.1:5000")


def model_dir(asset: str, partition: str | None, run_id: str) -> Path:
    """A fresh folder for one training run's outputs; never reused, so a crash cannot corrupt another."""
    path = newsforge_home() / "models" / asset / (partition or "all") / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(name: str) -> Path:
    """A persistent cache folder (e.g. ``news_vectors``: the encode-once cache)."""
    path = newsforge_home() / "cache" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def candidate_store_path() -> Path:
    """The key-value store of per-trigger recall candidates that ``recall_candidates`` writes and serving reads."""
    path = Path(os.environ.get("NEWSFORGE_CANDIDATE_STORE", newsforge_home() / "serving" / "candidates.sqlite"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
