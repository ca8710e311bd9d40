"""PREC + CTR assets end to end through the `dagster` CLI on tiny demo data, with the real MLflow registry."""
import json

import pandas as pd
import pytest

from project import REPO_ROOT, finished_runs, make_project, mlflow_client, run

DAY = "2019-11-11"
TINY = """
ops:
  news_encoder:
    config: {hidden_size: 32, num_layers: 1, max_len: 32, max_epochs: 1, batch_size: 64}
  user_encoder:
    config: {hidden_size: 32, num_layers: 1, max_epochs: 1, max_history: 20}
  ctr_model:
    config: {max_epochs: 2, embedding_dim: 8, seed: SEED}
  ctr_evaluation:
    config: {models: [dcn], seeds: [1, 2], max_epochs: 1, embedding_dim: 8}
"""


def materialize(root, select, seed=1, partition=DAY, check=True):
    config = root / f"tiny_{seed}.yaml"
    config.write_text(TINY.replace("SEED", str(seed)))
    return run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", select,
                *(["--partition", partition] if partition else []), "-c", str(config)], root, check=check)


def gate_outcome(proc) -> bool:
    """Whether the run's beats_champion check passed; a failed blocking check fails the run, nothing else may."""
    out = proc.stdout + proc.stderr
    assert "ASSET_CHECK_EVALUATION" in out and "beats_champion" in out
    if proc.returncode == 0:
        return True
    assert "blocking asset check failed with ERROR severity" in out and "ctr_model: beats_champion" in out, out[-3000:]
    assert "Steps failed: ['ctr_model']." in out, out[-3000:]  # the gate's step, and no other
    return False


FIRST_GATE: dict = {}  # project root -> whether version 1 passed its gate


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("models"))
    FIRST_GATE[root] = gate_outcome(materialize(root, "*ctr_model,*ctr_evaluation", check=False))
    return root


def test_lineage_registry_and_pictures(project):
    client = mlflow_client(project)
    enc, emb = finished_runs(client, "news_encoder")[0], finished_runs(client, "news_embeddings")[0]
    user_enc, ctr = finished_runs(client, "user_encoder")[0], finished_runs(client, "ctr_model")[0]
    assert emb.data.tags["upstream.news_encoder.run_id"] == enc.info.run_id
    assert ctr.data.tags["upstream.user_embeddings.run_id"] == finished_runs(client, "user_embeddings")[0].info.run_id
    assert user_enc.data.tags["dagster.partition"] == DAY
    for name in ("news_encoder", "user_encoder", "ctr_model"):
        assert str(client.get_model_version_by_alias(name, "candidate").version) == "1"
    for name, upstream in (("ctr_model", ("mind_news", "mind_behaviors", "news_embeddings", "user_embeddings",
                                          "popularity_baseline")), ("user_encoder", ("mind_behaviors", "news_embeddings"))):
        tags = finished_runs(client, name)[0].data.tags
        for asset in upstream:
            assert tags[f"upstream.{asset}.run_id"] == finished_runs(client, asset)[0].info.run_id
    assert "probe.md" in {a.path for a in client.list_artifacts(enc.info.run_id)}
    assert "tsne.png" in {a.path for a in client.list_artifacts(emb.info.run_id)}
    probe = client.download_artifacts(enc.info.run_id, "probe.md")
    assert all(name in open(probe).read() for name in ("prec_pretrained", "prec_untrained", "tfidf"))
    for key in ("val_loss", "probe_acc_prec_pretrained"):
        assert key in enc.data.metrics


def test_embeddings_cover_catalogue_and_users(project):
    assets = project / ".newsforge" / "assets"
    news = pd.read_parquet(assets / "mind_news" / "all" / "table.parquet")
    news_ids = pd.read_parquet(assets / "news_embeddings" / "all" / "ids.parquet")["id"]
    assert sorted(news_ids) == sorted(news["news_id"])
    hist = pd.read_parquet(assets / "mind_behaviors" / "all" / "histories.parquet")
    users = pd.read_parquet(assets / "user_embeddings" / DAY / "ids.parquet")["id"]
    assert set(users) == set(hist.loc[hist["day"] <= DAY, "user_id"])


def test_news_vectors_are_encoded_once(project):
    materialize(project, "news_embeddings", partition=None)
    latest = finished_runs(mlflow_client(project), "news_embeddings")[0].data.metrics
    assert latest["n_encoded"] == 0 and latest["n_cached"] == latest["n_total"] > 0


def test_predict_then_score_reproduces_the_asset_metrics(project, tmp_path):
    day_dir = tmp_path / "day"
    day_dir.mkdir()
    (day_dir / "news.tsv").write_bytes((project / "data" / "demo" / "news.tsv").read_bytes())
    lines = (project / "data" / "demo" / "behaviors.tsv").read_text().splitlines(keepends=True)
    month, day = int(DAY[5:7]), int(DAY[8:10])
    (day_dir / "behaviors.tsv").write_text("".join(l for l in lines if l.split("\t")[2].startswith(f"{month}/{day}/")))
    run(["newsforge", "predict", "--model", "ctr_model@1", "--data", str(day_dir),
         "--out", str(tmp_path / "prediction.txt")], project)
    out = run(["newsforge", "score", str(day_dir / "behaviors.tsv"), str(tmp_path / "prediction.txt"), "--json"],
              project).stdout
    scored = json.loads(out)
    logged = finished_runs(mlflow_client(project), "ctr_model")[-1].data.metrics  # version 1's run
    # ranks drop float ties the asset's scores may have: AUC can differ only through such ties
    assert scored["auc"] == pytest.approx(logged["auc"], abs=2e-3)
    assert scored["mrr"] == pytest.approx(logged["mrr"], abs=1e-6)
    assert scored["ndcg10"] == pytest.approx(logged["ndcg10"], abs=1e-6)


def _champion(client) -> str | None:
    aliases = client.get_registered_model("ctr_model").aliases
    return aliases.get("champion") and str(aliases["champion"])


def test_first_version_needs_the_popularity_floor(project):
    """No champion to compare with: the floor alone decides, and the check result says so."""
    client = mlflow_client(project)
    metrics, tags = finished_runs(client, "ctr_model")[0].data.metrics, finished_runs(client, "ctr_model")[0].data.tags
    floor = finished_runs(client, "popularity_baseline")[0].data.metrics["auc"]
    assert metrics["floor_auc"] == pytest.approx(floor, abs=1e-12)  # the gate slice is the partition day
    assert FIRST_GATE[project] == (metrics["auc"] > floor) and tags["gate.passed"] == str(FIRST_GATE[project]).lower()
    assert _champion(client) == ("1" if FIRST_GATE[project] else None)
    assert "early_stopping_auc" in metrics and tags["gate.champion_before"] == ""


def test_second_version_is_gated_on_the_partition_day(project):
    before = _champion(mlflow_client(project))
    passed = gate_outcome(materialize(project, "ctr_model", seed=2, check=False))
    client = mlflow_client(project)
    runs = finished_runs(client, "ctr_model")
    new, old = runs[0].data.metrics, runs[1].data.metrics
    assert str(client.get_model_version_by_alias("ctr_model", "candidate").version) == "2"
    assert new["floor_auc"] == pytest.approx(old["floor_auc"], abs=1e-12)
    if before is not None:  # the champion re-scored on the same held-out day
        assert new["champion_auc"] == pytest.approx(old["auc"], abs=1e-9)
    expected = new["auc"] > new["floor_auc"] and (before is None or new["auc"] > new["champion_auc"])
    assert passed == expected
    assert _champion(client) == ("2" if expected else before)


def test_logged_model_loads_from_another_checkout(project, tmp_path):
    """The logged model carries its code: load it with this checkout's packages hidden from Python."""
    script = f"""
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path[:] = [p for p in sys.path if p not in ({str(REPO_ROOT)!r}, {str(project)!r})]
for name in [m for m in sys.modules if m.split(".")[0] in ("training", "serving")]:
    del sys.modules[name]
import mlflow, pandas as pd
mlflow.set_tracking_uri("sqlite:///{project / '.newsforge' / 'mlflow' / 'mlflow.db'}")
model = mlflow.pyfunc.load_model("models:/ctr_model/1")
import serving.ctr_model
assert "/code/serving/" in serving.ctr_model.__file__, serving.ctr_model.__file__
rows = pd.DataFrame({{"impression_id": [1, 1], "user_id": ["U1", "U1"], "time": ["2019-11-11T08:00:00Z"] * 2,
                     "news_id": ["N1", "N2"], "history": ["N3 N4", "N3 N4"]}})
print("scores", list(model.predict(rows)))
"""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "scores [" in proc.stdout


def test_table2_evaluation(project):
    client = mlflow_client(project)
    run_ = finished_runs(client, "ctr_evaluation")[0]
    table = open(client.download_artifacts(run_.info.run_id, "table2.md")).read()
    for label in ("| dcn | base |", "| dcn | +NP |", "| dcn | +NP+UP |", "| popularity_baseline |",
                  "| demo ceiling (Bayes-optimal) |"):
        assert label in table
    csv = pd.read_csv(client.download_artifacts(run_.info.run_id, "table2.csv"))
    assert len(csv) == 3 and (csv["n_seeds"] == 2).all() and csv["auc_std"].notna().all()


def test_report_has_probe_and_table2(project):
    out = run(["newsforge", "report", "--partition", DAY], project).stdout
    assert "| ctr_model |" in out and "| popularity_baseline |" in out
    assert "linear-probe category accuracy" in out and "prec_untrained" in out
    assert "PREC Table 2" in out and "| dcn | +NP+UP |" in out
