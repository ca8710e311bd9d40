"""The evaluation report of one partition, read back from the MLflow store."""
from __future__ import annotations

import json

from mlflow.tracking import MlflowClient

from orchestration.lineage import EXPERIMENT_PREFIX, latest_finished_run
from orchestration.settings import default_tracking_uri, prepared_dir
from training.data.ceiling import demo_ceiling
from training.data.prepare import REPORT_FILE
from training.metrics.ranking import METRIC_KEYS, format_metrics_table


#: The quality-aware ranking tables of ``ranking_evaluation`` ("Explore Further" Tables 1-3 analogues).
QUALITY_TABLES = (
    ("table1.md", "Quality judges on the golden set (Explore Further Table 1)"),
    ("table2.md", "Teachers: RecoDCG and ClickNDCG x100 (Explore Further Table 2)"),
    ("table3.md", "Students: distillation vs direct fine-tuning, x100 (Explore Further Table 3)"),
)

#: The recall tables of ``recall_evaluation`` (candidate paths, then the query generators compared).
RECALL_TABLES = (
    ("recall.md", "Recall paths: recall of the news clicked next (x100)"),
    ("generators.md", "Query generators on held-out triggers: Q' recall (x100, mean ± std over seeds)"),
)


def _latest_run(client: MlflowClient, asset: str, partition: str | None):
    exp = client.get_experiment_by_name(EXPERIMENT_PREFIX + asset)
    return latest_finished_run(client, exp.experiment_id, partition) if exp else None


def _latest_artifact(client: MlflowClient, asset: str, partition: str | None, path: str) -> str | None:
    """Text of ``path`` logged by the latest finished run of ``asset`` (for ``partition`` when given)."""
    run = _latest_run(client, asset, partition)
    if run is None or path not in {a.path for a in client.list_artifacts(run.info.run_id)}:
        return None
    with open(client.download_artifacts(run.info.run_id, path), encoding="utf-8") as fh:
        return fh.read()


def partition_rows(client: MlflowClient, partition: str) -> dict[str, dict[str, float]]:
    """Latest finished run per asset for ``partition`` that logged MIND metrics, as table rows."""
    rows: dict[str, dict[str, float]] = {}
    for exp in client.search_experiments():
        if not exp.name.startswith(EXPERIMENT_PREFIX):
            continue
        run = latest_finished_run(client, exp.experiment_id, partition)
        if run and all(k in run.data.metrics for k in METRIC_KEYS):
            rows[exp.name.removeprefix(EXPERIMENT_PREFIX)] = {key: run.data.metrics[key] for key in METRIC_KEYS}
    return rows


def partition_report(partition: str, tracking_uri: str | None = None) -> str:
    """Markdown: every asset's metrics on ``partition`` with the demo generator's ceiling, the news-vector
    probe table and the PREC Table-2 grid when those assets have run."""
    client = MlflowClient(tracking_uri or default_tracking_uri())
    rows = partition_rows(client, partition)
    if not rows:
        return f"no finished runs with metrics for partition {partition}"
    report_path = prepared_dir() / REPORT_FILE
    if report_path.is_file():
        ceiling = demo_ceiling(json.loads(report_path.read_text())["raw_dir"], partition)
        if ceiling:
            rows["demo ceiling (Bayes-optimal)"] = ceiling
    sections = [f"## Partition {partition}\n\n" + format_metrics_table(rows)]
    probe = _latest_artifact(client, "news_encoder", None, "probe.md")
    if probe:
        sections.append("## News vectors: linear-probe category accuracy (held-out news)\n\n" + probe)
    table2 = _latest_artifact(client, "ctr_evaluation", partition, "table2.md")
    if table2:
        sections.append(f"## CTR models with PREC vectors (PREC Table 2), validation day {partition}\n\n" + table2)
    for path, title in QUALITY_TABLES:
        text = _latest_artifact(client, "ranking_evaluation", partition, path)
        if text:
            sections.append(f"## {title}, {partition}\n\n" + text)
    for path, title in RECALL_TABLES:
        text = _latest_artifact(client, "recall_evaluation", partition, path)
        if text:
            sections.append(f"## {title}, {partition}\n\n" + text)
    tradeoff = _latest_run(client, "ranking_tradeoff", partition)
    table = _latest_artifact(client, "ranking_tradeoff", partition, "tradeoff.md")
    if tradeoff and table:
        metrics = tradeoff.data.metrics
        curve = f"{tradeoff.info.artifact_uri}/tradeoff.png"
        sections.append(
            f"## Ranker: the quality/click trade-off (x100, mean ± std over seeds), {partition}\n\n{table}\n"
            f"λ = {metrics.get('lambda', float('nan')):.2f} (ranker v{tradeoff.data.tags.get('ranker.version', '?')}): "
            f"RecoDCG@5 {100 * metrics.get('reco_dcg5_gain_over_click_only', float('nan')):+.2f} over click-only. "
            f"Curve: {curve}")
    return "\n\n".join(sections)
