"""The champion gate against a real MLflow registry (sqlite + artefacts under tmp_path) and a real Dagster run."""
import shutil
from pathlib import Path

import mlflow
import pytest
from dagster import AssetExecutionContext, DagsterInstance, Output, asset, materialize
from mlflow.pyfunc import PythonModel
from mlflow.tracking import MlflowClient

from orchestration.champion_gate import (
    ChampionUnusableError, GateConflictError, decide, gate_check_spec, gated_outputs, promote,
)
from orchestration.model_registry import CANDIDATE, CHAMPION, alias_version, log_and_register, set_alias

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
    assert not d.passed and "floor" in d.reason
    assert aliases() == (v1, None)
    v2 = register(0.60)
    assert gate(v2).passed and aliases() == (v2, v2)


def test_win_tie_and_loss(registry):
    v1 = register(0.60)
    gate(v1)
    v2 = register(0.60)
    tie = gate(v2)
    assert not tie.passed and "tie is not a win" in tie.reason and aliases() == (v2, v1)
    v3 = register(0.58)
    assert not gate(v3).passed and aliases() == (v3, v1)
    v4 = register(0.61)
    win = gate(v4)
    assert win.passed and win.champion_metrics == {"auc": 0.60} and aliases() == (v4, v4)


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
    assert not d.passed and aliases() == (v2, v1)


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
        deployed.append(model)
        return model

    return [model, deploy]


def test_blocking_check_in_a_real_dagster_run(registry):
    deployed = []
    instance = DagsterInstance.ephemeral()
    ok = materialize(_gated_assets(0.60, deployed), instance=instance)
    assert ok.success and deployed == ["1"] and aliases() == ("1", "1")
    checks = ok.get_asset_check_evaluations()
    assert [c.passed for c in checks] == [True]

    lost = materialize(_gated_assets(0.58, deployed), instance=instance, raise_on_error=False)
    assert not lost.success  # Dagster fails the step on a failed blocking check ...
    assert deployed == ["1"]  # ... and the asset downstream of it does not run
    assert [c.passed for c in lost.get_asset_check_evaluations()] == [False]
    assert aliases() == ("2", "1")  # the new version is the candidate, the champion stays
