"""The model registry, Dagster-free (assets, serving and the CLI use it): log a pyfunc model in the current MLflow
run and register it; read and move aliases (the champion alias is :data:`CHAMPION`, spelled here only); parse
``NAME[@ALIAS|@VERSION]`` specs, resolve them against the registry with one-line errors, and load a version.

Every logged model carries the project code it needs (``code_paths``: the ``training`` and ``serving``
packages) and pinned requirements, so :func:`load_version` works from any checkout and from none. Which
alias moves when is decided by ``orchestration.champion_gate`` for gated models.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from training.settings import project_root

if TYPE_CHECKING:
    from mlflow.models import ModelSignature
    from mlflow.pyfunc import PyFuncModel, PythonModel
    from mlflow.store.entities.paged_list import PagedList

T = TypeVar("T")

CANDIDATE = "candidate"
CHAMPION = "champion"
#: The project packages a logged model imports at load time (copied into the model with ``code_paths``).
MODEL_CODE = ("training", "serving")
#: Distributions the model code imports when loaded; pinned to the versions that logged it.
MODEL_REQUIREMENTS = ("torch", "lightning", "transformers", "tokenizers", "numpy", "pandas", "pyarrow",
                      "scikit-learn", "mlflow")


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model version and where its files are on local disk."""

    name: str
    version: str
    run_id: str
    local_dir: str        # the training output folder (immutable: one per Dagster run)
    content_version: str  # hash of the weights, e.g. the PREC encoders' model_version


def model_requirements() -> list[str]:
    """``name==version`` of each installed distribution in ``MODEL_REQUIREMENTS``."""
    pins = []
    for dist in MODEL_REQUIREMENTS:
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def log_and_register(name: str, python_model: PythonModel, artifacts: dict[str, str], *,
                     local_dir: str | Path, content_version: str, signature: ModelSignature | None = None,
                     input_example: Any = None, candidate_alias: bool = True) -> RegisteredModel:
    """Log ``python_model`` under the active run and register it as a new version of ``name``.

    ``candidate_alias``: point ``candidate`` at the new version now (ungated models). Gated models pass
    False: the champion gate moves ``candidate`` and ``champion`` together once its check is emitted.
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_and_register needs an active MLflow run")
    root = project_root()
    info = mlflow.pyfunc.log_model(name=name, python_model=python_model, artifacts=artifacts,
                                   signature=signature, input_example=input_example,
                                   registered_model_name=name, pip_requirements=model_requirements(),
                                   code_paths=[str(root / package) for package in MODEL_CODE],
                                   await_registration_for=60)
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(name, version, "content_version", content_version)
    if candidate_alias:
        client.set_registered_model_alias(name, CANDIDATE, version)
    return RegisteredModel(name, version, run.info.run_id, str(local_dir), content_version)


def alias_version(name: str, alias: str) -> str | None:
    """The version an alias points to, or None."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, alias, version)


_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:@(?P<ref>[A-Za-z0-9_-]+))?$")


class UnknownModelError(LookupError):
    """The spec names a model, alias or version the registry does not hold; the message is one line
    naming what was asked for and what exists."""


def parse_spec(spec: str) -> tuple[str, str]:
    """``NAME@ALIAS`` or ``NAME@VERSION`` (digits) to ``(name, ref)``; bare ``NAME`` means ``@champion``."""
    match = _SPEC.match(spec)
    if not match:
        raise ValueError(f"model spec {spec!r} must look like ctr_model@{CHAMPION} or ctr_model@3")
    return match["name"], match["ref"] or CHAMPION


def model_uri(spec: str) -> str:
    """The MLflow ``models:/`` URI of a spec (see ``parse_spec``), without asking the registry."""
    name, ref = parse_spec(spec)
    return f"models:/{name}/{ref}" if ref.isdigit() else f"models:/{name}@{ref}"


def _all_pages(search: Callable[..., PagedList[T]], **kwargs: Any) -> Iterator[T]:
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


def load_version(name: str, version: str | int) -> PyFuncModel:
    """Version ``version`` of registered model ``name`` (its own artefacts and shipped code)."""
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}")


def load_python_model(name: str, version: str | int) -> PythonModel:
    """The python model (``unwrap_python_model()``) of version ``version`` of ``name``."""
    return load_version(name, version).unwrap_python_model()


def finite_scores(scores: Any, name: str, version: str | int) -> np.ndarray:
    """``scores`` of registered model ``name`` ``version`` as float64; ``ValueError`` naming the version and the
    count when one is not finite (NaN or infinite: a broken model must fail its gate, not rank last)."""
    values = np.asarray(scores, dtype=np.float64)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise ValueError(f"{name} version {version} returned {bad} non-finite scores")
    return values
