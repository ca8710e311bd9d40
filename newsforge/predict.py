"""Score a MIND-format folder with a registered model and write MIND's submission format."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestration.settings import default_tracking_uri
from training.data.prepare import read_mind_dir
from training.metrics.submission import write_prediction_file

_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:@(?P<ref>[A-Za-z0-9_-]+))?$")
DEFAULT_ALIAS = "champion"


class UnknownModelError(LookupError):
    """The spec names a model, alias or version the registry does not hold; the message is one line
    naming what was asked for and what exists."""


def parse_spec(spec: str) -> tuple[str, str]:
    """``NAME@ALIAS`` or ``NAME@VERSION`` (digits) to ``(name, ref)``; bare ``NAME`` means @champion."""
    match = _SPEC.match(spec)
    if not match:
        raise ValueError(f"model spec {spec!r} must look like ctr_model@champion or ctr_model@3")
    return match["name"], match["ref"] or DEFAULT_ALIAS


def model_uri(spec: str) -> str:
    """The MLflow ``models:/`` URI of a spec (see ``parse_spec``), without asking the registry."""
    name, ref = parse_spec(spec)
    return f"models:/{name}/{ref}" if ref.isdigit() else f"models:/{name}@{ref}"


def _all_pages(search: Callable, **kwargs) -> Iterator:
    token = None
    while True:
        page = search(page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def resolve_model(spec: str, client: MlflowClient | None = None) -> str:
    """``model_uri(spec)`` once the registry confirms the model and its alias or version exist;
    otherwise ``UnknownModelError`` naming what exists."""
    name, ref = parse_spec(spec)
    client = client or MlflowClient()
    try:
        model = client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        registered = sorted(m.name for m in _all_pages(client.search_registered_models))
        raise UnknownModelError(f"no registered model {name!r}; registered: {', '.join(registered) or 'none'}") \
            from None
    if ref.isdigit():
        versions = sorted(int(v.version) for v in _all_pages(client.search_model_versions,
                                                              filter_string=f"name = '{name}'"))
        if int(ref) not in versions:
            raise UnknownModelError(f"{name} has no version {ref}; versions: {', '.join(map(str, versions)) or 'none'}")
    elif ref not in model.aliases:
        aliases = ", ".join(f"{alias} -> v{version}" for alias, version in sorted(model.aliases.items()))
        raise UnknownModelError(f"{name} has no alias {ref!r}; aliases: {aliases or 'none'}")
    return model_uri(spec)


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
