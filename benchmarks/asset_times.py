"""Wall time and peak memory of each asset (Dagster step) in the latest run(s) of the Dagster instance at
$DAGSTER_HOME.

    DAGSTER_HOME=.newsforge/dagster .venv/bin/python benchmarks/asset_times.py [--runs N]

Prints one Markdown table: step, status, seconds and the step's peak RSS (the ``peak_rss_mb`` metric of its
MLflow run, in the MLflow store of $NEWSFORGE_HOME; the step's own process under the multiprocess executor),
in execution order, for the newest N runs (default 1).
"""
from __future__ import annotations

import argparse

from dagster import DagsterEventType, DagsterInstance


def step_times(instance: DagsterInstance, run_id: str) -> list[tuple[str, str, float]]:
    """(step key, SUCCESS/FAILURE, seconds) per finished step of ``run_id``."""
    rows = []
    kinds = {DagsterEventType.STEP_SUCCESS: "success", DagsterEventType.STEP_FAILURE: "failure"}
    for record in instance.all_logs(run_id, of_type=set(kinds)):
        event = record.dagster_event
        data = event.event_specific_data
        millis = getattr(data, "duration_ms", None)
        if millis is None and hasattr(data, "error_source"):
            millis = float("nan")
        rows.append((event.step_key, kinds[event.event_type], (millis or 0.0) / 1000))
    return rows


def peak_rss(run_id: str) -> dict[str, float]:
    """asset -> peak RSS in MB of the MLflow runs of the Dagster run ``run_id``."""
    from mlflow.tracking import MlflowClient

    from orchestration.lineage import EXPERIMENT_PREFIX
    from orchestration.resources.mlflow_tracking import PEAK_RSS_METRIC
    from training.settings import default_tracking_uri

    client = MlflowClient(default_tracking_uri())
    ids = [e.experiment_id for e in client.search_experiments() if e.name.startswith(EXPERIMENT_PREFIX)]
    if not ids:
        return {}
    runs = client.search_runs(ids, f"tags.`dagster.run_id` = '{run_id}'", max_results=1000)
    return {r.data.tags["dagster.asset"]: r.data.metrics[PEAK_RSS_METRIC] for r in runs
            if PEAK_RSS_METRIC in r.data.metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="how many of the newest runs to include")
    args = parser.parse_args()
    instance = DagsterInstance.get()
    runs = list(reversed(instance.get_runs(limit=args.runs)))
    if not runs:
        raise SystemExit("no runs in this Dagster instance (is DAGSTER_HOME right?)")
    total = 0.0
    print("| run | partition | asset | status | seconds | peak RSS MB |\n|---|---|---|---|---:|---:|")
    for run in runs:
        partition = run.tags.get("dagster/partition", "")
        rss = peak_rss(run.run_id)
        for step, status, seconds in step_times(instance, run.run_id):
            total += seconds
            mb = f"{rss[step]:,.0f}" if step in rss else ""
            print(f"| {run.run_id[:8]} | {partition} | {step} | {status} | {seconds:.1f} | {mb} |")
    print(f"| | | **all steps** | | **{total:.1f}** | |")


if __name__ == "__main__":
    main()
