"""Wall time of each asset (Dagster step) in the latest run(s) of the Dagster instance at $DAGSTER_HOME.

    DAGSTER_HOME=.newsforge/dagster .venv/bin/python benchmarks/asset_times.py [--runs N]

Prints one Markdown table: step, status and seconds, in execution order, for the newest N runs (default 1).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="how many of the newest runs to include")
    args = parser.parse_args()
    instance = DagsterInstance.get()
    runs = list(reversed(instance.get_runs(limit=args.runs)))
    if not runs:
        raise SystemExit("no runs in this Dagster instance (is DAGSTER_HOME right?)")
    total = 0.0
    print("| run | partition | asset | status | seconds |\n|---|---|---|---|---:|")
    for run in runs:
        partition = run.tags.get("dagster/partition", "")
        for step, status, seconds in step_times(instance, run.run_id):
            total += seconds
            print(f"| {run.run_id[:8]} | {partition} | {step} | {status} | {seconds:.1f} |")
    print(f"| | | **all steps** | | **{total:.1f}** |")


if __name__ == "__main__":
    main()
