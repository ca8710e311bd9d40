"""Registered models: log a pyfunc model in the current MLflow run, register it, move aliases safely.

Aliases follow the design card: every new version gets ``candidate``; ``champion`` moves only when a
blocking asset check passes. A crash before that leaves every alias where it was.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CANDIDATE = "candidate"
CHAMPION = "champion"


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model version and where its files are on local disk."""

    name: str
    version: str
    run_id: str
    local_dir: str        # the training output folder (immutable: one per Dagster run)
    content_version: str  # hash of the weights, e.g. the PREC encoders' model_version


def log_and_register(name: str, python_model: mlflow.pyfunc.PythonModel, artifacts: dict[str, str], *,
                     local_dir: str | Path, content_version: str, signature=None,
                     input_example=None) -> RegisteredModel:
    """Log ``python_model`` under the active run, register it as a new version of ``name`` and tag it
    ``candidate``."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_and_register needs an active MLflow run")
    info = mlflow.pyfunc.log_model(name=name, python_model=python_model, artifacts=artifacts,
                                   signature=signature, input_example=input_example,
                                   registered_model_name=name, pip_requirements=["newsforge"],
                                   await_registration_for=60)
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(name, version, "content_version", content_version)
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


@dataclass(frozen=True)
class GateDecision:
    """The champion comparison of one new version on one validation set."""

    candidate_version: str
    candidate_metrics: dict
    champion_version: str | None     # the champion before the decision
    champion_metrics: dict | None
    passed: bool                     # True: the candidate beat the champion (or there was none) and is champion now

    @property
    def new_champion(self) -> str | None:
        return self.candidate_version if self.passed else self.champion_version


def gate_champion(name: str, candidate_version: str, evaluate: Callable[[str], dict],
                  metric: str = "auc") -> GateDecision:
    """Score the candidate and the current champion with ``evaluate(version)`` on the same data and move
    ``champion`` to the candidate only if it is strictly better on ``metric``. Any error leaves aliases as
    they were."""
    champion = alias_version(name, CHAMPION)
    candidate_metrics = evaluate(candidate_version)
    champion_metrics = evaluate(champion) if champion else None
    passed = champion_metrics is None or candidate_metrics[metric] > champion_metrics[metric]
    if passed:
        set_alias(name, CHAMPION, candidate_version)
    return GateDecision(candidate_version, candidate_metrics, champion, champion_metrics, passed)
