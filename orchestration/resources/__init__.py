"""Dagster resources: MLflow tracking and the DVC-versioned data."""
from orchestration.resources.dvc_data import DvcData
from orchestration.resources.mlflow_tracking import MlflowTracking

__all__ = ["DvcData", "MlflowTracking"]
