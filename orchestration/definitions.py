"""The newsforge code location (``[tool.dagster] module_name``): assets, resources, jobs, schedules, sensors."""
from dagster import Definitions

from assets import ALL_ASSETS
from orchestration.io_manager import NewsforgeIOManager
from orchestration.jobs import daily_job, data_job
from orchestration.resources import DvcData, MlflowTracking
from orchestration.schedules import daily_schedule
from orchestration.sensors import data_version_sensor

defs = Definitions(
    assets=ALL_ASSETS,
    resources={
        "io_manager": NewsforgeIOManager(),
        "dvc_data": DvcData(),
        "mlflow_tracking": MlflowTracking(),
    },
    jobs=[daily_job, data_job],
    schedules=[daily_schedule],
    sensors=[data_version_sensor],
)
