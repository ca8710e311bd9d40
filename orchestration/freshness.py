"""Champion freshness: ``champion_age``, a WARN-only check on every gated model.

The age of a champion is the number of days between the day it was gated on (the ``dagster.partition`` tag
of the MLflow run that registered the ``champion`` version) and the newest day of the behaviour log the
pipeline has loaded (``mind_behaviors``' latest materialisation, see :mod:`orchestration.data_days`; the
DVC prepare report when this Dagster instance has none, e.g. a one-off ``dagster asset materialize``
without ``DAGSTER_HOME``). The check warns when the age exceeds ``max_age_days`` and when there is no
champion yet; it never fails a run (non-blocking, severity WARN, errors reported as warnings).

``max_age_days``: the check's run config (``ops: {<model>_champion_age: {config: {max_age_days: 5}}}``),
defaulting to ``$NEWSFORGE_CHAMPION_MAX_AGE_DAYS`` when the code location loads, else 3.
"""
from datetime import date

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    Config,
    DagsterInstance,
    asset_check,
)
from mlflow.tracking import MlflowClient
from pydantic import Field

from assets import ALL_ASSETS
from orchestration.champion_gate import CHECK_NAME as GATE_CHECK
from orchestration.data_days import latest_loaded
from orchestration.resources import DvcData, MlflowTracking
from training.registry import CHAMPION, alias_version
from training.settings import champion_max_age_days

CHECK_NAME = "champion_age"

#: Gated model assets (those carrying the ``beats_champion`` gate); each registers a model of the same name.
GATED_MODELS = tuple(sorted(key.asset_key.to_user_string() for a in ALL_ASSETS for key in a.check_keys
                            if key.name == GATE_CHECK))


class ChampionAgeConfig(Config):
    max_age_days: int = Field(default=champion_max_age_days(), ge=0,
                              description="Warn when the champion was gated more than this many days before the "
                                          "newest day of the loaded behaviour log.")


def newest_data_day(instance: DagsterInstance, dvc_data: DvcData) -> tuple[str | None, str]:
    """(newest loaded day or None, where it was read)."""
    loaded = latest_loaded(instance)
    if loaded is not None and loaded.newest_day:
        return loaded.newest_day, f"mind_behaviors materialisation (run {loaded.run_id})"
    try:
        days = sorted(dvc_data.prepare_report()["days"])
    except (OSError, KeyError, ValueError):
        return None, "none: no mind_behaviors materialisation and no prepare report"
    return (days[-1] if days else None), f"prepare report in {dvc_data.prepared_path}"


def champion_age_result(model: str, client: MlflowClient, data_day: str | None, max_age_days: int,
                        source: str = "") -> AssetCheckResult:
    """Passes iff ``model@champion`` was gated at most ``max_age_days`` before ``data_day``; else WARN."""
    meta: dict = {"max_age_days": max_age_days, "newest_data_day": data_day or "", "data_day_source": source}

    def warn(reason: str) -> AssetCheckResult:
        return AssetCheckResult(check_name=CHECK_NAME, passed=False, severity=AssetCheckSeverity.WARN,
                                description=reason, metadata=meta)

    version = alias_version(model, CHAMPION)
    if version is None:
        return warn(f"no champion yet: {model}@{CHAMPION} is not set")
    run_id = client.get_model_version(model, version).run_id
    meta.update(champion_version=version, champion_run_id=run_id or "")
    champion_day = client.get_run(run_id).data.tags.get("dagster.partition", "") if run_id else ""
    meta["champion_day"] = champion_day
    if not champion_day:
        return warn(f"{model}@{CHAMPION} (version {version}) has no gated day: its MLflow run "
                    f"{run_id or '(none)'} has no dagster.partition tag")
    if data_day is None:
        return warn(f"newest data day unknown ({source}): materialise mind_behaviors")
    age = (date.fromisoformat(data_day) - date.fromisoformat(champion_day)).days
    meta["age_days"] = age
    passed = age <= max_age_days
    return AssetCheckResult(
        check_name=CHECK_NAME, passed=passed, severity=AssetCheckSeverity.WARN, metadata=meta,
        description=(f"{model}@{CHAMPION} (version {version}) was gated on {champion_day}, {age} days before the "
                     f"newest data day {data_day}: " + ("within" if passed else "over")
                     + f" the limit of {max_age_days} days"))


def champion_age_check(model: str) -> AssetChecksDefinition:
    """The ``champion_age`` check of gated model ``model`` (op ``<model>_champion_age``)."""

    @asset_check(asset=model, name=CHECK_NAME, blocking=False,
                 description=f"Warns when {model}@{CHAMPION} was gated more than max_age_days (run config) before "
                             f"the newest day of the behaviour log, or when there is no champion yet.")
    def _check(context: AssetCheckExecutionContext, config: ChampionAgeConfig, mlflow_tracking: MlflowTracking,
               dvc_data: DvcData) -> AssetCheckResult:
        data_day, source = newest_data_day(context.instance, dvc_data)
        try:
            client = mlflow_tracking.configure()
            return champion_age_result(model, client, data_day, config.max_age_days, source)
        except Exception as err:  # noqa: BLE001 - advisory: report, never fail the run that trained the model
            return AssetCheckResult(check_name=CHECK_NAME, passed=False, severity=AssetCheckSeverity.WARN,
                                    description=f"could not read {model}@{CHAMPION}: {type(err).__name__}: {err}",
                                    metadata={"max_age_days": config.max_age_days})

    return _check


CHAMPION_AGE_CHECKS = [champion_age_check(model) for model in GATED_MODELS]
