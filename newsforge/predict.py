"""Score a MIND-format folder with a registered model and write MIND's submission format."""
from __future__ import annotations

import re
from pathlib import Path

import mlflow

from orchestration.settings import default_tracking_uri
from training.data.prepare import read_mind_dir
from training.metrics.submission import write_prediction_file

_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:@(?P<ref>[A-Za-z0-9_-]+))?$")


def model_uri(spec: str) -> str:
    """``NAME@ALIAS`` or ``NAME@VERSION`` (digits) to an MLflow ``models:/`` URI; bare ``NAME`` means @champion."""
    match = _SPEC.match(spec)
    if not match:
        raise ValueError(f"model spec {spec!r} must look like ctr_model@champion or ctr_model@3")
    name, ref = match["name"], match["ref"] or "champion"
    return f"models:/{name}/{ref}" if ref.isdigit() else f"models:/{name}@{ref}"


def predict_folder(spec: str, data_dir: str | Path, out: str | Path, tracking_uri: str | None = None) -> int:
    """Write ``out`` for every impression of ``data_dir`` (labels optional); returns the impression count."""
    mlflow.set_tracking_uri(tracking_uri or default_tracking_uri())
    tables = read_mind_dir(data_dir, require_labels=False)
    bad = [issue for v in tables.validations for issue in v.issues]
    if bad:
        shown = "\n".join(f"  {issue}" for issue in bad[:20])
        raise ValueError(f"{data_dir} has {len(bad)} invalid row(s); run `newsforge data validate`:\n{shown}")
    model = mlflow.pyfunc.load_model(model_uri(spec)).unwrap_python_model()
    if not hasattr(model, "score_tables"):
        raise ValueError(f"{spec} is not a CTR model (no score_tables)")
    scores = model.score_tables(tables.impressions, tables.histories, tables.news)
    write_prediction_file(out, tables.impressions["impression_id"].to_numpy(), scores)
    return len(tables.histories)
