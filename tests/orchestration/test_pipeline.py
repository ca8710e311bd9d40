"""A real Dagster materialisation (the `dagster` CLI) over real DVC data, checked in the real MLflow store."""
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from project import make_project, run

PARTITION = "2019-11-10"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("project"))
    run(["dagster", "asset", "materialize", "-m", "orchestration.definitions",
         "--select", "mind_news,*popularity_baseline", "--partition", PARTITION], root)
    return root


def _client(root) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root / '.newsforge' / 'mlflow' / 'mlflow.db'}")


def _latest(client, asset):
    exp = client.get_experiment_by_name(f"newsforge/{asset}")
    assert exp is not None, f"no MLflow experiment for {asset}"
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]


def test_every_asset_is_an_mlflow_run_with_lineage(project):
    client = _client(project)
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    outs = lock["stages"]["prepare"]["outs"]
    version = next(o["md5"] for o in outs if o["path"] == "data/prepared").removesuffix(".dir")
    commit = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    runs = {a: _latest(client, a) for a in ("mind_news", "mind_behaviors", "impressions", "popularity_baseline")}
    for asset, r in runs.items():
        tags = r.data.tags
        assert r.info.status == "FINISHED"
        assert tags["dagster.asset"] == asset and tags["data.version"] == version
        assert tags["git.commit"] == commit and tags["dagster.run_id"]
        assert 50 < r.data.metrics["peak_rss_mb"] < 24 * 1024  # the step's process: Python, pandas, Dagster at least
    assert runs["mind_news"].data.tags["dagster.partition"] == ""  # unpartitioned
    assert runs["impressions"].data.tags["dagster.partition"] == PARTITION
    base = runs["popularity_baseline"].data.tags
    assert base["upstream.impressions.run_id"] == runs["impressions"].info.run_id
    assert base["upstream.mind_behaviors.run_id"] == runs["mind_behaviors"].info.run_id


def test_baseline_metrics_match_an_independent_computation(project):
    from sklearn.metrics import roc_auc_score

    scored = pd.read_parquet(project / ".newsforge" / "assets" / "popularity_baseline" / PARTITION / "table.parquet")
    aucs = [roc_auc_score(g["label"], g["score"]) for _, g in scored.groupby("impression_id")
            if g["label"].nunique() == 2]
    logged = _latest(_client(project), "popularity_baseline").data.metrics
    assert logged["auc"] == pytest.approx(sum(aucs) / len(aucs), abs=1e-9)
    assert 0.0 < logged["auc"] < logged["ceiling_auc"]  # the generator's Bayes-optimal ceiling is above the floor


def test_impressions_shows_its_click_figures(project):
    """The heatmaps and treemap are MLflow artifacts of the run and inline PNGs in the Dagster metadata."""
    from dagster import AssetKey, DagsterInstance

    client = _client(project)
    figures = {"ctr_heatmap_hour", "ctr_heatmap_history", "treemap"}
    artifacts = {a.path for a in client.list_artifacts(_latest(client, "impressions").info.run_id)}
    assert {f"{name}.png" for name in figures} <= artifacts
    with DagsterInstance.from_config(str(project / ".newsforge" / "dagster")) as instance:
        event = instance.get_latest_materialization_event(AssetKey("impressions"))
    metadata = event.asset_materialization.metadata
    for name in figures:
        assert metadata[name].value.startswith("![") and "(data:image/png;base64," in metadata[name].value


def test_partition_holds_only_its_day(project):
    day = pd.read_parquet(project / ".newsforge" / "assets" / "impressions" / PARTITION / "impressions.parquet")
    assert set(day["day"]) == {PARTITION} and len(day) > 0


def test_report_prints_baseline_and_ceiling(project):
    out = run(["newsforge", "report", "--partition", PARTITION], project).stdout
    assert "| popularity_baseline |" in out and "| demo ceiling (Bayes-optimal) |" in out


def test_tampered_data_fails_the_data_assets(project, tmp_path):
    report = project / "data" / "prepared" / "prepare_report.json"
    original = report.read_text()
    try:
        report.write_text(json.dumps({"tampered": True}))
        proc = run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", "mind_news"],
                   project, check=False)
        assert proc.returncode != 0
        assert "differ from dvc.lock" in proc.stdout + proc.stderr
    finally:
        report.write_text(original)


def test_missing_partition_day_is_a_clear_error(project):
    proc = run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", "impressions",
                "--partition", "2019-11-20"], project, check=False)
    assert proc.returncode != 0 and "partition 2019-11-20 has no impressions" in proc.stdout + proc.stderr


def test_documented_command_works_after_activation(project):
    """`source .venv/bin/activate; dagster asset materialize --select ... --partition ...` with no -m."""
    activate = Path(sys.executable).parent / "activate"
    if "DAGSTER_CLI_ASSET_MATERIALIZE_MODULE_NAME" not in activate.read_text():
        pytest.skip("this virtual environment was not made by `make install`")
    proc = run(["bash", "-c", f"source {activate} && dagster asset materialize --select popularity_baseline "
                f"--partition {PARTITION}"], project)
    assert "RUN_SUCCESS" in proc.stdout + proc.stderr


def _dvc_version(root) -> str:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    out = next(o for o in lock["stages"]["prepare"]["outs"] if o["path"] == "data/prepared")
    return out["md5"].removesuffix(".dir")


def _run_of(client, asset, dagster_run_id):
    exp = client.get_experiment_by_name(f"newsforge/{asset}")
    runs = client.search_runs([exp.experiment_id], f"tags.`dagster.run_id` = '{dagster_run_id}'")
    assert len(runs) == 1, (asset, dagster_run_id, runs)
    return runs[0]


def _dagster_run_id(proc) -> str:
    """The run id in the CLI's RUN_SUCCESS log line."""
    match = re.search(r" - ([0-9a-f-]{36}) - \d+ - RUN_SUCCESS", proc.stdout + proc.stderr)
    assert match, proc.stdout[-2000:] + proc.stderr[-2000:]
    return match[1]


def test_a_script_loads_a_stored_value_outside_a_run(project):
    """``Definitions.load_asset_value`` (a notebook, benchmarks/sweep_warm_start.py) has no step to record lineage
    for; it still reads the value."""
    code = ("from dagster import AssetKey, DagsterInstance; from orchestration.definitions import defs; "
            f"v = defs.load_asset_value(AssetKey('impressions'), partition_key='{PARTITION}', "
            "instance=DagsterInstance.get()); print('rows', len(v.impressions))")
    rows = int(run([sys.executable, "-c", code], project).stdout.split("rows")[-1])
    stored = project / ".newsforge" / "assets" / "impressions" / PARTITION
    assert rows > 0 and stored.is_dir()


def test_lineage_names_the_producers_of_the_loaded_values(project):
    """Partition A (the fixture's), then B, then a new data version, then a downstream asset of A: its parents
    are A's producers and its data version is the one its inputs were built from, not the newest of either."""
    a, b = PARTITION, "2019-11-11"
    client = _client(project)

    def only_run(asset, partition=""):
        exp = client.get_experiment_by_name(f"newsforge/{asset}")
        runs = client.search_runs([exp.experiment_id], f"tags.`dagster.partition` = '{partition}'")
        assert len(runs) == 1, (asset, partition, len(runs))
        return runs[0]

    def materialize(select, partition):
        proc = run(["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", select,
                    "--partition", partition], project)
        return _dagster_run_id(proc)

    impressions_a, behaviors = only_run("impressions", a), only_run("mind_behaviors")
    materialize("impressions", b)
    old_version, params = _dvc_version(project), (project / "params.yaml").read_text()
    try:
        (project / "params.yaml").write_text(params.replace("seed: 7", "seed: 8"))
        run(["dvc", "repro", "-q"], project)  # a new data version; mind_behaviors is not rematerialised
        assert _dvc_version(project) != old_version
        downstream = _run_of(client, "popularity_baseline", materialize("popularity_baseline", a))
    finally:
        (project / "params.yaml").write_text(params)
        run(["dvc", "repro", "-q"], project)
    tags = downstream.data.tags
    assert tags["upstream.impressions.run_id"] == impressions_a.info.run_id  # not B's, which is newer
    assert tags["upstream.mind_behaviors.run_id"] == behaviors.info.run_id
    assert tags["data.version"] == old_version  # what the inputs were built from, not dvc.lock's new version
    sidecar = json.loads((project / ".newsforge" / "assets" / "popularity_baseline" / a / "lineage.json").read_text())
    assert sidecar["mlflow_run_id"] == downstream.info.run_id
    assert sidecar["data_version"] == old_version and sidecar["partition"] == a
