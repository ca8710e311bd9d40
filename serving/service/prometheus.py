"""The service's metrics in Prometheus' text format (0.0.4), without a client library.

``newsforge_requests_total{endpoint,status}``, ``newsforge_request_duration_seconds{endpoint}`` (histogram,
buckets fine around 1-50 ms), ``newsforge_model_info{model,version}`` and ``newsforge_model_version{model}``
(loaded versions), ``newsforge_model_reloads_total{model,result}``, ``newsforge_candidate_store_info{version}``,
``newsforge_rank_forwards_total`` and ``newsforge_rank_forward_requests_total`` (batched ``/v1/rank``).
``RequestMetrics`` is the ASGI middleware that times every request (from the first byte the app sees to the
last byte it sends). The tests read the text back with ``tests/prometheus_text.py``.
"""
from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Mapping

from serving.service.limits import ASGIApp, Message, Receive, Scope, Send

#: Upper bounds (seconds) of the latency buckets; +Inf is implied.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015,
                   0.0175, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05, 0.06, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
                   5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label_value(str(v))}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class LatencyHistogram:
    """Counts of observations per bucket (non-cumulative), their sum and count."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1  # bucket ``le`` bound: value <= bound
        self.sum += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        out, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts):
            total += n
            out.append((bound, total))
        return out


class ServiceMetrics:
    """Request counts and latencies (updated per request) and model reload outcomes (from the reload thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, LatencyHistogram] = {}
        self.reloads: dict[tuple[str, str], int] = defaultdict(int)
        self.rank_forwards = 0            # model forwards of /v1/rank (batched handlers: shared by requests)
        self.rank_forward_requests = 0    # requests those forwards scored

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[endpoint, status] += 1
            histogram = self.latency.get(endpoint)
            if histogram is None:
                histogram = self.latency[endpoint] = LatencyHistogram()
            histogram.observe(seconds)

    def observe_reload(self, model: str, ok: bool) -> None:
        with self._lock:
            self.reloads[model, "success" if ok else "failure"] += 1

    def observe_rank_forward(self, requests: int) -> None:
        with self._lock:
            self.rank_forwards += 1
            self.rank_forward_requests += requests

    def render(self, models: Mapping[str, str], store_version: str | None) -> str:
        """The exposition text; ``models``: loaded version per model name."""
        lines = ["# HELP newsforge_requests_total HTTP requests answered, by endpoint and status.",
                 "# TYPE newsforge_requests_total counter"]
        with self._lock:
            requests = sorted(self.requests.items())
            latency = {k: (h.cumulative(), h.sum, h.count) for k, h in sorted(self.latency.items())}
            reloads = sorted(self.reloads.items())
            forwards, forward_requests = self.rank_forwards, self.rank_forward_requests
        lines += [f"newsforge_requests_total{_labels(endpoint=e, status=str(s))} {n}" for (e, s), n in requests]
        lines += ["# HELP newsforge_request_duration_seconds Time from request to the last response byte.",
                  "# TYPE newsforge_request_duration_seconds histogram"]
        for endpoint, (buckets, total, count) in latency.items():
            name = "newsforge_request_duration_seconds"
            lines += [f"{name}_bucket{_labels(endpoint=endpoint, le=_number(le))} {n}" for le, n in buckets]
            lines += [f"{name}_sum{_labels(endpoint=endpoint)} {total!r}",
                      f"{name}_count{_labels(endpoint=endpoint)} {count}"]
        lines += ["# HELP newsforge_model_info The model version being served (value 1).",
                  "# TYPE newsforge_model_info gauge"]
        lines += [f"newsforge_model_info{_labels(model=m, version=v)} 1" for m, v in sorted(models.items())]
        lines += ["# HELP newsforge_model_version The model version being served, as a number.",
                  "# TYPE newsforge_model_version gauge"]
        lines += [f"newsforge_model_version{_labels(model=m)} {v}" for m, v in sorted(models.items()) if v.isdigit()]
        lines += ["# HELP newsforge_model_reloads_total Loads of a new champion version, by result.",
                  "# TYPE newsforge_model_reloads_total counter"]
        lines += [f"newsforge_model_reloads_total{_labels(model=m, result=r)} {n}" for (m, r), n in reloads]
        lines += ["# HELP newsforge_rank_forwards_total Model forwards run for /v1/rank by the batched handlers.",
                  "# TYPE newsforge_rank_forwards_total counter", f"newsforge_rank_forwards_total {forwards}",
                  "# HELP newsforge_rank_forward_requests_total Requests those forwards scored (mean batch: ratio).",
                  "# TYPE newsforge_rank_forward_requests_total counter",
                  f"newsforge_rank_forward_requests_total {forward_requests}"]
        lines += ["# HELP newsforge_candidate_store_info The candidate store's current version (value 1).",
                  "# TYPE newsforge_candidate_store_info gauge"]
        if store_version is not None:
            lines.append(f"newsforge_candidate_store_info{_labels(version=store_version)} 1")
        return "\n".join(lines) + "\n"


class RequestMetrics:
    """ASGI middleware: counts every HTTP request by ``endpoint_of(path)`` and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, endpoint_of: Callable[[str], str]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoint_of = endpoint_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, done = 500, False

        async def timed_send(message: Message) -> None:
            nonlocal status, done
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done = True
                self.metrics.observe_request(self.endpoint_of(scope["path"]), status, time.perf_counter() - started)

        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            if not done:  # no response was completed: count the failure
                self.metrics.observe_request(self.endpoint_of(scope["path"]), 500, time.perf_counter() - started)
            raise

