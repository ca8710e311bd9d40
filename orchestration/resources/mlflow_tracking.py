"""MLflow tracking for asset materialisations: one experiment per asset, one run per materialisation.

Every run carries the lineage tags of the design card: ``dagster.run_id``, ``dagster.asset``,
``dagster.partition``, ``data.version``, ``git.commit``, ``git.dirty`` and ``upstream.<asset>.run_id``.
The upstream run ids and the data version come from the lineage records of the values the step actually
loaded (see :mod:`orchestration.lineage`), never from a search for "the latest run".
"""
from __future__ import annotations

import fcntl
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from dagster import AssetExecutionContext, ConfigurableResource, MetadataValue
from mlflow.tracking import MlflowClient
from pydantic import Field

from orchestration.lineage import (
    EXPERIMENT_PREFIX,
    Lineage,
    announce_output,
    code_version,
    inputs_data_version,
    take_inputs,
)
from training.settings import default_tracking_uri, mlflow_ui_url, newsforge_home

#: MLflow metric of every materialisation: the peak resident memory of the step's process, in MB.
PEAK_RSS_METRIC = "peak_rss_mb"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def _default_artifact_root() -> str:
    return str(newsforge_home() / "mlflow" / "artifacts")


class MlflowTracking(ConfigurableResource):
    """MLflow store: a local sqlite database under ``$NEWSFORGE_HOME/mlflow`` unless URIs are given."""

    tracking_uri: str | None = None
    registry_uri: str | None = None
    artifact_root: str | None = None  # local folder or s3://, gs://, ... for new experiments
    ui_url: str = Field(default_factory=mlflow_ui_url)  # $NEWSFORGE_MLFLOW_UI_URL, else http://127.0.0.1:5000

    def configure(self) -> MlflowClient:
        uri = self.tracking_uri or default_tracking_uri()
        mlflow.set_tracking_uri(uri)
        if self.registry_uri:
            mlflow.set_registry_uri(self.registry_uri)
        if not uri.startswith("sqlite:///"):
            return MlflowClient()
        # Parallel steps would race to create (migrate) a fresh sqlite store: one process at a time.
        with open(uri.removeprefix("sqlite:///") + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            client = MlflowClient()
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        return client

    def experiment_id(self, client: MlflowClient, asset_name: str) -> str:
        """The asset's experiment, created with its artifact location on first use."""
        name = EXPERIMENT_PREFIX + asset_name
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        if self.artifact_root is None and not mlflow.get_tracking_uri().startswith("sqlite:///"):
            return client.create_experiment(name)  # a tracking server keeps artefacts where it is configured to
        root = self.artifact_root or _default_artifact_root()
        if "://" in root:
            location = f"{root.rstrip('/')}/{asset_name}"
        else:
            location = Path(root, asset_name).resolve().as_uri()
        return client.create_experiment(name, artifact_location=location)

    def lightning_logger(self, run: mlflow.ActiveRun):
        """A Lightning logger writing into ``run`` (per-step losses and metrics)."""
        from lightning.pytorch.loggers import MLFlowLogger

        return MLFlowLogger(tracking_uri=mlflow.get_tracking_uri(), run_id=run.info.run_id)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    @contextmanager
    def asset_run(self, context: AssetExecutionContext, *, data_version: str | None = None,
                  params: dict | None = None, partition: str | None = None) -> Iterator[mlflow.ActiveRun]:
        """Start the MLflow run of this materialisation, tagged with its lineage; fails the run on error.

        ``data_version``: given by the data assets (read from ``dvc.lock``); every other asset leaves it out
        and gets the version its loaded inputs were built from (an error if they disagree).
        ``partition``: in a step over a partition range (a single-run backfill), the day this run is for;
        each day gets its own run, tagged with that day's upstream runs, and its own stored value.
        """
        asset_name = context.asset_key.to_user_string()
        step_key = context.get_step_execution_context().step.key
        if partition is None:
            partition = context.partition_key if context.assets_def.partitions_def is not None else None
            inputs = take_inputs(context.run.run_id, step_key)
        else:
            keys = context.partition_keys
            if partition not in keys:
                raise ValueError(f"{asset_name}: partition {partition} is outside this run's range "
                                 f"{keys[0]}...{keys[-1]}")
            inputs = take_inputs(context.run.run_id, step_key, partition, keep=partition != keys[-1])
        if data_version is None:
            data_version = inputs_data_version(inputs)
        client = self.configure()
        experiment_id = self.experiment_id(client, asset_name)
        commit, dirty = code_version()
        tags = {
            "dagster.run_id": context.run.run_id,
            "dagster.asset": asset_name,
            "dagster.partition": partition or "",
            "data.version": data_version,
            "git.commit": commit,
            "git.dirty": str(dirty).lower(),
            **{f"upstream.{name}.run_id": lineage.mlflow_run_id for name, lineage in inputs.items()},
        }
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"{asset_name}:{partition or 'all'}",
                              tags=tags) as run:
            if params:
                mlflow.log_params(params)
            context.add_output_metadata({  # over a range: the last day's run (each day's is in the asset's table)
                "mlflow_run_id": run.info.run_id,
                "mlflow_run": MetadataValue.url(self.run_url(experiment_id, run.info.run_id)),
                "data_version": data_version,
                "git_commit": commit,
            }, output_name="result")
            yield run
            # the step's process peak so far (the step alone under the multiprocess executor)
            mlflow.log_metric(PEAK_RSS_METRIC, peak_rss_mb())
            announce_output(Lineage(asset_name, partition, run.info.run_id, data_version, context.run.run_id))
