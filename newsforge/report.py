"""The evaluation report of one partition, read back from the MLflow store: Markdown tables
(:func:`partition_report`) or one self-contained HTML page with the tables and every figure (:func:`html_report`)."""
from __future__ import annotations

import base64
import html
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from newsforge.markdown_html import markdown_to_html
from orchestration.lineage import EXPERIMENT_PREFIX, latest_finished_run
from orchestration.resources import MlflowTracking
from training.data.ceiling import demo_ceiling
from training.data.prepare import REPORT_FILE
from training.metrics.mind import METRIC_KEYS, format_metrics_table
from training.settings import default_tracking_uri, prepared_dir

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
    probe table, the PREC Table-2 grid, the PUNR ablation and the other evaluation tables when those assets have
    run."""
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
    punr = _latest_artifact(client, "punr_ablation", partition, "punr.md")
    if punr:
        sections.append("## PUNR ablation: user pre-training variants under the CTR models (AUC, MRR, nDCG; "
                        f"differences x100), validation day {partition}\n\n" + punr)
    for path, title in QUALITY_TABLES:
        text = _latest_artifact(client, "ranking_evaluation", partition, path)
        if text:
            sections.append(f"## {title}, {partition}\n\n" + text)
    for path, title in RECALL_TABLES:
        text = _latest_artifact(client, "recall_evaluation", partition, path)
        if text:
            sections.append(f"## {title}, {partition}\n\n" + text)
    tradeoff = _latest_run(client, "ltr_tradeoff", partition)
    table = _latest_artifact(client, "ltr_tradeoff", partition, "tradeoff.md")
    if tradeoff and table:
        metrics = tradeoff.data.metrics
        curve = f"{tradeoff.info.artifact_uri}/tradeoff.png"
        sections.append(
            f"## Ranker: the quality/click trade-off (x100, mean ± std over seeds), {partition}\n\n{table}\n"
            f"λ = {metrics.get('lambda', float('nan')):.2f} (ranker v{tradeoff.data.tags.get('ranker.version', '?')}): "
            f"RecoDCG@5 {100 * metrics.get('reco_dcg5_gain_over_click_only', float('nan')):+.2f} over click-only. "
            f"Curve: {curve}")
    lists = _latest_artifact(client, "query_list_evaluation", partition, "query_lists.md")
    if lists:
        sections.append(f"## Interest query lists: GRPO policy, sampling, capacity, distillation, {partition}\n\n"
                        + lists)
    ranking = _latest_artifact(client, "interest_ranking", partition, "interest_ranking.md")
    if ranking:
        sections.append(f"## The ranker with and without the interest path (x100), {partition}\n\n" + ranking)
    return "\n\n".join(sections)


@dataclass(frozen=True)
class RunFigure:
    """One PNG artifact of an asset's MLflow run."""

    asset: str
    name: str                # artifact path, e.g. treemap.png
    partition: str           # "" for an unpartitioned asset
    experiment_id: str
    run_id: str
    png: bytes

    @property
    def run_url(self) -> str:
        return MlflowTracking().run_url(self.experiment_id, self.run_id)


def partition_figures(client: MlflowClient, partition: str) -> list[RunFigure]:
    """The top-level PNG artifacts of every asset's latest finished run for ``partition`` (the latest
    unpartitioned run for assets without partitions), in the order the runs started."""
    runs = []
    for exp in client.search_experiments():
        if not exp.name.startswith(EXPERIMENT_PREFIX):
            continue
        run = (latest_finished_run(client, exp.experiment_id, partition)
               or latest_finished_run(client, exp.experiment_id, ""))
        if run is not None:
            runs.append((exp, run))
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for exp, run in sorted(runs, key=lambda pair: (pair[1].info.start_time, pair[0].name)):
            run_id = run.info.run_id
            for artifact in client.list_artifacts(run_id):
                if artifact.is_dir or not artifact.path.lower().endswith(".png"):
                    continue
                local = client.download_artifacts(run_id, artifact.path, tmp)
                figures.append(RunFigure(exp.name.removeprefix(EXPERIMENT_PREFIX), artifact.path,
                                         run.data.tags.get("dagster.partition", ""), exp.experiment_id, run_id,
                                         Path(local).read_bytes()))
    return figures


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; }
thead th { background: #f3f3f3; }
tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9rem; color: #555; }
code { background: #f3f3f3; padding: 0 .2rem; }
"""


def _figure_html(figure: RunFigure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    where = f"partition {figure.partition}" if figure.partition else "unpartitioned"
    caption = (f"<strong>{html.escape(figure.asset)}</strong>: {html.escape(figure.name)} ({html.escape(where)}), "
               f'MLflow run <a href="{html.escape(figure.run_url)}">{html.escape(figure.run_id)}</a>')
    return (f'<figure>\n<img alt="{html.escape(figure.asset)} {html.escape(figure.name)}" '
            f'src="data:image/png;base64,{data}">\n<figcaption>{caption}</figcaption>\n</figure>')


def html_report(partition: str, tracking_uri: str | None = None) -> str:
    """One self-contained HTML page (inline CSS, base64 images): the tables of :func:`partition_report`, then
    every figure of :func:`partition_figures`, each captioned with its asset and MLflow run."""
    uri = tracking_uri or default_tracking_uri()
    tables = markdown_to_html(partition_report(partition, tracking_uri=uri))
    figures = partition_figures(MlflowClient(uri), partition)
    body = "\n".join(_figure_html(f) for f in figures) or "<p>No figures logged for this partition.</p>"
    title = f"newsforge report, partition {html.escape(partition)}"
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
            f"<p>From the MLflow store <code>{html.escape(uri)}</code>.</p>\n{tables}\n"
            f'<h2 id="figures">Figures</h2>\n{body}\n</body>\n</html>\n')


def write_html_report(partition: str, path: str | Path, tracking_uri: str | None = None) -> Path:
    """Write :func:`html_report` of ``partition`` to ``path`` (folders created); the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(partition, tracking_uri), encoding="utf-8")
    return path
