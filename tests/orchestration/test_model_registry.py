"""Champion gating against a real MLflow registry (sqlite): better moves the alias, worse or a crash does not."""
import mlflow
import pytest
from mlflow.pyfunc import PythonModel

from orchestration.model_registry import CANDIDATE, CHAMPION, alias_version, gate_champion, log_and_register


class Constant(PythonModel):
    def predict(self, context, model_input, params=None):
        return [0.5] * len(model_input)


@pytest.fixture
def registry(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("gating")
    yield
    mlflow.set_tracking_uri(None)


def _register(tmp_path) -> str:
    (tmp_path / "weights").mkdir(exist_ok=True)
    with mlflow.start_run():
        return log_and_register("m", Constant(), {"weights": str(tmp_path / "weights")},
                                local_dir=tmp_path, content_version="x").version


def test_better_moves_worse_stays_crash_stays(registry, tmp_path):
    auc = {}
    v1 = _register(tmp_path)
    assert alias_version("m", CANDIDATE) == v1 and alias_version("m", CHAMPION) is None
    auc[v1] = 0.60
    first = gate_champion("m", v1, lambda v: {"auc": auc[v]})
    assert first.passed and first.champion_version is None and alias_version("m", CHAMPION) == v1

    v2 = _register(tmp_path)
    auc[v2] = 0.55  # worse
    worse = gate_champion("m", v2, lambda v: {"auc": auc[v]})
    assert not worse.passed and worse.new_champion == v1
    assert alias_version("m", CHAMPION) == v1 and alias_version("m", CANDIDATE) == v2

    v3 = _register(tmp_path)
    auc[v3] = 0.65  # better
    better = gate_champion("m", v3, lambda v: {"auc": auc[v]})
    assert better.passed and better.champion_metrics == {"auc": 0.60}
    assert alias_version("m", CHAMPION) == v3

    v4 = _register(tmp_path)

    def crash(version):
        if version == v3:
            raise RuntimeError("champion could not be scored")
        return {"auc": 0.99}

    with pytest.raises(RuntimeError):
        gate_champion("m", v4, crash)
    assert alias_version("m", CHAMPION) == v3  # a crash mid-comparison never moves the alias


def test_equal_is_not_better(registry, tmp_path):
    v1 = _register(tmp_path)
    gate_champion("m", v1, lambda v: {"auc": 0.6})
    v2 = _register(tmp_path)
    assert not gate_champion("m", v2, lambda v: {"auc": 0.6}).passed
    assert alias_version("m", CHAMPION) == v1
