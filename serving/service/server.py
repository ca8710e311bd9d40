"""Start the service: options, the start-up checks that refuse to serve without a required champion, uvicorn.

With one worker the champions are loaded in this process before the port is bound, so a missing or broken
champion stops ``newsforge serve`` with exit code 2. With ``workers > 1`` uvicorn starts that many processes
(each loads the champions and polls the registry on its own; ``/metrics`` then describes the worker that
answered) after the same registry checks here.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from training.settings import serve_options, set_serve_options

#: uvicorn's httptools protocol sending each response in one write (``http_protocol``).
HTTP_PROTOCOL = "serving.service.http_protocol:CoalescingHttpToolsProtocol"

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from serving.service.champions import Champions
    from serving.service.limits import ASGIApp


class ServeRefused(RuntimeError):
    """The service cannot start; the message is one line saying why."""


@dataclass(frozen=True)
class ServeOptions:
    """What ``newsforge serve`` was asked for (see ``newsforge serve --help``)."""

    tracking_uri: str
    store: str
    host: str = "127.0.0.1"
    port: int = 8000
    poll_seconds: float = 10.0
    workers: int = 1
    require: tuple[str, ...] = ("ctr_model", "ranker")
    log_level: str = "warning"

    def __post_init__(self) -> None:
        from serving.service.champions import SERVED_MODELS

        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be in 0..65535, got {self.port}")
        if not self.poll_seconds > 0:
            raise ValueError(f"--poll-seconds must be > 0, got {self.poll_seconds}")
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        unknown = [name for name in self.require if name not in SERVED_MODELS]
        if unknown:
            raise ValueError(f"--require names {', '.join(unknown)}; the service serves {', '.join(SERVED_MODELS)}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeOptions:
        values = json.loads(text)
        return cls(**{**values, "require": tuple(values["require"])})


def limit_threads() -> None:
    """One compute thread per process: small per-request batches are fastest single-threaded, and the
    workers (not the kernels) use the cores."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in the server log
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already ran
        pass


def _client(options: ServeOptions) -> MlflowClient:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(options.tracking_uri)
    mlflow.set_registry_uri(options.tracking_uri)
    return MlflowClient(tracking_uri=options.tracking_uri, registry_uri=options.tracking_uri)


def _refusal(options: ServeOptions, err: BaseException) -> ServeRefused:
    needs = ", ".join(options.require) or "none"
    return ServeRefused(f"{' '.join(str(err).split())} (required champions: {needs}; registry {options.tracking_uri})")


def check_champions(options: ServeOptions) -> None:
    """``ServeRefused`` unless every required model has a ``champion`` alias (nothing is loaded)."""
    from mlflow.exceptions import MlflowException

    from training.registry import CHAMPION, UnknownModelError, resolve_model

    client = _client(options)
    for name in options.require:
        try:
            resolve_model(f"{name}@{CHAMPION}", client)
        except (UnknownModelError, MlflowException) as err:
            raise _refusal(options, err) from None


def build_app(options: ServeOptions) -> tuple[ASGIApp, Champions]:
    """Load the champions and open the candidate store, then build the app; ``ServeRefused`` when a
    required champion is missing or cannot be loaded."""
    from mlflow.exceptions import MlflowException

    from serving.service.app import create_app
    from serving.service.champions import ChampionLoadError, Champions
    from serving.service.prometheus import ServiceMetrics
    from serving.service.store_status import StoreStatus
    from training.registry import UnknownModelError

    champions = Champions(_client(options), poll_seconds=options.poll_seconds, metrics=ServiceMetrics())
    try:
        champions.load_at_start(options.require)
    except (UnknownModelError, ChampionLoadError, MlflowException) as err:
        raise _refusal(options, err) from None
    return create_app(champions, StoreStatus(options.store)), champions


def app_from_env() -> ASGIApp:
    """uvicorn's app factory in each worker process (``workers > 1``): options from ``$NEWSFORGE_SERVE_OPTIONS``."""
    limit_threads()
    app, _ = build_app(ServeOptions.from_json(serve_options()))
    return app


def serve(options: ServeOptions) -> None:
    """Run the service until interrupted (SIGINT/SIGTERM: finish in-flight requests, then stop)."""
    import uvicorn

    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    limit_threads()
    common: dict[str, Any] = {"host": options.host, "port": options.port, "log_level": options.log_level,
                              "access_log": False, "timeout_graceful_shutdown": 5, "server_header": False,
                              "http": HTTP_PROTOCOL}
    if options.workers == 1:
        app, champions = build_app(options)
        loaded = ", ".join(f"{name} v{version}" for name, version in champions.versions().items())
        print(f"newsforge serve: {loaded or 'no model'} loaded; http://{options.host}:{options.port} "
              f"(poll every {options.poll_seconds:g} s)", file=sys.stderr, flush=True)
        uvicorn.run(app, **common)
        return
    check_champions(options)
    set_serve_options(options.to_json())
    print(f"newsforge serve: starting {options.workers} workers on http://{options.host}:{options.port}",
          file=sys.stderr, flush=True)
    uvicorn.run("serving.service.server:app_from_env", factory=True, workers=options.workers, **common)
