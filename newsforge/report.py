"""The evaluation table of one partition, read back from the MLflow store."""
from __future__ import annotations

import json

from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from orchestration.settings import default_tracking_uri, prepared_dir
from training.data.ceiling import demo_ceiling
from training.data.prepare import REPORT_FILE
from training.metrics.ranking import format_metrics_table

EXPERIMENT_PREFIX = "newsforge/"
METRIC_KEYS = {"auc": "auc", "mrr": "mrr", "ndcg@5": "ndcg_at_5", "ndcg@10": "ndcg_at_10"}


def partition_rows(partition: str, tracking_uri: str | None = None) -> dict[str, dict[str, float]]:
    """Latest finished run per asset for ``partition`` that logged MIND metrics, as table rows."""
    client = MlflowClient(tracking_uri or default_tracking_uri())
    experiments = [e for e in client.search_experiments() if e.name.startswith(EXPERIMENT_PREFIX)]
    rows: dict[str, dict[str, float]] = {}
    for exp in experiments:
        runs = client.search_runs(
            [exp.experiment_id],
            f"attributes.status = 'FINISHED' and tags.`dagster.partition` = '{partition}'",
            ViewType.ACTIVE_ONLY, max_results=1, order_by=["attributes.start_time DESC"],
        )
        if runs and all(k in runs[0].data.metrics for k in METRIC_KEYS.values()):
            rows[exp.name.removeprefix(EXPERIMENT_PREFIX)] = {
                name: runs[0].data.metrics[key] for name, key in METRIC_KEYS.items()}
    return rows


def partition_report(partition: str, tracking_uri: str | None = None) -> str:
    """Markdown table of every asset's metrics on ``partition`` plus the demo generator's ceiling."""
    rows = partition_rows(partition, tracking_uri)
    if not rows:
        return f"no finished runs with metrics for partition {partition}"
    report_path = prepared_dir() / REPORT_FILE
    if report_path.is_file():
        ceiling = demo_ceiling(json.loads(report_path.read_text())["raw_dir"], partition)
        if ceiling:
            rows["demo ceiling (Bayes-optimal)"] = ceiling
    return f"Partition {partition}\n\n" + format_metrics_table(rows)
