"""Quality-aware ranking end to end through the `dagster` CLI on tiny demo data: pair logs, golden set,
judges, teachers, the gated student and the evaluation, with the real MLflow registry."""
import mlflow
import numpy as np
import pandas as pd
import pytest
from project import finished_runs, make_project, mlflow_client, run

DAY = "2019-11-11"
TINY = """
ops:
  news_encoder:
    config: {hidden_size: 32, num_layers: 1, max_len: 32, max_epochs: 1, batch_size: 64}
  golden_set:
    config: {size: 60}
  judge_evaluation:
    config: {llm_variants: []}
  quality_labels:
    config: {n_pairs: 300, JUDGE}
  click_teacher:
    config: {max_len: 32, max_steps: 6, batch_size: 16}
  quality_teacher:
    config: {max_len: 32, max_steps: 6, batch_size: 16}
  ranking_student:
    config: {student: {hidden_size: 16, intermediate_size: 32, epochs: 1, max_len: 24}, eval_impressions: 0, seed: SEED}
  ranking_evaluation:
    config: {student: {hidden_size: 16, intermediate_size: 32, epochs: 1, max_len: 24}, seeds: [1, 2],
             eval_impressions: 0}
"""
ASSETS = ("pair_logs", "golden_set", "judge_evaluation", "quality_labels", "click_teacher", "quality_teacher",
          "distillation_set", "ranking_student", "ranking_evaluation")


def materialize(root, select, seed=1, judge="judge: auto", check=True, partition=DAY):
    config = root / f"quality_{seed}.yaml"
    config.write_text(TINY.replace("SEED", str(seed)).replace("JUDGE", judge))
    return run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", select,
                *(["--partition", partition] if partition else []), "-c", str(config)], root, check=check)


def gate_outcome(proc, root) -> str:
    """The run's ranking_student gate outcome (its MLflow run's ``gate.outcome``); only a candidate below the floor
    fails the run (a kept champion is a successful run), and nothing else may."""
    out = proc.stdout + proc.stderr
    assert "ASSET_CHECK_EVALUATION" in out and "beats_champion" in out
    outcome = finished_runs(mlflow_client(root), "ranking_student")[0].data.tags["gate.outcome"]
    if outcome != "failed":
        assert proc.returncode == 0, out[-3000:]
        return outcome
    assert "ranking_student: beats_champion" in out and "Steps failed: ['ranking_student']." in out, out[-3000:]
    return outcome


FIRST: dict = {}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("quality"))
    proc = materialize(root, "*ranking_evaluation,*ranking_student", check=False)
    FIRST[root] = gate_outcome(proc, root) == "promoted"
    return root


def _aliases(client, name="ranking_student") -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}


def test_every_asset_ran_with_its_lineage(project):
    client = mlflow_client(project)
    for asset in ASSETS:
        assert finished_runs(client, asset), asset
    student = finished_runs(client, "ranking_student")[0].data.tags
    assert student["upstream.distillation_set.run_id"] == finished_runs(client, "distillation_set")[0].info.run_id
    assert student["upstream.popularity_baseline.run_id"] == finished_runs(client, "popularity_baseline")[0].info.run_id
    labels = finished_runs(client, "quality_labels")[0].data.tags
    assert labels["judge"] == "simulated" and "not a model" in labels["judge.simulated"]
    versions = {v.tags.get("loss") for v in client.search_model_versions("name = 'quality_teacher'")}
    assert versions == {"ce", "sce"}
    assert str(client.get_model_version_by_alias("click_teacher", "candidate").version) == "1"
    teacher = finished_runs(client, "click_teacher")[0]
    assert teacher.data.params["early_stopping_day"] not in teacher.data.params["fit_days"]
    assert teacher.data.metrics["chosen_epoch"] >= 1 and "early_stopping_accuracy" in teacher.data.metrics


def test_pair_logs_and_labels(project):
    assets = project / ".newsforge" / "assets"
    labels = pd.read_parquet(assets / "quality_labels" / DAY / "table.parquet")
    assert len(labels) == 300 and labels["score"].between(0, 4).all() and set(labels["part"]) == {"train"}
    golden = pd.read_parquet(assets / "golden_set" / "all" / "table.parquet")
    assert len(golden) == 60 and golden["label"].sum() == 30
    table1 = finished_runs(mlflow_client(project), "judge_evaluation")[0]
    assert table1.data.metrics["pa_simulated"] == pytest.approx(0.87, abs=0.01)
    # every row has its bootstrap interval over golden pairs; the demo truth gives the perfect-text ceiling
    metrics = table1.data.metrics
    assert metrics["pa_low_simulated"] < metrics["pa_simulated"] < metrics["pa_high_simulated"]
    assert (metrics["pa_low_perfect_text_ceiling"] < metrics["pa_perfect_text_ceiling"]
            < metrics["pa_high_perfect_text_ceiling"])
    assert golden["perfect_text_score"].notna().all()


def test_first_student_is_gated_on_the_popularity_floor(project):
    client = mlflow_client(project)
    run_ = finished_runs(client, "ranking_student")[0]
    metrics, tags = run_.data.metrics, run_.data.tags
    assert run_.data.params["warm_start"] == "click-only"
    assert FIRST[project] == (metrics["reco_dcg5"] > metrics["floor_reco_dcg5"])
    assert tags["gate.passed"] == str(FIRST[project]).lower() and tags["gate.quality_source"] == "truth"
    assert tags["gate.outcome"] == ("promoted" if FIRST[project] else "failed")  # no champion: the floor decides
    aliases = _aliases(client)
    assert aliases.get("candidate") == "1" and aliases.get("champion") == ("1" if FIRST[project] else None)


def test_registered_student_loads_from_the_registry_and_scores_pairs(project):
    """The champion when version 1 passed its gate (else the candidate: the same registry path)."""
    alias = "champion" if "champion" in _aliases(mlflow_client(project)) else "candidate"
    mlflow.set_tracking_uri(f"sqlite:///{project / '.newsforge' / 'mlflow' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/ranking_student@{alias}")
    pairs = pd.DataFrame({"trigger_id": ["N1", "N1", "N2"], "candidate_id": ["N2", "N3", "N3"]})
    scored = model.predict(pairs)
    assert list(scored.columns) == ["click_logit", "quality", "score"] and len(scored) == 3
    assert np.isfinite(scored.to_numpy()).all() and scored["quality"].between(0, 4).all()
    with pytest.raises(ValueError, match="N999"):
        model.predict(pd.DataFrame({"trigger_id": ["N1"], "candidate_id": ["N999"]}))


def test_second_student_warm_starts_and_is_gated_against_the_champion(project):
    before = _aliases(mlflow_client(project)).get("champion")
    outcome = gate_outcome(materialize(project, "ranking_student", seed=2, check=False), project)
    client = mlflow_client(project)
    run_ = finished_runs(client, "ranking_student")[0]
    m = run_.data.metrics
    assert run_.data.params["warm_start"] == (before or "click-only")
    beats = not before or (m["reco_dcg5"] >= m["champion_reco_dcg5"]
                           and m["click_ndcg5"] >= m["champion_click_ndcg5"] - 0.01)
    expected = "failed" if not m["reco_dcg5"] > m["floor_reco_dcg5"] else "promoted" if beats else "kept"
    assert outcome == expected
    aliases = _aliases(client)
    assert aliases["candidate"] == "2" and aliases.get("champion") == ("2" if expected == "promoted" else before)


def test_evaluation_tables_and_report(project):
    client = mlflow_client(project)
    run_ = finished_runs(client, "ranking_evaluation")[0]
    assert {"distilled_recodcg_at_5", "direct_recodcg_at_5", "distilled_minus_direct_low"} <= set(run_.data.metrics)
    assert run_.data.tags["decision.distilled_vs_direct"] in ("beats", "ties", "loses")
    table3 = client.download_artifacts(run_.info.run_id, "table3.md")
    text = open(table3).read()
    assert "vs click-only student [95% CI]" in text and "paired bootstrap" in text
    assert f"distillation **{run_.data.tags['decision.distilled_vs_direct']}**" in text
    # both arms logged both loss terms per epoch, weighted equal at step 0
    for arm in ("direct", "distilled"):
        for term in ("click", "quality"):
            m = run_.data.metrics
            assert m[f"seed1/{arm}/{term}_term_weight"] * m[f"seed1/{arm}/{term}_term_initial"] == pytest.approx(1.0)
    table = pd.read_csv(client.download_artifacts(run_.info.run_id, "ranking_evaluation.csv")).set_index("ranker")
    assert table.loc["distilled MT student (quality head)", "reco_dcg5_mean"] == pytest.approx(
        run_.data.metrics["distilled_recodcg_at_5"])
    assert table.loc["click-only student", "n_seeds"] == 2
    # the ceiling ranks by the true grades: nothing beats it on RecoDCG
    assert table["reco_dcg5_mean"].max() == pytest.approx(table.loc["truth ceiling (true grades)", "reco_dcg5_mean"])
    out = run(["newsforge", "report", "--partition", DAY], project).stdout
    for title in ("Explore Further Table 1", "Explore Further Table 2", "Explore Further Table 3",
                  "| quality teacher (SCE) |", "| direct student (click + SCE on judged pairs) |",
                  "| simulated (truth + noise) |"):
        assert title in out


def test_labels_file_with_a_bad_row_fails_naming_the_line(project, tmp_path):
    labels = tmp_path / "labels.tsv"
    labels.write_text("N1\tN2\t3\nN2\tN3\tfive\n")
    proc = materialize(project, "quality_labels", seed=3, judge=f"judge: labels_file, labels_file: {labels}",
                       check=False)
    assert proc.returncode != 0
    assert f"{labels}:2: field 'score'" in proc.stdout + proc.stderr


def test_predict_writes_a_mind_submission_with_the_student(project, tmp_path):
    """`newsforge predict` ranks each impression's candidates by the student's quality head."""
    day_dir = tmp_path / "day"
    day_dir.mkdir()
    (day_dir / "news.tsv").write_bytes((project / "data" / "demo" / "news.tsv").read_bytes())
    lines = (project / "data" / "demo" / "behaviors.tsv").read_text().splitlines(keepends=True)
    (day_dir / "behaviors.tsv").write_text("".join(line for line in lines if line.split("\t")[2].startswith("11/11/")))
    run(["newsforge", "predict", "--model", "ranking_student@1", "--data", str(day_dir),
         "--out", str(tmp_path / "prediction.txt")], project)
    out = run(["newsforge", "score", str(day_dir / "behaviors.tsv"), str(tmp_path / "prediction.txt"), "--json"],
              project).stdout
    assert '"auc"' in out
    ranked = (tmp_path / "prediction.txt").read_text().splitlines()
    assert len(ranked) == sum(1 for line in lines if line.split("\t")[2].startswith("11/11/"))
