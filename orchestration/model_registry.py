"""Registered models: log a pyfunc model in the current MLflow run, register it, read and move aliases.

Every logged model carries the project code it needs (``code_paths``: the ``training`` and ``serving``
packages) and pinned requirements, so ``mlflow.pyfunc.load_model`` works from any checkout. Which
alias moves when is decided by :mod:`orchestration.champion_gate` for gated models.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestration.settings import project_root

CANDIDATE = "candidate"
CHAMPION = "champion"
#: The project packages a logged model imports at load time (copied into the model with ``code_paths``).
MODEL_CODE = ("training", "serving")
#: Distributions the model code imports when loaded; pinned to the versions that logged it.
MODEL_REQUIREMENTS = ("torch", "lightning", "transformers", "tokenizers", "numpy", "pandas", "pyarrow",
                      "scikit-learn", "mlflow")


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model version and where its files are on local disk."""

    name: str
    version: str
    run_id: str
    local_dir: str        # the training output folder (immutable: one per Dagster run)
    content_version: str  # hash of the weights, e.g. the PREC encoders' model_version


def model_requirements() -> list[str]:
    """``name==version`` of each installed distribution in ``MODEL_REQUIREMENTS``."""
    pins = []
    for dist in MODEL_REQUIREMENTS:
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def log_and_register(name: str, python_model: mlflow.pyfunc.PythonModel, artifacts: dict[str, str], *,
                     local_dir: str | Path, content_version: str, signature=None, input_example=None,
                     candidate_alias: bool = True) -> RegisteredModel:
    """Log ``python_model`` under the active run and register it as a new version of ``name``.

    ``candidate_alias``: point ``candidate`` at the new version now (ungated models). Gated models pass
    False: the champion gate moves ``candidate`` and ``champion`` together once its check is emitted.
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_and_register needs an active MLflow run")
    root = project_root()
    info = mlflow.pyfunc.log_model(name=name, python_model=python_model, artifacts=artifacts,
                                   signature=signature, input_example=input_example,
                                   registered_model_name=name, pip_requirements=model_requirements(),
                                   code_paths=[str(root / package) for package in MODEL_CODE],
                                   await_registration_for=60)
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(name, version, "content_version", content_version)
    if candidate_alias:
        client.set_registered_model_alias(name, CANDIDATE, version)
    return RegisteredModel(name, version, run.info.run_id, str(local_dir), content_version)


def alias_version(name: str, alias: str) -> str | None:
    """The version an alias points to, or None."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, alias, version)
