"""The champion gate against a real MLflow registry (sqlite + artefacts under tmp_path) and a real Dagster run."""
import shutil
from pathlib import Path

import mlflow
import pytest
from dagster import AssetCheckSeverity, AssetExecutionContext, DagsterInstance, Output, asset, materialize
from mlflow.pyfunc import PythonModel
from mlflow.tracking import MlflowClient

from newsforge.retrain import read_run, summary_markdown
from orchestration.champion_gate import (
    ChampionUnusableError,
    GateConflictError,
    decide,
    gate_check_spec,
    gated_outputs,
    promote,
)
from training.registry import CANDIDATE, CHAMPION, alias_version, log_and_register, set_alias

FLOOR = {"auc": 0.55}


class Constant(PythonModel):
    """Scores every row with the AUC it was given (enough to drive the gate through a real load)."""

    def __init__(self, auc: float) -> None:
        self.auc = auc

    def predict(self, context, model_input, params=None):
        return [self.auc] * len(model_input)


@pytest.fixture
def registry(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.create_experiment("gating", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    yield tmp_path
    mlflow.set_tracking_uri(None)


def register(auc: float) -> str:
    with mlflow.start_run():
        return log_and_register("m", Constant(auc), {}, local_dir=".", content_version=str(auc),
                                candidate_alias=False).version


def load_and_score(version: str) -> dict:
    """Loads the version back from the registry, as the real assets do."""
    model = mlflow.pyfunc.load_model(f"models:/m/{version}")
    return {"auc": float(model.predict([[0]])[0])}


def failing_for(broken: str, error: Exception):
    """``load_and_score``, except that scoring version ``broken`` raises ``error``."""
    def score(version: str) -> dict:
        if version == broken:
            raise error
        return load_and_score(version)
    return score


def gate(version: str, **kwargs):
    decision = decide("m", version, load_and_score, FLOOR, **kwargs)
    promote(decision)
    return decision


def aliases() -> tuple[str | None, str | None]:
    return alias_version("m", CANDIDATE), alias_version("m", CHAMPION)


def test_first_version_must_beat_the_floor(registry):
    v1 = register(0.54)  # like ctr_model on the real MIND sample: below popularity
    d = gate(v1)
    assert not d.passed and d.outcome == "failed" and "floor" in d.reason
    assert aliases() == (v1, None)
    v2 = register(0.60)
    assert gate(v2).passed and aliases() == (v2, v2)


def test_win_tie_and_loss(registry):
    v1 = register(0.60)
    gate(v1)
    v2 = register(0.60)
    tie = gate(v2)
    assert tie.outcome == "kept" and "tie is not a win" in tie.reason and aliases() == (v2, v1)
    v3 = register(0.58)
    assert gate(v3).outcome == "kept" and aliases() == (v3, v1)
    v4 = register(0.61)
    win = gate(v4)
    assert win.outcome == "promoted" and win.champion_metrics == {"auc": 0.60} and aliases() == (v4, v4)
    v5 = register(0.55)  # the floor: a tie with it is no pass either
    assert gate(v5).outcome == "failed" and aliases() == (v5, v4)


def test_candidate_scoring_crash_moves_nothing(registry):
    v1 = register(0.60)
    gate(v1)
    v2 = register(0.70)
    with pytest.raises(RuntimeError, match="candidate could not be scored"):
        decide("m", v2, failing_for(v2, RuntimeError("candidate could not be scored")), FLOOR)
    assert aliases() == (v1, v1)


def test_champion_scoring_crash_names_the_alias_and_the_option(registry):
    v1 = register(0.60)
    gate(v1)
    v2 = register(0.70)
    with pytest.raises(ChampionUnusableError, match=r"m@champion \(version 1\).*force_promote"):
        decide("m", v2, failing_for(v1, ValueError("champion scores are NaN")), FLOOR)
    assert aliases() == (v1, v1)


def test_crash_after_registration_before_the_aliases_move(registry):
    v1 = register(0.60)
    gate(v1)
    v2 = register(0.70)
    decision = decide("m", v2, load_and_score, FLOOR)
    assert decision.passed
    # the process dies here, between the decision and promote(): nothing has moved
    assert aliases() == (v1, v1)


def test_champion_with_deleted_artefacts(registry):
    v1 = register(0.60)
    gate(v1)
    shutil.rmtree(Path(registry / "artifacts"))  # every logged file of the champion is gone
    v2 = register(0.59)
    with pytest.raises(ChampionUnusableError, match="force_promote"):
        decide("m", v2, load_and_score, FLOOR)
    assert aliases() == (v1, v1)
    v3 = register(0.65)
    forced = gate(v3, force_promote=True)
    assert forced.passed and forced.champion_error and aliases() == (v3, v3)


def test_force_promote_still_needs_the_floor(registry):
    v1 = register(0.60)
    gate(v1)
    v2 = register(0.50)
    d = decide("m", v2, failing_for(v1, OSError("artefacts gone")), FLOOR, force_promote=True)
    promote(d)
    assert d.outcome == "failed" and aliases() == (v2, v1)


def test_promote_refuses_when_the_champion_moved_meanwhile(registry):
    v1 = register(0.60)
    gate(v1)
    v2 = register(0.70)
    decision = decide("m", v2, load_and_score, FLOOR)
    v3 = register(0.80)
    set_alias("m", CHAMPION, v3)  # another run promoted v3 in the meantime
    with pytest.raises(GateConflictError, match="moved from 1 to 3"):
        promote(decision)
    assert alias_version("m", CHAMPION) == v3


def _gated_assets(auc: float, deployed: list):
    @asset(check_specs=[gate_check_spec("model")])
    def model(context: AssetExecutionContext):
        version = register(auc)
        yield from gated_outputs(Output(version), decide("m", version, load_and_score, FLOOR))

    @asset
    def deploy(model):
        deployed.append((model, alias_version("m", CHAMPION)))  # like the real assets: it serves the champion
        return model

    return [model, deploy]


def test_gate_outcomes_in_a_real_dagster_run(registry, tmp_path, monkeypatch):
    """promoted: the check passes. kept (above the floor, not above the champion): the check fails with WARN, yet
    the step and the run succeed and downstream runs, on the unchanged champion. failed (not above the floor):
    ERROR fails the step and the run, and downstream does not run. `newsforge retrain` reads each run back."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # read_run reads the instance from there
    (tmp_path / "dagster").mkdir()
    deployed = []
    with DagsterInstance.get() as instance:
        ok = materialize(_gated_assets(0.60, deployed), instance=instance)
        assert ok.success and deployed == [("1", "1")] and aliases() == ("1", "1")
        assert [c.passed for c in ok.get_asset_check_evaluations()] == [True]

        kept = materialize(_gated_assets(0.58, deployed), instance=instance, raise_on_error=False)
        assert kept.success  # a kept champion is an outcome, not a crash ...
        assert deployed[-1] == ("2", "1")  # ... downstream ran, and the champion stays
        (check,) = kept.get_asset_check_evaluations()
        assert not check.passed and check.severity == AssetCheckSeverity.WARN
        assert check.description.startswith("kept the champion: candidate v2 auc 0.5800 vs champion v1 auc 0.6000")
        assert aliases() == ("2", "1")

        failed = materialize(_gated_assets(0.50, deployed), instance=instance, raise_on_error=False)
        assert not failed.success  # Dagster fails the step on a blocking check failed with ERROR ...
        assert len(deployed) == 2  # ... and the asset downstream of it does not run
        (check,) = failed.get_asset_check_evaluations()
        assert not check.passed and check.severity == AssetCheckSeverity.ERROR
        assert check.description.startswith("failed: candidate v3 auc 0.5000 vs champion v1 auc 0.6000")
        assert aliases() == ("3", "1")

    summaries = [read_run(result.run_id) for result in (ok, kept, failed)]
    assert [[g.outcome for g in s.gates] for s in summaries] == [["promoted"], ["kept"], ["failed"]]
    assert [s.exit_status for s in summaries] == [0, 3, 1]
    assert summaries[1].kept == ["model"] and summaries[1].failed == {} and summaries[1].status == "SUCCESS"
    assert list(summaries[2].failed) == ["model"] and summaries[2].failed["model"].startswith("failed: candidate v3")
    assert summaries[2].skipped == ["deploy"]
    markdown = summary_markdown(summaries[1], "", {})
    assert "✅ succeeded, champion kept (model)" in markdown.splitlines()[0]
    assert "| model | kept | v2 | auc | 0.5800 | v1 0.6000 | 0.5500 | v1 |" in markdown
