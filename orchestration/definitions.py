"""The newsforge code location (``[tool.dagster] module_name``): assets, checks, resources, jobs, schedules, sensors."""
from dagster import Definitions

from assets import ALL_ASSETS
from orchestration.executors import configured_executor
from orchestration.freshness import CHAMPION_AGE_CHECKS
from orchestration.io_manager import NewsforgeIOManager
from orchestration.jobs import champion_age_job, daily_job, data_job, reproduce_job
from orchestration.resources import DvcData, MlflowTracking
from orchestration.schedules import champion_age_schedule, daily_schedule
from orchestration.sensors import daily_chain_sensor, data_version_sensor

defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=CHAMPION_AGE_CHECKS,
    resources={
        "io_manager": NewsforgeIOManager(),
        "dvc_data": DvcData(),
        "mlflow_tracking": MlflowTracking(),
    },
    jobs=[daily_job, data_job, reproduce_job, champion_age_job],
    schedules=[daily_schedule, champion_age_schedule],
    sensors=[data_version_sensor, daily_chain_sensor],
    executor=configured_executor(),   # $NEWSFORGE_EXECUTOR: multiprocess (default), in_process, docker, k8s
)
