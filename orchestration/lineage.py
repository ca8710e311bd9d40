"""Lineage by construction: every stored asset value carries the MLflow run and data version that wrote it.

The IO manager writes a ``lineage.json`` sidecar inside the value's folder (swapped in atomically with the
value) from the :class:`Lineage` that ``MlflowTracking.asset_run`` announced for that output. When a
downstream step loads the value, the IO manager reads the sidecar and announces it for the loading step;
the downstream run's ``upstream.<asset>.run_id`` and ``data.version`` tags are taken from there. So a tag
names the run that produced the value that was actually loaded, never "the newest run of that asset".

The announcements live in this process only: Dagster runs ``load_input``, the asset body and
``handle_output`` of one step in one process.
"""
from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

from training.settings import project_root

#: MLflow experiment of an asset: ``newsforge/<asset>``.
EXPERIMENT_PREFIX = "newsforge/"
#: The sidecar file beside each stored value.
SIDECAR = "lineage.json"


class LineageError(RuntimeError):
    """A stored value has no (or an unreadable) lineage record, or inputs disagree on the data version."""


@dataclass(frozen=True)
class Lineage:
    """Who wrote one stored asset value."""

    asset: str
    partition: str | None       # None for unpartitioned assets
    mlflow_run_id: str
    data_version: str           # the DVC data version the value was built from
    dagster_run_id: str

    def write(self, directory: Path) -> None:
        (Path(directory) / SIDECAR).write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def read(cls, directory: Path) -> Lineage:
        path = Path(directory) / SIDECAR
        if not path.is_file():
            raise LineageError(f"{path} is missing: the value in {directory} has no lineage record "
                               f"(written by an older newsforge?); materialise that asset again")
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            raise LineageError(f"{path} is not a valid lineage record: {err}") from err


# -- announcements between the IO manager and the asset body of the same step -------------------------------

_lock = threading.Lock()
_produced: dict[tuple[str, str, str | None], Lineage] = {}          # (dagster run, asset, partition) -> lineage
# (dagster run, step) -> {(upstream asset, partition): lineage}
_loaded: dict[tuple[str, str], dict[tuple[str, str | None], Lineage]] = {}


def announce_output(lineage: Lineage) -> None:
    """Called by the asset's MLflow run: the value it is about to return was made by ``lineage``."""
    with _lock:
        _produced[(lineage.dagster_run_id, lineage.asset, lineage.partition)] = lineage


def take_output(dagster_run_id: str, asset: str, partition: str | None) -> Lineage | None:
    """Called by the IO manager when storing the value of ``asset``; None if the asset announced nothing."""
    with _lock:
        return _produced.pop((dagster_run_id, asset, partition), None)


def announce_input(dagster_run_id: str, step_key: str, lineage: Lineage) -> None:
    """Called by the IO manager when it loads an input of ``step_key`` (once per partition it loads)."""
    with _lock:
        _loaded.setdefault((dagster_run_id, step_key), {})[(lineage.asset, lineage.partition)] = lineage


def take_inputs(dagster_run_id: str, step_key: str, partition: str | None = None,
                keep: bool = False) -> dict[str, Lineage]:
    """The lineage of every value ``step_key`` loaded, by upstream asset name.

    A step over a partition range (a single-run backfill) loads each partitioned upstream once per day;
    ``partition`` picks that day's values (unpartitioned upstreams always count), and ``keep`` leaves the
    records for the range's next day. A step over one partition has one value per upstream."""
    with _lock:
        loaded = _loaded.get((dagster_run_id, step_key), {}) if keep else _loaded.pop((dagster_run_id, step_key), {})
    if partition is None:
        return {asset: lineage for (asset, _), lineage in loaded.items()}
    chosen = {asset: lineage for (asset, part), lineage in loaded.items() if part is None}
    chosen.update({asset: lineage for (asset, part), lineage in loaded.items() if part == partition})
    return chosen


def inputs_data_version(inputs: dict[str, Lineage]) -> str:
    """The single data version all ``inputs`` were built from; an error when they disagree or are absent."""
    versions = {lineage.data_version for lineage in inputs.values()}
    if len(versions) == 1:
        return versions.pop()
    if not versions:
        raise LineageError("no loaded input carries a data version; pass data_version explicitly")
    detail = ", ".join(f"{name} ({lineage.partition or 'unpartitioned'}): {lineage.data_version}"
                       for name, lineage in sorted(inputs.items()))
    raise LineageError(f"inputs were built from different data versions: {detail}. Materialise the "
                       f"older ones again (e.g. `--select '*ASSET'`) so the result has one data version")


# -- code version and run look-ups -------------------------------------------------------------------------

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


def latest_finished_run(client: MlflowClient, experiment_id: str, partition: str | None) -> Run | None:
    """The newest FINISHED run of an experiment (tagged with ``partition`` when given), for reports."""
    query = "attributes.status = 'FINISHED'"
    if partition is not None:
        query += f" and tags.`dagster.partition` = '{partition}'"
    runs = client.search_runs([experiment_id], query, ViewType.ACTIVE_ONLY, max_results=1,
                              order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None
