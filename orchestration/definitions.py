"""The newsforge code location (``[tool.dagster] module_name``): assets, resources, jobs, schedules, sensors."""
from dagster import Definitions, load_assets_from_modules

import assets.baselines
import assets.ctr
import assets.data
import assets.prec
from orchestration.io_manager import NewsforgeIOManager
from orchestration.jobs import daily_job, data_job
from orchestration.resources import DvcData, MlflowTracking
from orchestration.schedules import daily_schedule
from orchestration.sensors import data_version_sensor

defs = Definitions(
    assets=load_assets_from_modules([assets.data, assets.baselines, assets.prec, assets.ctr]),
    resources={
        "io_manager": NewsforgeIOManager(),
        "dvc_data": DvcData(),
        "mlflow_tracking": MlflowTracking(),
    },
    jobs=[daily_job, data_job],
    schedules=[daily_schedule],
    sensors=[data_version_sensor],
)
