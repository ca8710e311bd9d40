"""Sensors: a new DVC data version refreshes the news side (``data_job``), then the daily chain (``daily_job``).

* ``data_version_sensor``: one ``data_job`` run per new data version in ``dvc.lock``.
* ``daily_chain_sensor``: when a ``data_job`` run succeeds, one ``daily_job`` run for the newest day that
  run loaded, tagged with its data version (run key ``<version>:<day>``: once per version and day).

Why a run-status sensor and not a declarative ``AutomationCondition``: the day to run comes from what the
finished ``data_job`` run loaded (its ``mind_behaviors`` materialisation), not from the wall clock. An
``eager()`` condition on the daily assets only ever targets the latest time partition (yesterday, UTC),
which a replayed or late log (MIND is from 2019) never covers, and it cannot tag the run with the data
version it follows. Inside the ``daily_job`` run, Dagster holds every asset downstream of a gated model
until its blocking ``beats_champion`` check has run, and skips it when the check fails with severity ERROR
(the candidate is below the popularity floor); a kept champion (the check fails with WARN) lets it run.
"""
from dagster import (
    DagsterRunStatus,
    RunRequest,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_status_sensor,
    sensor,
)

from orchestration.data_days import loaded_in_run
from orchestration.jobs import daily_job, data_job
from orchestration.partitions import daily_partitions
from orchestration.resources.dvc_data import DataVersionError, DvcData
from training.settings import partition_start

#: Run tag carrying the DVC data version a run was launched for.
DATA_VERSION_TAG = "data.version"


@sensor(job=data_job, minimum_interval_seconds=60)
def data_version_sensor(context: SensorEvaluationContext, dvc_data: DvcData):
    """One run of ``data_job`` per new data version in ``dvc.lock`` (the cursor holds the last version seen)."""
    try:
        version = dvc_data.data_version(verify=False)
    except DataVersionError as err:
        return SkipReason(str(err))
    if version == context.cursor:
        return SkipReason(f"data version {version} already loaded")
    context.update_cursor(version)
    return RunRequest(run_key=version, tags={DATA_VERSION_TAG: version})


@run_status_sensor(run_status=DagsterRunStatus.SUCCESS, monitored_jobs=[data_job], request_job=daily_job,
                   minimum_interval_seconds=60)
def daily_chain_sensor(context: RunStatusSensorContext):
    """After ``data_job`` succeeds: ``daily_job`` for the newest day it loaded, once per (data version, day)."""
    run = context.dagster_run
    loaded = loaded_in_run(context.instance, run.run_id)
    if loaded is None:
        return SkipReason(f"data_job run {run.run_id} did not materialise mind_behaviors: no day to run")
    day = loaded.newest_day
    if day is None:
        return SkipReason(f"mind_behaviors of run {run.run_id} recorded no days (metadata 'days'): no day to run")
    version = loaded.data_version or run.tags.get(DATA_VERSION_TAG)
    if not version:
        return SkipReason(f"mind_behaviors of run {run.run_id} carries no data version: cannot key the daily run")
    if not daily_partitions.has_partition_key(day):
        return SkipReason(f"day {day} (newest of data version {version}) is not a daily partition yet: partitions "
                          f"run from {partition_start()} to the last complete UTC day; launch "
                          f"daily_job for {day} once it is one")
    return RunRequest(run_key=f"{version}:{day}", partition_key=day,
                      tags={DATA_VERSION_TAG: version, "newsforge/data_run_id": run.run_id})
