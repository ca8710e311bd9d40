"""Query-driven recall and the ranker end to end through the `dagster` CLI on tiny demo data with a tiny causal
LM: targets, the LoRA query generator and its gate, cached generation, the faiss index, the recall paths in the
key-value store and the evaluation; then the ranking features, the gated LightGBM ranker and the trade-off,
with the real MLflow registry."""
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from builders.slm import tiny_causal_lm
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
    config: {n_pairs: 300}
  click_teacher:
    config: {max_len: 32, max_steps: 4, batch_size: 16}
  quality_teacher:
    config: {max_len: 32, max_steps: 4, batch_size: 16, losses: [ce]}
  distillation_set:
    config: {distill_from: ce}
  ranking_student:
    config: {student: {hidden_size: 16, intermediate_size: 32, epochs: 1, max_len: 24}, eval_impressions: 0}
  query_targets:
    config: {max_inputs: 40, TARGETS}
  query_generator:
    config: {base_model_dir: LM, lora: {max_steps: 10, batch_size: 4, max_len: 96},
             generation: {max_new_tokens: 20, batch_size: 8}, gate_triggers: 16}
  generated_queries:
    config: {max_triggers: 30, generation: {max_new_tokens: 20, batch_size: 8}}
  recall_candidates:
    config: {k: 50}
  recall_evaluation:
    config: {other_targets: true, compare_seeds: [1]}
  user_encoder:
    config: {hidden_size: 32, num_layers: 1, max_epochs: 1, max_history: 20}
  ctr_model:
    config: {model: dcn, embedding_dim: 8, max_epochs: 1}
  ranker:
    config: {n_estimators: 20, eval_impressions: 0}
  ltr_tradeoff:
    config: {seeds: [1, 2], eval_impressions: 0}
  query_list_policy:
    config: {base_model_dir: LM, keep_layers: 0, sft: {max_steps: 2, batch_size: 4, max_len: 96},
             grpo: {steps: 2, prompts_per_step: 2, group_size: 2, max_completion_length: 16, eval_every: 1},
             generation: {max_new_tokens: 16}, max_train_rows: 16, selection_users: 6, gate_users: 10}
  query_list_student:
    config: {keep_layers: 1, sft: {max_steps: 2, batch_size: 4, max_len: 96},
             distill: {steps: 2, prompts_per_step: 2, max_new_tokens: 16}, gate_users: 10}
  interest_queries:
    config: {max_users: 10}
  query_list_evaluation:
    config: {eval_users: 10, seeds: [1, 2], sampled_lists: [1, 2], capacity_layers: [1]}
  interest_ranking:
    config: {users_per_day: 0, seeds: [1]}
"""
ASSETS = ("news_index", "query_targets", "query_generator", "generated_queries", "recall_candidates",
          "recall_evaluation")
DOWNSTREAM = "generated_queries,recall_candidates,recall_evaluation"


def materialize(root, select, targets="source: click_refined", check=True, partition=DAY):
    config = root / "recall.yaml"
    config.write_text(TINY.replace("LM", str(root / "tiny-lm")).replace("TARGETS", targets))
    return run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", select,
                *(["--partition", partition] if partition else []), "-c", str(config)], root, check=check)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("recall"))
    tiny_causal_lm(root / "tiny-lm")
    proc = materialize(root, "*query_generator,*ranking_student,news_index", check=False)
    out = proc.stdout + proc.stderr
    # the query generator's gate does not block; only the ranking student's may stop its downstream
    assert "query_generator" in out and "beats_champion" in out, out[-3000:]
    assert proc.returncode == 0 or "Steps failed: ['ranking_student']" in out, out[-3000:]
    materialize(root, DOWNSTREAM)
    return root


def _value(root, asset, partition=DAY) -> pd.DataFrame:
    return pd.read_parquet(root / ".newsforge" / "assets" / asset / partition / "table.parquet")


def test_every_recall_asset_ran_with_its_lineage(project):
    client = mlflow_client(project)
    for asset in ASSETS:
        assert finished_runs(client, asset), asset
    candidates = finished_runs(client, "recall_candidates")[0].data.tags
    assert candidates["upstream.generated_queries.run_id"] == finished_runs(client, "generated_queries")[0].info.run_id
    assert candidates["upstream.news_index.run_id"] == finished_runs(client, "news_index")[0].info.run_id
    generator = finished_runs(client, "query_generator")[0]
    assert generator.data.tags["upstream.query_targets.run_id"] == finished_runs(client, "query_targets")[0].info.run_id
    assert generator.data.metrics["last_loss"] < generator.data.metrics["first_loss"]


def test_query_generator_is_gated_on_heldout_recall_against_the_base_model(project):
    client = mlflow_client(project)
    run_ = finished_runs(client, "query_generator")[0]
    m, passed = run_.data.metrics, run_.data.tags["gate.passed"] == "true"
    assert passed == (m["recall_at_30"] > m["floor_recall_at_30"])  # no champion yet: the base model decides
    aliases = {a: str(v) for a, v in client.get_registered_model("query_generator").aliases.items()}
    assert aliases["candidate"] == "1" and aliases.get("champion") == ("1" if passed else None)
    # the queries come from the champion, else from the floor (the base model with its few-shot prompt)
    source = finished_runs(client, "generated_queries")[0].data.tags["generator"]
    assert source.startswith("query_generator v1 (champion)" if passed else "base model, few-shot"), source


def test_targets_are_click_derived_and_refined_by_retrieval(project):
    targets = _value(project, "query_targets")
    assert {"input_id", "query", "source_news_id", "refined"} <= set(targets.columns)
    assert targets["refined"].any() and len(targets) > 0
    assert targets.groupby("input_id").size().max() <= 6
    from training.slm.query_targets import key_phrase

    titles = pd.read_parquet(project / "data" / "prepared" / "news.parquet").set_index("news_id")["title"]
    for row in targets.itertuples():  # every target is made of words of the title of the news clicked next
        assert set(row.query.split()) <= set(key_phrase(titles[row.source_news_id], max_words=50).split()), row


def test_registered_generator_writes_queries_from_the_registry(project):
    mlflow.set_tracking_uri(f"sqlite:///{project / '.newsforge' / 'mlflow' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/query_generator/1")
    news = pd.DataFrame({"news_id": ["N1", "N2"], "title": ["Coach wins the late game", "Storm hits the coast"]})
    queries = model.predict(news)
    assert list(queries.columns) == ["input_id", "query_rank", "query"]
    assert set(queries["input_id"]) <= {"N1", "N2"}


def test_generation_is_cached_and_the_index_refreshes_incrementally(project):
    run_ = materialize(project, "generated_queries")
    client = mlflow_client(project)
    metrics = finished_runs(client, "generated_queries")[0].data.metrics
    assert metrics["n_generated"] == 0 and metrics["n_cached"] == metrics["n_inputs"] > 0, run_.stdout[-2000:]
    materialize(project, "news_index", partition=None)
    index_run = finished_runs(client, "news_index")[0]
    assert index_run.data.metrics["n_added"] == 0 and index_run.data.metrics["rebuilt"] == 0
    assert index_run.data.tags["index.kind"] == "flat"


def test_candidate_store_serves_every_trigger_from_the_latest_run(project):
    from training.retrieval.candidate_store import CandidateStore

    client = mlflow_client(project)
    store = CandidateStore(project / ".newsforge" / "serving" / "candidates.sqlite", readonly=True)
    try:
        assert store.current_version() == finished_runs(client, "recall_candidates")[0].info.run_id
        news = pd.read_parquet(project / "data" / "prepared" / "news.parquet")["news_id"]
        found = store.lookup_many(news.tolist()[:50])
        assert all(0 < len(found[n]) <= 30 for n in news.tolist()[:50])
        assert all(trigger not in [c for c, _ in found[trigger]] for trigger in found)
        assert set(store.paths()) == {"coclick", "embedding", "qprime", "union"}
    finally:
        store.close()
    trigger = news.iloc[0]
    lines = run(["newsforge", "candidates", trigger], project).stdout.splitlines()
    assert lines[0].startswith(f"# union candidates of {trigger}") and 1 <= len(lines) - 1 <= 30
    assert [line.split("\t")[1] for line in lines[1:]] == [c for c, _ in found[trigger]]
    missing = run(["newsforge", "candidates", "N_NOT_THERE"], project, check=False)
    assert missing.returncode == 1 and "no union candidates for N_NOT_THERE" in missing.stderr


def test_recall_evaluation_logs_every_path_and_the_report_shows_it(project):
    client = mlflow_client(project)
    run_ = finished_runs(client, "recall_evaluation")[0]
    for path in ("coclick", "embedding", "qprime", "union"):
        assert 0.0 <= run_.data.metrics[f"recall_at_30_{path}"] <= 1.0
    table = _value(project, "recall_evaluation").set_index("path")
    assert (table["recall_at_10"] <= table["recall_at_30"]).all()
    assert (table["recall_at_30"] <= table["recall_at_100"]).all()
    # the union is the set union of the paths' top k: never below a path; the served list interleaves them
    paths = table.loc[["coclick", "embedding", "qprime"]]
    for k in (10, 30, 100):
        assert table.loc["union", f"recall_at_{k}"] >= paths[f"recall_at_{k}"].max() - 1e-12
    assert table.loc["union_served", "recall_at_100"] >= paths["recall_at_30"].max() - 1e-12
    # random queries at Q''s coverage, compared per trigger (paired interval) when Q' has triggers with a click
    assert table.loc["random_queries", "n_triggers"] == table.loc["qprime", "n_triggers"]
    if "qprime_minus_random_at_30" in run_.data.metrics:
        m = run_.data.metrics
        assert m["qprime_minus_random_low"] <= m["qprime_minus_random_at_30"] <= m["qprime_minus_random_high"]
        assert run_.data.tags["qprime_vs_random"] in {"above 0", "contains 0", "below 0"}
    per_seed = pd.read_csv(client.download_artifacts(run_.info.run_id, "generators_per_seed.csv"))
    assert per_seed.groupby("variant").size().to_dict() == {
        "base model, few-shot (no training)": 1, "LoRA SFT (all click targets)": 2,
        "LoRA SFT (click-refined targets)": 2}
    out = run(["newsforge", "report", "--partition", DAY], project).stdout
    assert "Recall paths" in out and "| qprime |" in out and "Query generators on held-out triggers" in out


def test_labels_file_with_a_bad_row_fails_naming_the_line(project, tmp_path):
    labels = tmp_path / "queries.tsv"
    labels.write_text("input_id\tquery\nN1\tstorm coast damage\nN2\t\n")
    proc = materialize(project, "query_targets", targets=f"source: labels_file, labels_file: {labels}", check=False)
    assert proc.returncode != 0
    assert f"{labels}:3" in proc.stdout + proc.stderr and "query" in proc.stdout + proc.stderr


def test_ranker_is_registered_with_its_lambda_and_the_tradeoff_is_reported(project):
    proc = materialize(project, "*ctr_model", check=False)  # its gate may block on tiny data; the version exists
    assert "ctr_model" in proc.stdout + proc.stderr
    materialize(project, "ltr_features,ranker,ltr_tradeoff")
    client = mlflow_client(project)
    rows = _value(project, "ltr_features")
    assert set(rows["part"]) == {"train", "valid", "test", "related"}
    related = rows[rows["part"] == "related"]
    assert related["ctr_score"].isna().all() and related["trigger_id"].nunique() > 0
    # counts never see the row's own day: a pair's 1-day clicks come from the day before only
    assert (rows.loc[rows["part"] != "related", "cand_clicks_1d"] >= 0).all()
    ranker_run = finished_runs(client, "ranker")[0]
    lam = float(ranker_run.data.params["lambda"])
    assert 0.0 <= lam <= 1.0 and ranker_run.data.tags["gate.passed"] in {"true", "false"}
    # the tiny window has 2 days: no selection day of its own, λ is chosen on the early-stopping day and says so
    assert ranker_run.data.tags["lambda_day_held_out"] == "false" and ranker_run.data.tags["lambda_day"] == "2019-11-10"
    assert ranker_run.data.metrics["lambda_tolerance"] == ranker_run.data.metrics["lambda_std_error"] >= 0
    artifacts = {a.path for a in client.list_artifacts(ranker_run.info.run_id)}
    assert {"selection_tradeoff.csv", "selection_tradeoff.png"} <= artifacts
    version = client.get_model_version("ranker", "1")
    assert float(version.tags["lambda"]) == lam and "stage2" in version.tags["mu"]
    aliases = {a: str(v) for a, v in client.get_registered_model("ranker").aliases.items()}
    assert aliases["candidate"] == "1"
    assert (aliases.get("champion") == "1") == (ranker_run.data.tags["gate.passed"] == "true")
    mlflow.set_tracking_uri(f"sqlite:///{project / '.newsforge' / 'mlflow' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/ranker/1").unwrap_python_model()
    trigger = related["trigger_id"].iloc[0]
    items = model.related(trigger, k=5)
    assert 1 <= len(items) <= 5 and [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert {i["news_id"] for i in items} <= set(related.loc[related["trigger_id"] == trigger, "candidate_id"])
    tradeoff = finished_runs(client, "ltr_tradeoff")[0]
    curve = pd.read_csv(client.download_artifacts(tradeoff.info.run_id, "tradeoff_curve.csv"))
    assert len(curve) == 21 and curve["lam"].iloc[0] == 0.0 and curve["lam"].iloc[-1] == 1.0
    assert "tradeoff.png" in {a.path for a in client.list_artifacts(tradeoff.info.run_id)}
    per_seed = pd.read_csv(client.download_artifacts(tradeoff.info.run_id, "tradeoff_per_seed.csv"))
    assert sorted(per_seed["seed"].unique()) == [1, 2]
    metrics = tradeoff.data.metrics
    works = (min(per_seed.loc[per_seed["ranker"] == "chosen λ", "lambda"]) > 0 and metrics["delta_reco_dcg5_low"] > 0
             and metrics["delta_click_ndcg5"] >= -metrics["click_ndcg5_std_error"])
    assert tradeoff.data.tags["tradeoff.decision"] == ("works" if works else "does not work")
    md = client.download_artifacts(tradeoff.info.run_id, "tradeoff.md")
    assert "paired bootstrap interval over impressions" in open(md).read() and "seeds 1, 2" in open(md).read()
    out = run(["newsforge", "report", "--partition", DAY], project).stdout
    assert "quality/click trade-off" in out and "click only (λ = 0)" in out and "tradeoff.png" in out


def test_registered_query_generator_loads_from_its_own_code(project, tmp_path):
    """The registered query generator carries its code (training, serving): load it and generate with this
    checkout's packages hidden from Python, as on a machine without the project."""
    from project import REPO_ROOT

    script = f"""
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path[:] = [p for p in sys.path if p not in ({str(REPO_ROOT)!r}, {str(project)!r})]
for name in [m for m in sys.modules if m.split(".")[0] in ("training", "serving", "orchestration")]:
    del sys.modules[name]
import mlflow, pandas as pd
mlflow.set_tracking_uri("sqlite:///{project / '.newsforge' / 'mlflow' / 'mlflow.db'}")
model = mlflow.pyfunc.load_model("models:/query_generator/1")
import serving.query_generator
assert "/code/serving/" in serving.query_generator.__file__, serving.query_generator.__file__
assert "orchestration" not in sys.modules
out = model.predict(pd.DataFrame({{"news_id": ["N1"], "title": ["Storm hits the coast"]}}))
print("columns", sorted(out.columns))
"""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
                               "NEWSFORGE_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "columns ['input_id', 'query', 'query_rank']" in proc.stdout, proc.stdout[-2000:]


#: Every model the code location registers (assets' ``log_and_register`` calls).
REGISTERED = {"news_encoder", "user_encoder", "ctr_model", "click_teacher", "quality_teacher", "ranking_student",
              "query_generator", "ranker", "query_list_policy", "query_list_student"}
QUERY_LISTS = "query_list_policy,query_list_student,interest_queries,query_list_evaluation"


@pytest.fixture(scope="module")
def query_lists(project):
    """The interest-query-list assets on the tiny project (tiny LM, a few SFT / GRPO / distillation steps)."""
    proc = materialize(project, QUERY_LISTS, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return project


def test_query_list_policy_logs_every_reward_per_step_and_is_gated(query_lists):
    client = mlflow_client(query_lists)
    run = finished_runs(client, "query_list_policy")[0]
    for name in ("reward", "kl", "rewards_retrieval_mean", "rewards_coverage_mean", "rewards_format_mean",
                 "rewards_quality_mean"):
        assert len(client.get_metric_history(run.info.run_id, name)) == 2, name   # one point per GRPO step
    # the tiny log has no train day before the selection day: the note says so, and no checkpoint is selected
    # (never on the report day)
    assert "no selection day" in run.data.tags["protocol_note"]
    assert client.get_metric_history(run.info.run_id, "selection_recall_at_30") == []
    assert {"grpo_steps.csv", "sample_lists.md"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    assert run.data.tags["gate.outcome"] in ("promoted", "kept", "failed")
    assert {"recall_at_30", "floor_recall_at_30", "recall_at_30_vs_floor_low", "recall_at_30_vs_floor_high"} <= set(
        run.data.metrics)
    low, high = run.data.metrics["recall_at_30_vs_floor_low"], run.data.metrics["recall_at_30_vs_floor_high"]
    assert low <= high and f"95 % interval [{low:+.4f}, {high:+.4f}]" in run.data.tags["gate.reason"]


def test_interest_queries_and_the_evaluation_tables(query_lists):
    table = _value(query_lists, "interest_queries")
    assert list(table.columns) == ["user_id", "target_day", "query_rank", "query"]
    assert set(table["target_day"]) <= {DAY}
    client = mlflow_client(query_lists)
    # the served model: the student's champion, else the policy's, else this run's policy (the registry's aliases
    # are read inside the step's tracking run; before it, a step sees no registry and no champion)
    aliases = {name: client.get_registered_model(name).aliases for name in ("query_list_student", "query_list_policy")}
    policy_run = finished_runs(client, "query_list_policy")[0].info.run_id
    this_run = client.search_model_versions(f"run_id='{policy_run}'")[0].version
    expected = next((f"{name} v{versions['champion']}" for name, versions in aliases.items() if "champion" in versions),
                    f"query_list_policy v{this_run}")
    assert finished_runs(client, "interest_queries")[0].data.tags["model"] == expected, aliases
    run = finished_runs(client, "query_list_evaluation")[0]
    text = client.download_artifacts(run.info.run_id, "query_lists.md")
    with open(text, encoding="utf-8") as fh:
        markdown = fh.read()
    for expected in ("random queries", "warm start (SFT)", "GRPO policy", "student, SFT only",
                     "student, on-policy distilled", "n=2", "Model capacity", "| all ", "lists / s", "[95 % CI]",
                     "Demo schedule", "union+interest", "output tokens", "the same, whole output layer",
                     "queries per second", "machinery schedule"):   # the tiny policy is not reproduce.yaml's
        assert expected in markdown, (expected, markdown[:3000])
    arms = pd.read_csv(client.download_artifacts(run.info.run_id, "query_list_arms.csv"))
    policy = arms.set_index("arm").loc["GRPO policy"]
    assert policy["seeds"] == 2 and policy["users"] == 10
    assert arms["recall_at_k"].between(0, 1).all()
    report = run_cli_report(query_lists)
    assert "Interest query lists" in report and "on-policy distilled" in report


def test_interest_queries_serve_the_student_champion_from_a_step_process_of_their_own(query_lists):
    """A step of the users' multiprocess executor starts with no MLflow URI in its environment: the served model is
    still read from the project's registry (a lookup before the step's tracking run saw no champion there)."""
    import os
    import subprocess

    from project import project_env

    client = mlflow_client(query_lists)
    version = client.search_model_versions("name='query_list_student'")[0].version
    client.set_registered_model_alias("query_list_student", "champion", version)
    env = {k: v for k, v in project_env(query_lists, "multiprocess").items() if not k.startswith("MLFLOW_")}
    config = query_lists / "recall.yaml"
    proc = subprocess.run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select",
                           "interest_queries", "--partition", DAY, "-c", str(config)], cwd=query_lists, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert finished_runs(client, "interest_queries")[0].data.tags["model"] == f"query_list_student v{version}"
    assert not os.path.exists(query_lists / "mlflow.db")   # no stray default store in the project


def test_interest_ranking_compares_the_ranker_with_and_without_the_interest_path(query_lists):
    client = mlflow_client(query_lists)
    if "ranker" not in {m.name for m in client.search_registered_models()}:  # when run alone
        materialize(query_lists, "*ctr_model", check=False)
        materialize(query_lists, "ltr_features,ranker")
    materialize(query_lists, "interest_ranking")
    run = finished_runs(client, "interest_ranking")[0]
    markdown = Path(client.download_artifacts(run.info.run_id, "interest_ranking.md")).read_text()
    assert "| ranker + interest path |" in markdown and "ΔRecoDCG@5 vs ranker [95% CI]" in markdown
    assert "Same rows for both" in markdown and "`make reproduce` runs users_per_day 0, seeds [1, 2, 3]" in markdown
    table = pd.read_csv(client.download_artifacts(run.info.run_id, "interest_ranking.csv"))
    assert table["ranker"].tolist() == ["ranker", "ranker + interest path"] and table["n_seeds"].tolist() == [1, 1]
    assert 0 <= run.data.metrics["clicked_in_interest_union"] <= 1
    assert 0 <= run.data.metrics["interest_gain_share"] <= 1
    assert run.data.tags["model"].startswith("query_list_")
    assert "The ranker with and without the interest path" in run_cli_report(query_lists)


def run_cli_report(root) -> str:
    return run(["newsforge", "report", "--partition", DAY], root).stdout


def test_every_registered_model_loads_from_its_own_code(project, query_lists, tmp_path):
    """Each registered model of the tiny project loads from its own artifacts and shipped code (training,
    serving) in a fresh process where this checkout's packages are hidden; none pulls in orchestration."""
    from project import REPO_ROOT

    client = mlflow_client(project)
    if "ranker" not in {m.name for m in client.search_registered_models()}:  # when run alone, not after the ranker test
        materialize(project, "*ctr_model", check=False)
        materialize(project, "ltr_features,ranker")
    script = f"""
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path[:] = [p for p in sys.path if p not in ({str(REPO_ROOT)!r}, {str(project)!r})]
from pathlib import Path

import mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri("sqlite:///{project / '.newsforge' / 'mlflow' / 'mlflow.db'}")
client = MlflowClient()
for name in sorted(m.name for m in client.search_registered_models()):
    for module in [m for m in sys.modules if m.split(".")[0] in ("training", "serving")]:
        del sys.modules[module]
    version = max(int(v.version) for v in client.search_model_versions(f"name='{{name}}'"))
    model = mlflow.pyfunc.load_model(f"models:/{{name}}/{{version}}")
    source = sys.modules[type(model.unwrap_python_model()).__module__].__file__
    assert "/code/" in source and {str(REPO_ROOT)!r} not in source, (name, source)
    print("loaded", name, version, type(model.unwrap_python_model()).__name__)
assert "orchestration" not in sys.modules and "newsforge" not in sys.modules
"""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
                               "NEWSFORGE_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("loaded ")}
    assert loaded == REGISTERED, (sorted(loaded), proc.stdout[-2000:])
