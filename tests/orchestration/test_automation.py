"""Automation in process: a new data version refreshes the news side, then the daily chain for its newest day;
``champion_age`` warns on a stale or missing champion (real MLflow registry under tmp_path)."""
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pytest
import yaml
from dagster import (
    AssetCheckSeverity,
    AssetMaterialization,
    DagsterInstance,
    DataVersion,
    Definitions,
    Output,
    RunRequest,
    SkipReason,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    define_asset_job,
)
from mlflow.tracking import MlflowClient

from orchestration.definitions import defs
from orchestration.freshness import (
    GATED_MODELS,
    champion_age_result,
    newest_data_day,
)
from orchestration.resources import DvcData, MlflowTracking
from orchestration.sensors import daily_chain_sensor, data_version_sensor
from training.settings import CHAMPION_MAX_AGE_DAYS, champion_max_age_days


def _write_lock(root, md5: str) -> None:
    lock = {"schema": "2.0", "stages": {"prepare": {"cmd": "newsforge data prepare", "outs": [
        {"path": "data/prepared", "md5": f"{md5}.dir", "size": 1, "nfiles": 1}]}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))


def _data_run(instance: DagsterInstance, version: str, days: list[str], *, materialise_behaviors: bool = True):
    """A successful run of a job named ``data_job`` whose ``mind_behaviors`` stand-in records ``days`` and
    ``version`` exactly as the real asset does (metadata ``days``, the output's data version)."""
    if materialise_behaviors:
        @asset(name="mind_behaviors")
        def behaviors():
            return Output(None, data_version=DataVersion(version), metadata={"days": ", ".join(days)})
    else:
        @asset(name="mind_news")
        def behaviors():
            return Output(None, data_version=DataVersion(version))
    job = Definitions(assets=[behaviors], jobs=[define_asset_job("data_job")]).resolve_job_def("data_job")
    return job.execute_in_process(instance=instance)  # untagged, like a launch from the UI


def _chain_tick(instance: DagsterInstance, result):
    context = build_run_status_sensor_context(
        sensor_name="daily_chain_sensor", dagster_event=result.get_run_success_event(), dagster_instance=instance,
        dagster_run=result.dagster_run)
    return daily_chain_sensor(context)


def test_sensors_are_wired_data_then_daily():
    sensor = defs.resolve_sensor_def("daily_chain_sensor")
    assert sensor.job_name == "daily_job"  # requests the daily chain ...
    assert [job.name for job in sensor._monitored_jobs] == ["data_job"]  # ... when data_job succeeds (no public getter)
    assert defs.resolve_sensor_def("data_version_sensor").job_name == "data_job"


def test_new_data_version_refreshes_news_side_then_daily_chain(tmp_path):
    dvc_data = DvcData(repo_root=str(tmp_path), prepared_dir=str(tmp_path / "data" / "prepared"))
    instance = DagsterInstance.ephemeral()
    cursor = None
    requested = []
    for version, days in [("aaa", ["2019-11-13", "2019-11-14"]), ("bbb", ["2019-11-13", "2019-11-14", "2019-11-15"])]:
        _write_lock(tmp_path, version)
        tick = data_version_sensor.evaluate_tick(
            build_sensor_context(cursor=cursor, resources={"dvc_data": dvc_data}, instance=instance))
        cursor = tick.cursor
        assert [r.run_key for r in tick.run_requests] == [version]  # one data_job run per new version
        assert tick.run_requests[0].tags["data.version"] == version
        result = _data_run(instance, version, days)  # data_job succeeds ...
        request = _chain_tick(instance, result)       # ... so the daily chain runs for the newest day
        assert isinstance(request, RunRequest)
        assert request.partition_key == days[-1] and request.tags["data.version"] == version
        assert request.tags["newsforge/data_run_id"] == result.run_id
        assert _chain_tick(instance, result).run_key == request.run_key  # Dagster skips a run key seen before
        requested.append(request.run_key)
    assert requested == ["aaa:2019-11-14", "bbb:2019-11-15"]


@pytest.mark.parametrize("days, materialise, reason", [
    (["2019-11-01"], True, "not a daily partition yet"),                   # before the first partition
    ([datetime.now(UTC).strftime("%Y-%m-%d")], True, "not a daily partition yet"),  # today: not over
    ([], True, "recorded no days"),
    (["2019-11-14"], False, "did not materialise mind_behaviors"),
])
def test_daily_chain_skips_with_a_reason(days, materialise, reason):
    instance = DagsterInstance.ephemeral()
    skip = _chain_tick(instance, _data_run(instance, "aaa", days, materialise_behaviors=materialise))
    assert isinstance(skip, SkipReason) and reason in skip.skip_message


# --- champion_age -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An empty MLflow sqlite store, created (migrated) once per module: creating one takes seconds."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{path}")
    MlflowClient().search_registered_models(max_results=1)
    return path


@pytest.fixture
def registry(empty_store, tmp_path, monkeypatch):
    """A fresh MLflow registry where ``MlflowTracking()`` (the code location's) points: $NEWSFORGE_HOME/mlflow."""
    monkeypatch.setenv("NEWSFORGE_HOME", str(tmp_path))
    monkeypatch.delenv("NEWSFORGE_MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "mlflow").mkdir()
    shutil.copy(empty_store, tmp_path / "mlflow" / "mlflow.db")
    yield MlflowTracking().configure()


def _champion(client: MlflowClient, model: str, day: str) -> str:
    """Register a version of ``model`` from a run gated on ``day`` and make it the champion."""
    exp = client.get_experiment_by_name(f"gated_{model}")
    artifacts = Path(mlflow.get_tracking_uri().removeprefix("sqlite:///")).parent / "artifacts"
    exp_id = exp.experiment_id if exp else client.create_experiment(f"gated_{model}", artifacts.as_uri())
    run = client.create_run(exp_id, tags={"dagster.partition": day, "dagster.asset": model})
    if not client.search_registered_models(f"name = '{model}'"):
        client.create_registered_model(model)
    version = client.create_model_version(model, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(model, "champion", version.version)
    return str(version.version)


def _check_run(newest_day: str | None, max_age_days: int | None = None):
    """Run ``champion_age_job`` (checks only) with ``mind_behaviors`` last loaded up to ``newest_day``."""
    instance = DagsterInstance.ephemeral()
    if newest_day:
        instance.report_runless_asset_event(AssetMaterialization("mind_behaviors",
                                                                 metadata={"days": f"2019-11-09, {newest_day}"}))
    run_config = None
    if max_age_days is not None:
        run_config = {"ops": {f"{m}_champion_age": {"config": {"max_age_days": max_age_days}} for m in GATED_MODELS}}
    result = defs.resolve_job_def("champion_age_job").execute_in_process(instance=instance, run_config=run_config)
    assert result.success  # WARN only: never fails the run
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_every_gated_model_has_a_champion_age_check():
    assert GATED_MODELS == ("ctr_model", "query_generator", "query_list_policy", "query_list_student", "ranker",
                            "ranking_student")


def test_no_champion_warns(registry):
    checks = _check_run("2019-11-14")  # no run config: nothing required
    assert set(checks) == set(GATED_MODELS)
    for check in checks.values():
        assert not check.passed and check.severity == AssetCheckSeverity.WARN
        assert "no champion yet" in check.description
        assert check.metadata["max_age_days"].value == 3


def test_fresh_champion_passes_and_stale_one_warns_with_its_age(registry):
    version = _champion(registry, "ctr_model", "2019-11-13")
    fresh = _check_run("2019-11-14")["ctr_model"]
    assert fresh.passed
    meta = {k: v.value for k, v in fresh.metadata.items()}
    assert meta["champion_version"] == version and meta["champion_day"] == "2019-11-13"
    assert meta["newest_data_day"] == "2019-11-14" and meta["age_days"] == 1 and meta["max_age_days"] == 3

    stale = _check_run("2019-11-20")["ctr_model"]
    assert not stale.passed and stale.severity == AssetCheckSeverity.WARN
    assert stale.metadata["age_days"].value == 7 and "over the limit of 3 days" in stale.description
    assert _check_run("2019-11-20", max_age_days=7)["ctr_model"].passed  # the limit is run config

    _champion(registry, "ctr_model", "2019-11-19")  # a newer champion is fresh again
    assert _check_run("2019-11-20")["ctr_model"].metadata["age_days"].value == 1


def test_champion_without_gated_day_warns(registry):
    _champion(registry, "ranker", "")
    check = _check_run("2019-11-14")["ranker"]
    assert not check.passed and "no dagster.partition tag" in check.description


def test_newest_data_day_falls_back_to_the_prepare_report(registry, tmp_path):
    instance = DagsterInstance.ephemeral()  # no mind_behaviors materialisation (a one-off CLI run)
    prepared = tmp_path / "prepared"
    dvc_data = DvcData(repo_root=str(tmp_path), prepared_dir=str(prepared))
    day, source = newest_data_day(instance, dvc_data)
    assert day is None and source.startswith("none")
    _champion(registry, "ranker", "2019-11-13")
    unknown = champion_age_result("ranker", registry, day, 3, source)
    assert not unknown.passed and "newest data day unknown" in unknown.description
    prepared.mkdir()
    (prepared / "prepare_report.json").write_text(json.dumps({"days": ["2019-11-15", "2019-11-09"]}))
    assert newest_data_day(instance, dvc_data) == ("2019-11-15", f"prepare report in {prepared}")
    instance.report_runless_asset_event(AssetMaterialization("mind_behaviors", metadata={"days": "2019-11-14"}))
    day, source = newest_data_day(instance, dvc_data)  # what the pipeline loaded comes first
    assert day == "2019-11-14" and source.startswith("mind_behaviors materialisation")


def test_max_age_default_from_environment(monkeypatch):
    monkeypatch.setenv(CHAMPION_MAX_AGE_DAYS, "5")
    assert champion_max_age_days() == 5
    monkeypatch.setenv(CHAMPION_MAX_AGE_DAYS, "soon")
    with pytest.raises(ValueError, match="not a whole number"):
        champion_max_age_days()
