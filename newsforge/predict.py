"""Score a MIND-format folder with a registered model and write MIND's submission format."""
from __future__ import annotations

from pathlib import Path

import mlflow

from training.data.prepare import read_mind_dir
from training.metrics.submission import write_prediction_file
from training.registry import resolve_model
from training.settings import default_tracking_uri


def predict_folder(spec: str, data_dir: str | Path, out: str | Path, tracking_uri: str | None = None) -> int:
    """Write ``out`` for every impression of ``data_dir`` (labels optional); returns the impression count.

    Raises ``UnknownModelError`` before reading any data when the registry lacks the model, alias or version.
    """
    store = tracking_uri or default_tracking_uri()
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)  # else an inherited MLFLOW_REGISTRY_URI would name another registry
    uri = resolve_model(spec)
    tables = read_mind_dir(data_dir, require_labels=False)
    bad = [issue for v in tables.validations for issue in v.issues]
    if bad:
        shown = "\n".join(f"  {issue}" for issue in bad[:20])
        raise ValueError(f"{data_dir} has {len(bad)} invalid row(s); run `newsforge data validate`:\n{shown}")
    model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    if not hasattr(model, "score_tables"):
        raise ValueError(f"{spec} cannot rank impressions (no score_tables)")
    scores = model.score_tables(tables.impressions, tables.histories, tables.news)
    write_prediction_file(out, tables.impressions["impression_id"].to_numpy(), scores)
    return len(tables.histories)
