"""The models being served: each registered model's ``champion`` version, loaded from the MLflow registry at
start and reloaded by a background thread when the alias moves.

A new version is loaded, adapted and warmed up completely before one dict entry is swapped, so a request
in flight keeps the ``LoadedModel`` it read; a version that fails to load leaves the old one serving and is
reported (``status()``, the reload metrics) and retried with exponential back-off while the alias stays on it.
"""
from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from serving.service.prometheus import ServiceMetrics
from training.registry import CHAMPION, load_python_model, resolve_model

CHAMPION = CHAMPION
CTR_MODEL = "ctr_model"
RANKER = "ranker"
SERVED_MODELS = (CTR_MODEL, RANKER)
MAX_RETRY_SECONDS = 300.0

log = logging.getLogger("newsforge.serve")


class ChampionLoadError(RuntimeError):
    """A required champion exists but cannot be loaded; the message is one line."""


def settle_heap() -> None:
    """Collect garbage once and freeze the survivors (the loaded models, mlflow, torch: ~700k objects) out of
    the cyclic collector: a full collection of them pauses the event loop ~0.4 s at random under load; this
    way it happens once, at start and after each reload, instead."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def adapt_ctr_model(python_model: Any) -> Any:
    """The ``CtrRequestScorer`` of a ``CtrPyfunc``, warmed up with one request (so it is known to work)."""
    from serving.ctr_request import CtrRequestScorer

    scorer = CtrRequestScorer.from_pyfunc(python_model)
    some_news = [str(n) for n in python_model.news["news_id"].head(3)] or ["N0"]
    scorer.score("warm-up-user", some_news[:1], some_news, datetime(2019, 11, 14, 9, 0, tzinfo=UTC))
    return scorer


def adapt_ranker(python_model: Any) -> Any:
    """A ``RankerPyfunc`` as is, once it has answered one ``related`` call."""
    missing = [a for a in ("related", "triggers", "default_lambda") if not hasattr(python_model, a)]
    if missing:
        raise TypeError(f"{type(python_model).__name__} is not a ranker: it lacks {', '.join(missing)}")
    for trigger in python_model.triggers:
        python_model.related(trigger, k=1)
        break
    return python_model


#: How each served model's unwrapped pyfunc becomes what the endpoints call.
ADAPTERS: dict[str, Callable[[Any], Any]] = {CTR_MODEL: adapt_ctr_model, RANKER: adapt_ranker}


@dataclass(frozen=True)
class LoadedModel:
    """One served version: ``served`` is what the endpoint calls, ``python_model`` the unwrapped pyfunc."""

    name: str
    version: str
    served: Any
    python_model: Any
    loaded_at: str
    load_seconds: float


def load_served(name: str, version: str) -> LoadedModel:
    """Load ``models:/<name>/<version>`` from the registry (the global MLflow URIs) and adapt it."""
    started = time.perf_counter()
    python_model = load_python_model(name, version)
    served = ADAPTERS[name](python_model)
    return LoadedModel(name, version, served, python_model, _now(), round(time.perf_counter() - started, 3))


class Champions:
    """The loaded champion of each of ``names``; ``get(name)`` is what a request reads (one dict lookup)."""

    def __init__(self, client: MlflowClient, names: Sequence[str] = SERVED_MODELS, poll_seconds: float = 10.0,
                 metrics: ServiceMetrics | None = None,
                 loader: Callable[[str, str], LoadedModel] = load_served) -> None:
        unknown = [n for n in names if n not in ADAPTERS]
        if unknown:
            raise ValueError(f"the service serves {', '.join(ADAPTERS)}; unknown model(s): {', '.join(unknown)}")
        self.client = client
        self.names = tuple(names)
        self.poll_seconds = poll_seconds
        self.metrics = metrics or ServiceMetrics()
        self.loader = loader
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        self._errors: dict[str, dict[str, Any]] = {}       # outstanding problem per model
        self._last_error: dict[str, Any] | None = None      # the latest reload problem, kept once solved
        self._retry: dict[str, tuple[str, int, float]] = {}  # model -> (failed version, attempts, next try)
        self._last_poll: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what requests read ----------------------------------------------------------------------------
    def get(self, name: str) -> LoadedModel | None:
        return self._loaded.get(name)

    def versions(self) -> dict[str, str]:
        return {name: m.version for name, m in list(self._loaded.items())}

    # -- loading ---------------------------------------------------------------------------------------
    def _alias_version(self, name: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(name, CHAMPION).version)
        except MlflowException as err:
            if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def load_at_start(self, required: Sequence[str]) -> None:
        """Load every champion there is. Raises ``UnknownModelError`` (from ``resolve_model``, before loading
        anything) when a ``required`` model has no champion, ``ChampionLoadError`` when one cannot be loaded."""
        for name in required:
            if name not in self.names:
                raise ValueError(f"required model {name!r} is not served; served: {', '.join(self.names)}")
            resolve_model(f"{name}@{CHAMPION}", self.client)
        for name in self.names:
            version = self._alias_version(name)
            if version is None:
                continue
            try:
                self._swap(self.loader(name, version))
            except Exception as err:
                if name in required:
                    raise ChampionLoadError(f"cannot load {name} version {version} (@{CHAMPION}): "
                                            f"{type(err).__name__}: {_one_line(err)}") from err
                self._failed(name, version, err)
        settle_heap()

    def _swap(self, loaded: LoadedModel) -> None:
        self._loaded[loaded.name] = loaded  # one reference swap: in-flight requests keep the old object
        with self._lock:
            self._errors.pop(loaded.name, None)
            self._retry.pop(loaded.name, None)

    def _failed(self, name: str, version: str | None, err: BaseException | str) -> None:
        text = err if isinstance(err, str) else f"{type(err).__name__}: {_one_line(err)}"
        problem = {"model": name, "version": version, "error": text, "at": _now()}
        with self._lock:
            self._errors[name] = problem
            self._last_error = problem
        log.warning("newsforge serve: %s version %s: %s", name, version, text)

    def poll_once(self) -> None:
        """Compare each model's ``champion`` alias with the loaded version; load the new one when it moved."""
        for name in self.names:
            try:
                target = self._alias_version(name)
            except Exception as err:  # noqa: BLE001 - a registry hiccup must not stop the service
                self._failed(name, None, f"reading the registry failed: {type(err).__name__}: {_one_line(err)}")
                continue
            current = self._loaded.get(name)
            if target is None:
                if current is not None:
                    self._failed(name, None, f"alias {CHAMPION!r} is gone; still serving version {current.version}")
                continue
            if current is not None and current.version == target:
                with self._lock:
                    self._errors.pop(name, None)
                    self._retry.pop(name, None)
                continue
            with self._lock:
                failed_version, attempts, next_try = self._retry.get(name, (None, 0, 0.0))
            if failed_version == target and time.monotonic() < next_try:
                continue
            try:
                loaded = self.loader(name, target)
            except Exception as err:  # noqa: BLE001 - keep serving the old version
                attempts = attempts + 1 if failed_version == target else 1
                delay = min(self.poll_seconds * 2 ** attempts, MAX_RETRY_SECONDS)
                with self._lock:
                    self._retry[name] = (target, attempts, time.monotonic() + delay)
                self.metrics.observe_reload(name, ok=False)
                kept = f"; still serving version {current.version}" if current else ""
                self._failed(name, target, f"{type(err).__name__}: {_one_line(err)}{kept}")
                continue
            self._swap(loaded)
            settle_heap()  # also lets the replaced version's reference cycles go
            self.metrics.observe_reload(name, ok=True)
            log.warning("newsforge serve: now serving %s version %s (was %s)", name, target,
                        current.version if current else "none")
        self._last_poll = _now()

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:
                log.exception("newsforge serve: polling the registry failed")

    def start_polling(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll_forever, name="champion-poller", daemon=True)
            self._thread.start()

    def stop_polling(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    # -- reporting -------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Loaded versions, outstanding problems and the latest reload error, for ``/healthz``."""
        with self._lock:
            errors = dict(self._errors)
            last = self._last_error
        models = {}
        for name in self.names:
            loaded = self._loaded.get(name)
            models[name] = {
                "version": loaded.version if loaded else None,
                "loaded_at": loaded.loaded_at if loaded else None,
                "load_seconds": loaded.load_seconds if loaded else None,
                "error": errors[name]["error"] if name in errors else None,
            }
        return {"models": models, "last_reload_error": last, "last_poll": self._last_poll,
                "poll_seconds": self.poll_seconds}


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 300 else text[:297] + "..."
