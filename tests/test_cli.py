"""The `newsforge` console script: validation exit codes and MIND scoring against an independent computation."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

BIN = Path(sys.executable).parent


def newsforge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "newsforge"), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo"
    proc = newsforge("data", "generate", str(out), "--users", "150", "--news", "200", "--days", "2",
                     "--impressions-per-day", "80")
    assert proc.returncode == 0, proc.stderr
    return out


def test_validate_clean_and_corrupted(demo_dir, tmp_path):
    ok = newsforge("data", "validate", str(demo_dir))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "news.tsv").write_bytes((demo_dir / "news.tsv").read_bytes())
    lines = (demo_dir / "behaviors.tsv").read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("-0", "-x", 1)
    (bad / "behaviors.tsv").write_text("".join(lines))
    proc = newsforge("data", "validate", str(bad))
    assert proc.returncode == 1
    assert f"{bad / 'behaviors.tsv'}:3: field 'impressions'" in proc.stdout and "is not 0 or 1" in proc.stdout


def _independent_scores(behaviors: Path, scores_by_imp: dict[int, np.ndarray]) -> dict[str, float]:
    """Per-impression loop with scikit-learn AUC and MIND's official formulas (score = 1/rank)."""
    aucs, mrrs, n5, n10 = [], [], [], []

    def dcg(y, s, k):
        order = np.argsort(s)[::-1]
        y = np.take(y, order[:k])
        return np.sum((2 ** y - 1) / np.log2(np.arange(len(y)) + 2))

    for line in behaviors.read_text().splitlines():
        imp, _, _, _, cands = line.split("\t")
        y = np.array([int(c.rsplit("-", 1)[1]) for c in cands.split()], dtype=float)
        ranks = np.argsort(np.argsort(-scores_by_imp[int(imp)], kind="stable"), kind="stable") + 1
        s = 1.0 / ranks
        aucs.append(roc_auc_score(y, s))
        order = np.argsort(s)[::-1]
        mrrs.append(np.sum(np.take(y, order) / (np.arange(len(y)) + 1)) / np.sum(y))
        n5.append(dcg(y, s, 5) / dcg(y, y, 5))
        n10.append(dcg(y, s, 10) / dcg(y, y, 10))
    return {"auc": np.mean(aucs), "mrr": np.mean(mrrs), "ndcg5": np.mean(n5), "ndcg10": np.mean(n10)}


def test_score_json_agrees_with_independent_computation(demo_dir, tmp_path):
    rng = np.random.default_rng(0)
    pred, scores = [], {}
    for line in (demo_dir / "behaviors.tsv").read_text().splitlines():
        imp, *_, cands = line.split("\t")
        s = rng.random(len(cands.split()))
        scores[int(imp)] = s
        ranks = np.argsort(np.argsort(-s, kind="stable"), kind="stable") + 1
        pred.append(f"{imp} [{','.join(map(str, ranks))}]")
    (tmp_path / "prediction.txt").write_text("\n".join(pred) + "\n")
    proc = newsforge("score", str(demo_dir / "behaviors.tsv"), str(tmp_path / "prediction.txt"), "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    expected = _independent_scores(demo_dir / "behaviors.tsv", scores)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6)


def test_score_rejects_a_malformed_prediction(demo_dir, tmp_path):
    first = (demo_dir / "behaviors.tsv").read_text().splitlines()[0].split("\t")[0]
    (tmp_path / "p.txt").write_text(f"{first} [1,1]\n")
    proc = newsforge("score", str(demo_dir / "behaviors.tsv"), str(tmp_path / "p.txt"))
    assert proc.returncode == 2 and "p.txt" in proc.stderr and "line 1" in proc.stderr


REGISTER_MODELS = """
import mlflow
from mlflow.tracking import MlflowClient


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [0.5] * len(model_input)


client = MlflowClient()
mlflow.set_experiment(experiment_id=client.create_experiment("registry", artifact_location=ARTIFACTS))
for name in ("ctr_model", "ctr_model", "news_encoder"):
    with mlflow.start_run():
        mlflow.pyfunc.log_model(name=name, python_model=Constant(), registered_model_name=name, pip_requirements=[])
client.set_registered_model_alias("ctr_model", "champion", "1")
client.set_registered_model_alias("ctr_model", "candidate", "2")
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> tuple[str, Path]:
    """A local MLflow store (sqlite + artifacts under tmp): ctr_model v1 (champion), v2 (candidate), news_encoder v1."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    script = f"ARTIFACTS = {(root / 'artifacts').as_uri()!r}\n" + REGISTER_MODELS
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    assert proc.returncode == 0, proc.stderr
    return uri, root


@pytest.mark.parametrize("spec, message", [
    ("ctr_model@nope", "ctr_model has no alias 'nope'; aliases: candidate -> v2, champion -> v1"),
    ("ctr_model@7", "ctr_model has no version 7; versions: 1, 2"),
    ("x@champion", "no registered model 'x'; registered: ctr_model, news_encoder"),
])
def test_predict_names_what_the_registry_holds(registry, demo_dir, spec, message):
    uri, root = registry
    proc = subprocess.run([str(BIN / "newsforge"), "predict", "--model", spec, "--data", str(demo_dir),
                           "--out", str(root / "prediction.txt"), "--tracking-uri", uri],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NEWSFORGE_HOME": str(root / "home")})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"newsforge predict: {message}"]
    assert not (root / "prediction.txt").exists()
