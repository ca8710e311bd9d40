"""Sensors: refresh the data assets and the news side (``data_job``) when the DVC data version changes."""
from dagster import RunRequest, SensorEvaluationContext, SkipReason, sensor

from orchestration.jobs import data_job
from orchestration.resources.dvc_data import DataVersionError, DvcData


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
    return RunRequest(run_key=version, tags={"data.version": version})
