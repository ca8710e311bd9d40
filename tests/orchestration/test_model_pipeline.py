"""PREC + CTR assets end to end on tiny demo data with the real MLflow registry: built by `newsforge retrain`
(the command CI retraining runs), then driven through the `dagster` CLI, up to a three-day backfill."""
import json
import shlex

import pandas as pd
import pytest
import yaml
from project import REPO_ROOT, TINY_PARAMS, finished_runs, make_project, mlflow_client, run

DAY = "2019-11-11"
BACKFILL = ["2019-11-11", "2019-11-12", "2019-11-13"]
PARAMS = TINY_PARAMS.replace("days: 3", "days: 5")
# The floor counts the clicks of the days before only (same_day: false): on data this small the CTR model
# rarely beats same-day popularity, and the backfill must see a champion move to exercise warm starts.
TINY = """
ops:
  popularity_baseline:
    config: {same_day: false}
  news_encoder:
    config: {hidden_size: 32, num_layers: 1, max_len: 32, max_epochs: 1, batch_size: 64}
  user_encoder:
    config: {hidden_size: 32, num_layers: 1, max_epochs: 1, max_history: 20}
  ctr_model:
    config: {max_epochs: 2, embedding_dim: 8, seed: SEED, warm_start: WARM}
  ctr_evaluation:
    config: {models: [dcn], seeds: [1, 2], max_epochs: 1, embedding_dim: 8}
"""
DAILY_UPSTREAM = "impressions,popularity_baseline,user_encoder,user_embeddings"


def config_file(root, seed=1, warm=False):
    config = root / f"tiny_{seed}_{str(warm).lower()}.yaml"
    config.write_text(TINY.replace("SEED", str(seed)).replace("WARM", str(warm).lower()))
    return config


def materialize(root, select, seed=1, partition=DAY, check=True):
    return run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", select,
                *(["--partition", partition] if partition else []), "-c", str(config_file(root, seed))], root,
               check=check)


def gate_outcome(proc, root) -> str:
    """The run's ctr_model gate outcome (its MLflow run's ``gate.outcome``). Only a candidate below the floor
    fails the run (a blocking check failed with ERROR); a kept champion is a successful run; nothing else may fail."""
    out = proc.stdout + proc.stderr
    assert "ASSET_CHECK_EVALUATION" in out and "beats_champion" in out
    outcome = finished_runs(mlflow_client(root), "ctr_model")[0].data.tags["gate.outcome"]
    if outcome != "failed":
        assert proc.returncode == 0 and "RUN_SUCCESS" in out, out[-3000:]
        return outcome
    assert "blocking asset check failed with ERROR severity" in out and "ctr_model: beats_champion" in out, out[-3000:]
    assert "Steps failed: ['ctr_model']." in out, out[-3000:]  # the gate's step, and no other
    return outcome


FIRST_GATE: dict = {}  # project root -> whether version 1 passed its gate (from the Dagster check evaluation)
RETRAIN: dict = {}     # project root -> (the retrain command's process, its --out folder, its --summary file)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("models"), PARAMS)
    out, summary = root.parent / "retrain-out", root.parent / "step-summary.md"
    proc = run(["newsforge", "retrain", "--partition", DAY, "--select", "*ctr_model,*ctr_evaluation",
                "-c", str(config_file(root)), "--out", str(out), "--summary", str(summary)], root, check=False,
               timeout=900)
    (gate,) = [g for g in json.loads((out / "gates.json").read_text())["gates"] if g["asset"] == "ctr_model"]
    # no champion yet: promoted (exit 0) or below the popularity floor (exit 1), never kept
    assert proc.returncode == {"promoted": 0, "failed": 1}[gate["outcome"]], proc.stdout[-3000:] + proc.stderr[-3000:]
    FIRST_GATE[root], RETRAIN[root] = gate["passed"], (proc, out, summary)
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
                                          "popularity_baseline")),
                           ("user_encoder", ("mind_behaviors", "news_embeddings"))):
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
    day_lines = [line for line in lines if line.split("\t")[2].startswith(f"{month}/{day}/")]
    (day_dir / "behaviors.tsv").write_text("".join(day_lines))
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
    assert tags["gate.outcome"] == ("promoted" if FIRST_GATE[project] else "failed")
    assert _champion(client) == ("1" if FIRST_GATE[project] else None)
    assert "early_stopping_auc" in metrics and tags["gate.champion_before"] == ""


def test_second_version_is_gated_on_the_partition_day(project):
    before = _champion(mlflow_client(project))
    outcome = gate_outcome(materialize(project, "ctr_model", seed=2, check=False), project)
    client = mlflow_client(project)
    runs = finished_runs(client, "ctr_model")
    new, old = runs[0].data.metrics, runs[1].data.metrics
    assert str(client.get_model_version_by_alias("ctr_model", "candidate").version) == "2"
    assert new["floor_auc"] == pytest.approx(old["floor_auc"], abs=1e-12)
    if before is not None:  # the champion re-scored on the same held-out day
        assert new["champion_auc"] == pytest.approx(old["auc"], abs=1e-9)
    beats = before is None or new["auc"] > new["champion_auc"]
    expected = "failed" if not new["auc"] > new["floor_auc"] else "promoted" if beats else "kept"
    assert outcome == expected
    assert _champion(client) == ("2" if expected == "promoted" else before)


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


def test_retrain_command_registers_and_summarises(project):
    """`newsforge retrain` built this project: its summary and gates.json agree with the registry and MLflow."""
    proc, out, summary = RETRAIN[project]
    client = mlflow_client(project)
    ctr = finished_runs(client, "ctr_model")[-1]  # version 1's run
    passed = FIRST_GATE[project]
    assert ctr.data.tags["dagster.partition"] == DAY and ctr.data.tags["gate.candidate"] == "1"
    assert ctr.data.tags["gate.passed"] == str(passed).lower()
    gates = json.loads((out / "gates.json").read_text())
    (gate,) = [g for g in gates["gates"] if g["asset"] == "ctr_model"]
    assert gate["candidate_version"] == "1" and gate["blocking"] and gate["champion_before"] == ""
    assert gate["candidate"] == pytest.approx(ctr.data.metrics["auc"])
    assert gate["floor"] == pytest.approx(ctr.data.metrics["floor_auc"])
    assert gate["champion_after"] == ("1" if passed else "")
    assert gate["outcome"] == ("promoted" if passed else "failed") and gates["kept"] == []
    assert list(gates["failed"]) == ([] if passed else ["ctr_model"])  # below the floor: the one failure
    assert gates["exit_status"] == proc.returncode == (0 if passed else 1)
    text = summary.read_text()
    assert text == (out / "summary.md").read_text() + "\n"
    assert "## Champion gates" in text and f"| ctr_model | {gate['outcome']} | v1 | auc |" in text
    assert f"- **ctr_model**: {gate['outcome']}: candidate v1 auc " in text  # the gate's one-line summary
    for asset in ("news_encoder", "user_embeddings", "popularity_baseline", "ctr_model", "ctr_evaluation"):
        assert f"| {asset} | http://" in text  # every materialised asset with its MLflow run link
    if not passed:
        assert "`ctr_evaluation`" not in text.split("## Not run")[-1]  # not downstream of the gate: it ran
    assert f"### Partition {DAY}" in text and "PREC Table 2" in (out / "report.md").read_text()
    assert "data:image/png;base64," in (out / "report.html").read_text()  # the figures, inline


def test_retrain_refuses_bad_input_with_clear_errors(project):
    bad = run(["newsforge", "retrain", "--partition", "11/11/2019"], project, check=False)
    assert bad.returncode == 2 and "expected YYYY-MM-DD" in bad.stderr
    report = project / "data" / "prepared" / "prepare_report.json"
    report.rename(project / "moved.json")
    try:
        stale = run(["newsforge", "retrain", "--partition", DAY, "--select", "ctr_model"], project, check=False)
    finally:
        (project / "moved.json").rename(report)
    assert stale.returncode == 2 and "dvc.lock" in stale.stderr and "dagster asset materialize" not in stale.stdout


def test_retrain_pulls_the_data_from_the_dvc_remote(project):
    """CI starts without the data: `--data pull` brings it from the DVC remote before materialising."""
    import shutil

    run(["dvc", "push", "-q"], project)
    shutil.rmtree(project / "data" / "prepared")
    out = project.parent / "pull-out"
    proc = run(["newsforge", "retrain", "--partition", DAY, "--select", "impressions", "--data", "pull",
                "--out", str(out)], project, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (project / "data" / "prepared" / "prepare_report.json").is_file()
    gates = json.loads((out / "gates.json").read_text())
    assert gates["status"] == "SUCCESS" and gates["gates"] == []
    assert "| impressions | http://" in (out / "summary.md").read_text()


def test_three_day_backfill_gates_in_date_order_with_warm_starts(project):
    for day in BACKFILL[1:]:
        materialize(project, DAILY_UPSTREAM, partition=day)
    client = mlflow_client(project)
    before = {r.info.run_id for r in finished_runs(client, "ctr_model")}
    latest = max(int(v.version) for v in client.search_model_versions("name='ctr_model'"))
    champion_before = str(client.get_registered_model("ctr_model").aliases.get("champion", ""))
    if not champion_before:  # tiny models may all have lost to popularity so far: install one by hand, so the
        champion_before = str(latest)  # backfill has a champion to gate against and warm-start from
        client.set_registered_model_alias("ctr_model", "champion", champion_before)
    proc = run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", "ctr_model",
                "--partition-range", f"{BACKFILL[0]}...{BACKFILL[-1]}", "-c", str(config_file(project, 3, True))],
               project, check=False, timeout=900)
    new = [r for r in reversed(finished_runs(client, "ctr_model")) if r.info.run_id not in before]  # oldest first
    assert [r.data.tags["dagster.partition"] for r in new] == BACKFILL, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len({r.data.tags["dagster.run_id"] for r in new}) == 1  # one Dagster run for the whole range
    assert [r.data.tags["gate.candidate"] for r in new] == [str(latest + i) for i in (1, 2, 3)]
    # each day is gated against the champion the previous day left, and warm-starts from it
    expected = champion_before
    for r in new:
        tags = r.data.tags
        assert tags["gate.champion_before"] == expected and tags.get("warm_start.version", "") == expected
        assert tags["gate.champion_after"] == (tags["gate.candidate"] if tags["gate.passed"] == "true" else expected)
        expected = tags["gate.champion_after"]
    assert new[-1].data.tags.get("warm_start.version"), "no champion to warm-start the last day from"
    aliases = client.get_registered_model("ctr_model").aliases
    assert str(aliases.get("champion", "")) == expected and str(aliases["candidate"]) == str(latest + 3)
    # only a day below the floor fails the run; a day that kept its champion is no failure
    assert (proc.returncode == 0) == all(r.data.tags["gate.outcome"] != "failed" for r in new)
    # each day's value is stored in its own folder, written by that day's run, with that day's upstream run
    assets = project / ".newsforge" / "assets"
    for r in new:
        day = r.data.tags["dagster.partition"]
        lineage = json.loads((assets / "ctr_model" / day / "lineage.json").read_text())
        assert lineage["mlflow_run_id"] == r.info.run_id and lineage["partition"] == day
        users = json.loads((assets / "user_embeddings" / day / "lineage.json").read_text())
        assert r.data.tags["upstream.user_embeddings.run_id"] == users["mlflow_run_id"]
    # the alias history, oldest first, ends with the backfill's three days, each continuing the one before
    from orchestration.champion_gate import gate_history

    history = gate_history("ctr_model", client)
    assert [(h.day, h.candidate) for h in history[-3:]] == list(zip(BACKFILL, [str(latest + i) for i in (1, 2, 3)]))
    assert history[-3].champion_before == champion_before
    assert all(a.champion_after == b.champion_before for a, b in zip(history[-3:], history[-2:]))


def test_workflow_runs_the_retrain_command_on_its_triggers():
    from newsforge.cli import build_parser

    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "retrain.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["push"] == {"branches": ["main"], "paths": ["dvc.lock"]}
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"]  # daily
    assert "partition" in triggers["workflow_dispatch"]["inputs"]
    steps = workflow["jobs"]["retrain"]["steps"]
    assert "make install" in [s.get("run", "").strip() for s in steps]  # the README's set-up
    (retrain,) = [s for s in steps if "newsforge retrain" in s.get("run", "")]
    words = shlex.split(retrain["run"].replace("$GITHUB_STEP_SUMMARY", "summary.md"))
    end = words.index("||")
    assert words[end:] == ["||", "[", "$?", "-eq", "3", "]"]  # exit 3 (a gate kept its champion) is success
    args = build_parser().parse_args(words[words.index(".venv/bin/newsforge") + 1:end])  # flags the CLI knows
    assert args.func.__name__ == "_cmd_retrain" and args.data == "pull" and args.partition == "$PARTITION"
    assert retrain["env"]["PARTITION"].startswith("${{ github.event.inputs.partition")
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload and upload[0]["with"]["path"].rstrip("/") == str(args.out)
    env = workflow["jobs"]["retrain"]["env"]
    assert all(str(v).startswith("${{ secrets.") for k, v in env.items()
               if k.startswith(("MLFLOW", "NEWSFORGE_MLFLOW", "AWS")))
