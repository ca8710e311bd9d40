"""Figures drawn from an MLflow run's own records and logged back into it."""
from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from training.plots.training_curves import curve_families, plot_training_curves

#: The artifact name of a run's training curves.
TRAINING_CURVES = "training_curves.png"


def metric_histories(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric of the run as ``{key: [(step, value), ...]}``."""
    keys = client.get_run(run_id).data.metrics
    return {key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)] for key in sorted(keys)}


def log_training_curves(run_id: str, out_dir: str | Path, prefix: str | None = None,
                        x_label: str = "step") -> Path | None:
    """Draw the run's metric histories to ``out_dir/training_curves.png`` and log it in the run; the PNG
    (for :func:`assets.figures.png_markdown`), or None when no metric has more than one step.

    ``prefix``: draw only the metrics named ``<prefix>...`` (shown without it), e.g. ``epoch_`` for a run
    that logs one point per epoch beside Lightning's per-step records of the same metrics.
    Uses the current tracking URI: call it inside ``MlflowTracking.asset_run``.
    """
    client = MlflowClient()
    histories = metric_histories(client, run_id)
    if prefix is not None:
        histories = {key.removeprefix(prefix): points for key, points in histories.items() if key.startswith(prefix)}
    if not curve_families(histories):
        return None
    asset = client.get_run(run_id).data.tags.get("dagster.asset", "run")
    png = plot_training_curves(histories, Path(out_dir) / TRAINING_CURVES,
                               f"{asset}: training curves (run {run_id[:8]})", x_label=x_label)
    client.log_artifact(run_id, str(png))
    return png
