"""Closed-loop load test of ``newsforge serve``: latency percentiles, throughput and errors per endpoint,
checked against the service's own ``/metrics`` histogram, and PASS/MISS against the targets.

Starts the service on loopback as a subprocess, then drives each endpoint in turn with ``--clients``
concurrent keep-alive clients (each sends its next request when the last one is answered; pre-encoded HTTP/1.1
on asyncio streams, or aiohttp with ``--client aiohttp``) for ``--seconds`` after ``--warmup`` seconds. The
clients run in a load-generator process of their own (a fresh interpreter: no torch or mlflow heap; it
shares the machine's cores with the service): ``POST /v1/rank`` with ``--candidates`` random catalogue ids and a
random history, ``GET /v1/related/{id}`` for random known triggers. Between phases all clients stop, so the
``/metrics`` deltas cover exactly the measured requests.

    .venv/bin/python benchmarks/bench_serving.py --synthetic            # tiny registry in a temp dir
    .venv/bin/python benchmarks/bench_serving.py                        # $NEWSFORGE_HOME (after `make demo`)
    .venv/bin/python benchmarks/bench_serving.py --synthetic --workers 2
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import quote, urlsplit

import _paths  # noqa: F401  (repository root and tests/ on sys.path)
import numpy as np

TARGETS_MS = {"/v1/rank": 25.0, "/v1/related/{news_id}": 10.0}
QUANTILES = (0.5, 0.95, 0.99)
DURATION = "newsforge_request_duration_seconds"


def _build_synthetic(root: Path) -> tuple[str, Path]:
    """A tiny registry (ctr_model and ranker champions) and candidate store under ``root``."""
    from builders.ltr import register_tiny_ranker
    from builders.serving import (
        mlflow_registry,
        register_tiny_ctr_model,
        write_tiny_candidate_store,
    )

    from training.registry import load_python_model

    with mlflow_registry(root) as uri:
        ctr = register_tiny_ctr_model(root, seed=0)
        ranker = register_tiny_ranker(root, seed=0)
        triggers = sorted(load_python_model("ranker", ranker).triggers)
        news = load_python_model("ctr_model", ctr).news["news_id"].tolist()
    store = root / "candidates.sqlite"
    write_tiny_candidate_store(store, triggers, news)
    return uri, store


def _served_ids(uri: str, versions: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(catalogue news ids, user ids, ranker triggers) of the versions the service loaded."""
    import mlflow

    from training.registry import load_python_model

    mlflow.set_tracking_uri(uri)
    ctr = load_python_model("ctr_model", versions["ctr_model"])
    ranker = load_python_model("ranker", versions["ranker"])
    users = [str(u) for u in ctr.predictor.features.vocabularies["user_id"].values][:5000] or ["U1"]
    return ctr.news["news_id"].astype(str).tolist(), users, sorted(ranker.triggers)


def _rank_bodies(news: list[str], users: list[str], n_candidates: int, history: int, n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    pool = np.asarray(news, dtype=object)
    bodies = []
    for _ in range(n):
        picked = pool[rng.permutation(len(pool))[: n_candidates + history]]
        bodies.append(json.dumps({
            "user_id": users[int(rng.integers(len(users)))], "history": picked[n_candidates:].tolist(),
            "candidates": picked[:n_candidates].tolist(), "time": "2019-11-14T08:55:22Z"}).encode())
    return bodies


def _http_requests(host: str, port: int, endpoint: str, payloads: list) -> list[bytes]:
    """Raw HTTP/1.1 keep-alive requests: POST /v1/rank with each body, or GET /v1/related/<trigger>."""
    head = f"Host: {host}:{port}\r\nUser-Agent: bench_serving\r\n"
    if endpoint == "/v1/rank":
        return [(f"POST /v1/rank HTTP/1.1\r\n{head}Content-Type: application/json\r\nContent-Length: {len(body)}"
                 f"\r\n\r\n").encode() + body for body in payloads]
    return [f"GET /v1/related/{quote(str(t), safe='')} HTTP/1.1\r\n{head}\r\n".encode() for t in payloads]


def _picks(n: int, seed: int) -> itertools.cycle:
    """Random indices in ``range(n)``, drawn up front (no random draw per request)."""
    return itertools.cycle(np.random.default_rng(seed).integers(n, size=4096).tolist())


async def _raw_client(host: str, port: int, requests_: list[bytes], index: int, stop_at: float, latencies: list,
                      errors: dict) -> None:
    """One closed-loop client on one keep-alive connection (reopened when the server closes it)."""
    picks = _picks(len(requests_), index)
    reader = writer = None
    while time.perf_counter() < stop_at:
        request = requests_[next(picks)]
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as err:
            errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        if status == 200:
            latencies.append(time.perf_counter() - started)
        else:
            errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _aiohttp_client(url: str, endpoint: str, payloads: list, session, index: int, stop_at: float,
                          latencies: list, errors: dict) -> None:
    picks = _picks(len(payloads), index)
    while time.perf_counter() < stop_at:
        payload = payloads[next(picks)]
        started = time.perf_counter()
        try:
            if endpoint == "/v1/rank":
                request = session.post(f"{url}/v1/rank", data=payload, headers={"content-type": "application/json"})
            else:
                request = session.get(f"{url}/v1/related/{quote(str(payload), safe='')}")
            async with request as response:
                await response.read()
                status = response.status
        except Exception as err:  # noqa: BLE001 - counted as an error
            errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
            continue
        if status == 200:
            latencies.append(time.perf_counter() - started)
        else:
            errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1


async def _closed_loop(url: str, endpoint: str, payloads: list, clients: int, seconds: float, kind: str) -> dict:
    """Run ``clients`` closed-loop clients for ``seconds``: latencies (s) of the 200 answers, errors by kind."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    if kind == "raw":
        parts = urlsplit(url)
        requests_ = _http_requests(parts.hostname, parts.port, endpoint, payloads)
        await asyncio.gather(*(_raw_client(parts.hostname, parts.port, requests_, i, stop_at, latencies, errors)
                               for i in range(clients)))
    else:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            await asyncio.gather(*(_aiohttp_client(url, endpoint, payloads, session, i, stop_at, latencies, errors)
                                   for i in range(clients)))
    return {"latencies": np.asarray(latencies), "errors": errors, "seconds": time.perf_counter() - started}


def _run(coroutine):
    """``asyncio.run`` on uvloop when installed (a cheaper client leaves more CPU to the service)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _load(url: str, endpoint: str, payloads: list, clients: int, seconds: float, kind: str) -> dict:
    """One phase of closed-loop load, run in the load-generator process; adds its CPU seconds and pid."""
    cpu = time.process_time()
    result = _run(_closed_loop(url, endpoint, payloads, clients, seconds, kind))
    return {**result, "cpu": time.process_time() - cpu, "pid": os.getpid()}


def _scrape(url: str) -> list:
    import requests
    from prometheus_text import parse_samples

    return parse_samples(requests.get(f"{url}/metrics", timeout=30).text)


def _server_delta(before: list, after: list, endpoint: str) -> tuple[float, list[tuple[float, float]]]:
    """(requests answered, cumulative latency buckets) of ``endpoint`` between two scrapes."""
    from prometheus_text import histogram_buckets

    def count(samples):
        return sum(v for name, lab, v in samples if name == "newsforge_requests_total" and lab["endpoint"] == endpoint)

    b0 = dict(histogram_buckets(before, DURATION, endpoint=endpoint))
    b1 = histogram_buckets(after, DURATION, endpoint=endpoint)
    return count(after) - count(before), [(le, n - b0.get(le, 0.0)) for le, n in b1]


def _counter_delta(before: list, after: list, name: str) -> float:
    def value(samples):
        return sum(v for sample, _, v in samples if sample == name)

    return value(after) - value(before)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the service process and its children (uvicorn workers)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            total += sum(child.cpu_times()[:2])
        return total
    except psutil.Error:
        return math.nan


def _ms(seconds: float) -> str:
    return "n/a" if not math.isfinite(seconds) else f"{seconds * 1000:.2f}"


def _measure(args: argparse.Namespace, work: Path) -> dict:
    """Start the service, run the phases; per endpoint: client latencies, errors, /metrics deltas, CPU."""
    import requests
    from builders.serving import start_service

    from training.settings import candidate_store_path, default_tracking_uri

    if args.synthetic:
        t0 = time.perf_counter()
        uri, store = _build_synthetic(work)
        print(f"synthetic registry and store built in {time.perf_counter() - t0:.1f} s")
    else:
        uri, store = args.tracking_uri or default_tracking_uri(), Path(args.store or candidate_store_path())
    extra = ["--workers", str(args.workers)]
    with start_service(uri, store, work / "serve", poll_seconds=10.0, extra=extra, timeout=300) as service:
        health = requests.get(f"{service.url}/healthz", timeout=30).json()
        versions = {name: m["version"] for name, m in health["models"].items()}
        news, users, triggers = _served_ids(uri, versions)
        print(f"service {service.url}: {versions}, store {health['store']['version']}; workers {args.workers}; "
              f"{args.clients} closed-loop clients, {args.seconds:g} s per endpoint "
              f"after {args.warmup:g} s warm-up; {os.cpu_count()} CPUs visible")
        phases = {"rank": ("/v1/rank", _rank_bodies(news, users, args.candidates, args.history, 2000, seed=0)),
                  "related": ("/v1/related/{news_id}", triggers)}
        results = {}
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as load_generator:
            for phase in [p.strip() for p in args.endpoints.split(",") if p.strip()]:
                endpoint, payloads = phases[phase]
                load = (service.url, endpoint, payloads, args.clients)
                load_generator.submit(_load, *load, args.warmup, args.client).result()
                before, cpu0 = _scrape(service.url), _cpu_seconds(service.proc.pid)
                run = load_generator.submit(_load, *load, args.seconds, args.client).result()
                cpu = _cpu_seconds(service.proc.pid) - cpu0
                after = _scrape(service.url)
                forwards = _counter_delta(before, after, "newsforge_rank_forwards_total")
                batch = _counter_delta(before, after, "newsforge_rank_forward_requests_total") / forwards \
                    if forwards > 0 and args.workers == 1 else 0  # with workers, two scrapes may see two workers
                results[endpoint] = {**run, "server": _server_delta(before, after, endpoint), "cpu": cpu,
                                     "client_cpu": run["cpu"], "batch": batch}
        pids = sorted({r["pid"] for r in results.values()})
        print(f"load generator: process {', '.join(map(str, pids))}; service: process {service.proc.pid}; "
              f"this script: process {os.getpid()}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", action="store_true", help="build a tiny registry in a temp dir")
    parser.add_argument("--tracking-uri", help="registry to serve (default: $NEWSFORGE_HOME's MLflow store)")
    parser.add_argument("--store", help="candidate store (default: $NEWSFORGE_HOME/serving/candidates.sqlite)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per endpoint (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each phase")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--candidates", type=int, default=100, help="candidates per /v1/rank request")
    parser.add_argument("--history", type=int, default=20, help="history items per /v1/rank request")
    parser.add_argument("--workers", type=int, default=1, help="passed to newsforge serve --workers")
    parser.add_argument("--endpoints", default="rank,related", help="phases to run, in order")
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                        help="raw: pre-encoded HTTP/1.1 on asyncio streams (cheapest); aiohttp: a full client")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    from prometheus_text import histogram_quantile

    work = Path(tempfile.mkdtemp(prefix="bench_serving_"))  # the synthetic registry and the service log (removed)
    try:
        results = _measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'endpoint':<24}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'errors':>8}{'server CPU':>12}{'client CPU':>12}{'batch':>7}")
    for endpoint, r in results.items():
        lat = r["latencies"]
        q = np.quantile(lat, QUANTILES) if lat.size else [math.nan] * 3
        n_err = sum(r["errors"].values())
        batch = f"{r['batch']:.1f}" if r["batch"] else "-"
        print(f"{endpoint:<24}{lat.size:>9}{lat.size / r['seconds']:>9.1f}{_ms(q[0]):>9}{_ms(q[1]):>9}{_ms(q[2]):>9}"
              f"{_ms(lat.max() if lat.size else math.nan):>9}{n_err:>8}{r['cpu'] / r['seconds']:>11.0%}"
              f"{r['client_cpu'] / r['seconds']:>11.0%}{batch:>7}" + (f"  {r['errors']}" if n_err else ""))

    print("(server CPU: the service's processes, client CPU: the load-generator process, 100% = one core; "
          "batch: mean /v1/rank requests per model forward)")
    print("\nclient vs service (/metrics histogram deltas; the client adds the network and the event-loop queue, "
          "so its quantiles should be >= the service's bucket)")
    print(f"{'endpoint':<24}{'count client/service':>22}" + "".join(f"{f'p{round(q * 100)} client/service ms':>26}"
                                                               for q in QUANTILES) + "  verdict")
    for endpoint, r in results.items():
        answered, buckets = r["server"]
        total = r["latencies"].size + sum(r["errors"].values())
        cells, consistent = [], total == answered or args.workers > 1
        for q in QUANTILES:
            client_q = float(np.quantile(r["latencies"], q)) if r["latencies"].size else math.nan
            server_q = histogram_quantile(q, buckets)
            lower = max([le for le, n in buckets if n < q * buckets[-1][1]] + [0.0]) if buckets else math.nan
            consistent &= not (client_q < lower)  # the service cannot have been slower than its client saw
            cells.append(f"{_ms(client_q)} / {_ms(server_q)}")
        verdict = "consistent" if consistent else "INCONSISTENT"
        if args.workers > 1:
            verdict += " (counts: /metrics shows one worker)"
        print(f"{endpoint:<24}{f'{total} / {answered:.0f}':>22}" + "".join(f"{c:>26}" for c in cells) + f"  {verdict}")

    print(f"\n{'target':<34}{'measured':>12}{'ratio':>8}  verdict")
    for endpoint, r in results.items():
        p99 = float(np.quantile(r["latencies"], 0.99)) * 1000 if r["latencies"].size else math.nan
        target = TARGETS_MS[endpoint]
        verdict = "PASS" if p99 <= target else "MISS"
        print(f"{f'{endpoint} p99 <= {target:g} ms':<34}{f'{p99:.2f} ms':>12}{p99 / target:>8.2f}  {verdict}")
    errors = sum(sum(r["errors"].values()) for r in results.values())
    print(f"{'errors == 0':<34}{errors:>12}{'':>8}  {'PASS' if errors == 0 else 'MISS'}")


if __name__ == "__main__":
    main()
