"""Every ``NEWSFORGE_*`` environment variable, read and documented here and nowhere else.

Dagster-free, so training, serving, the assets and the CLI all read their settings from this one module.

| variable | what | default |
|---|---|---|
| NEWSFORGE_ROOT | project root (dvc.yaml, params.yaml) | the checkout holding this package |
| NEWSFORGE_HOME | local state (MLflow store, asset artefacts, caches, Dagster home) | ``<root>/.newsforge`` |
| NEWSFORGE_PREPARED_DIR | prepared, DVC-tracked tables | ``<root>/data/prepared`` |
| NEWSFORGE_PARTITION_START | first daily partition | 2019-11-09 (MIND-small's first day) |
| NEWSFORGE_CANDIDATE_STORE | recall candidates served online (SQLite, WAL) | ``<home>/serving/candidates.sqlite`` |
| NEWSFORGE_MLFLOW_TRACKING_URI | MLflow tracking (and registry) server | ``sqlite:///<home>/mlflow/mlflow.db`` |
| NEWSFORGE_MLFLOW_UI_URL | MLflow UI that the assets' ``mlflow_run`` links point at | ``http://127.0.0.1:5000`` |
| NEWSFORGE_EXECUTOR | Dagster executor of the code location (``orchestration/executors.py``) | multiprocess |
| NEWSFORGE_CHAMPION_MAX_AGE_DAYS | default ``max_age_days`` of the ``champion_age`` checks | 3 |
| NEWSFORGE_DUCKDB_MEMORY_LIMIT | DuckDB memory limit of the out-of-core prepare | ``1GB`` |
| NEWSFORGE_DUCKDB_THREADS | DuckDB threads of the out-of-core prepare | 2 |
| NEWSFORGE_SERVE_OPTIONS | internal: `newsforge serve` hands its options to its workers | (set by the server) |

A tracking server's credentials stay in MLflow's own variables (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``
or ``MLFLOW_TRACKING_TOKEN``), never in the repository.
"""
from __future__ import annotations

import os
from pathlib import Path

#: Every variable this module reads (the table above), by name.
VARIABLES = ("NEWSFORGE_ROOT", "NEWSFORGE_HOME", "NEWSFORGE_PREPARED_DIR", "NEWSFORGE_PARTITION_START",
             "NEWSFORGE_CANDIDATE_STORE", "NEWSFORGE_MLFLOW_TRACKING_URI", "NEWSFORGE_MLFLOW_UI_URL",
             "NEWSFORGE_EXECUTOR", "NEWSFORGE_CHAMPION_MAX_AGE_DAYS", "NEWSFORGE_DUCKDB_MEMORY_LIMIT",
             "NEWSFORGE_DUCKDB_THREADS", "NEWSFORGE_SERVE_OPTIONS")
EXECUTOR = "NEWSFORGE_EXECUTOR"
CHAMPION_MAX_AGE_DAYS = "NEWSFORGE_CHAMPION_MAX_AGE_DAYS"
DUCKDB_MEMORY_LIMIT = "NEWSFORGE_DUCKDB_MEMORY_LIMIT"
DUCKDB_THREADS = "NEWSFORGE_DUCKDB_THREADS"
SERVE_OPTIONS = "NEWSFORGE_SERVE_OPTIONS"


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


def executor_name() -> str:
    """The Dagster executor ``$NEWSFORGE_EXECUTOR`` names (``multiprocess`` when unset or blank)."""
    return os.environ.get(EXECUTOR, "").strip() or "multiprocess"


def champion_max_age_days(default: int = 3) -> int:
    """``$NEWSFORGE_CHAMPION_MAX_AGE_DAYS``: a whole number of days >= 0 (``default`` when unset)."""
    return _whole_number(CHAMPION_MAX_AGE_DAYS, os.environ.get(CHAMPION_MAX_AGE_DAYS, str(default)), 0, "days")


def duckdb_memory_limit() -> str | None:
    """``$NEWSFORGE_DUCKDB_MEMORY_LIMIT`` (e.g. ``4GB``), None when unset."""
    return os.environ.get(DUCKDB_MEMORY_LIMIT) or None


def duckdb_threads() -> int | None:
    """``$NEWSFORGE_DUCKDB_THREADS`` (a positive whole number), None when unset."""
    raw = os.environ.get(DUCKDB_THREADS)
    return _whole_number(DUCKDB_THREADS, raw, 1, "threads") if raw else None


def _whole_number(variable: str, raw: str, minimum: int, unit: str) -> int:
    """``raw`` (the value of ``variable``) as an int >= ``minimum``; errors name the variable and value."""
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{variable}={raw!r} is not a whole number of {unit}") from None
    if value < minimum:
        raise ValueError(f"{variable}={value} must be {minimum} or more {unit}")
    return value


def serve_options() -> str:
    """The JSON options ``newsforge serve`` handed to this worker process (``$NEWSFORGE_SERVE_OPTIONS``)."""
    raw = os.environ.get(SERVE_OPTIONS)
    if not raw:
        raise RuntimeError(f"{SERVE_OPTIONS} is not set: start the service with `newsforge serve`")
    return raw


def set_serve_options(options_json: str) -> None:
    """Hand ``newsforge serve``'s options to the worker processes it starts."""
    os.environ[SERVE_OPTIONS] = options_json
