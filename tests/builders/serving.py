"""A tiny registry for the online service (tests, ``benchmarks/bench_serving.py``): a registered ``ctr_model``,
a ``ctr_model`` version that cannot load, a tiny candidate store, and ``newsforge serve`` as a subprocess."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Self

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_CODE = [str(REPO_ROOT / "serving"), str(REPO_ROOT / "training")]
CTR_MODEL = "ctr_model"


@contextlib.contextmanager
def mlflow_registry(root: Path) -> Iterator[str]:
    """Point MLflow at ``sqlite:///<root>/mlflow.db`` with artefacts under ``root/artifacts`` (a fresh
    experiment), yield the URI, and restore the previous tracking URI afterwards."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri() if os.environ.get("MLFLOW_TRACKING_URI") else None
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name("serving")
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(
            "serving", artifact_location=(root / "artifacts").resolve().as_uri())
        mlflow.set_experiment(experiment_id=experiment_id)
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)
        mlflow.set_registry_uri(previous)


def _log_ctr_pyfunc(python_model: PythonModel, artifacts: dict[str, str] | None, code_paths: list[str],
                    alias: str | None) -> str:
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name=CTR_MODEL, python_model=python_model, artifacts=artifacts,
                                       registered_model_name=CTR_MODEL, pip_requirements=[], code_paths=code_paths)
    version = str(info.registered_model_version)
    if alias:
        mlflow.MlflowClient().set_registered_model_alias(CTR_MODEL, alias, version)
    return version


def register_tiny_ctr_model(out_dir: Path, alias: str | None = "champion", seed: int = 0) -> str:
    """Train a tiny DCN (+news+user vectors, 1 epoch) on ``make_synthetic_ctr_data``, save the predictor and
    the news parquet under ``out_dir`` and register a ``CtrPyfunc`` as ``ctr_model`` in the configured MLflow
    store (under the active experiment); point ``alias`` at it. Returns the version. Ids: users ``U<i>``,
    news ``N<i>`` (a few ``N<i>`` are off the catalogue)."""
    import torch

    from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data
    from serving.ctr_model import CtrPyfunc
    from training.ctr import CtrConfig, train_ctr_model

    out = Path(out_dir) / f"ctr_seed{seed}"
    train, valid = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=80, num_news=150, train_days=2,
                                                              impressions_per_day=150, seed=seed))
    config = CtrConfig(model="dcn", prec="news+user", embedding_dim=8, mlp_hidden=(32, 16), max_epochs=1,
                       batch_size=512, learning_rate=1e-2, progress_bar=False, seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train_ctr_model(train, valid, config, out / "predictor")
    finally:
        torch.set_num_threads(threads)
    train.news.to_parquet(out / "news.parquet", index=False)
    artifacts = {"predictor": str(result.artefact_dir), "news": str(out / "news.parquet")}
    return _log_ctr_pyfunc(CtrPyfunc(), artifacts, MODEL_CODE, alias)


class FailingCtrPyfunc(PythonModel):
    """A ``ctr_model`` version whose ``load_context`` raises (the service must keep its old version)."""

    MESSAGE = "this ctr_model version fails to load on purpose"

    def load_context(self, context) -> None:
        raise RuntimeError(self.MESSAGE)

    def predict(self, context, model_input, params=None):
        raise RuntimeError(self.MESSAGE)


def register_failing_ctr_model(alias: str | None = None) -> str:
    """Register ``FailingCtrPyfunc`` as a ``ctr_model`` version (its code travels with it); returns the version."""
    return _log_ctr_pyfunc(FailingCtrPyfunc(), None, [str(REPO_ROOT / "tests" / "builders")], alias)


def write_tiny_candidate_store(path: Path, trigger_ids: Sequence[str], news_ids: Sequence[str],
                               version: str = "tiny-v1", per_trigger: int = 20, seed: int = 0) -> str:
    """A candidate store at ``path`` whose current ``version`` lists ``per_trigger`` random ``news_ids`` per
    trigger and recall path (coclick, embedding, union); returns the version."""
    from training.retrieval.candidate_store import CandidateStore

    rng = np.random.default_rng(seed)
    pool = np.asarray(list(news_ids), dtype=object)
    frames = []
    for trigger in trigger_ids:
        for recall_path in ("coclick", "embedding", "union"):
            picked = pool[rng.permutation(len(pool))[:per_trigger]]
            frames.append(pd.DataFrame({"trigger_id": trigger, "path": recall_path,
                                        "rank": np.arange(1, len(picked) + 1), "news_id": picked,
                                        "score": np.sort(rng.random(len(picked)))[::-1]}))
    with CandidateStore(path) as store:
        store.write(version, pd.concat(frames, ignore_index=True), meta={"builder": "tests/builders/serving.py"})
    return version


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """``newsforge serve`` running as a subprocess on a loopback port; output goes to ``log``."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_command(tracking_uri: str, store: Path, port: int, poll_seconds: float = 0.5,
                  require: str = "ctr_model,ranker", extra: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "newsforge.cli", "serve", "--port", str(port), "--tracking-uri", tracking_uri,
            "--store", str(store), "--poll-seconds", str(poll_seconds), "--require", require, *extra]


def service_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "NEWSFORGE_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the service gets --tracking-uri
    return env


def start_service(tracking_uri: str, store: Path, work_dir: Path, poll_seconds: float = 0.5,
                  require: str = "ctr_model,ranker", extra: Sequence[str] = (),
                  timeout: float = 120.0) -> ServiceProcess:
    """Start ``newsforge serve`` on a free loopback port and wait until ``/healthz`` answers 200; raises
    ``RuntimeError`` with the server's output when it exits or does not answer in ``timeout`` seconds."""
    import requests

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = work_dir / f"serve-{port}.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(serve_command(tracking_uri, store, port, poll_seconds, require, extra),
                                cwd=REPO_ROOT, env=service_env(work_dir), stdout=sink, stderr=subprocess.STDOUT)
    service = ServiceProcess(proc, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"newsforge serve exited with {proc.returncode}:\n{service.output()[-4000:]}")
        try:
            if requests.get(f"{service.url}/healthz", timeout=2).status_code == 200:
                return service
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    service.stop()
    raise RuntimeError(f"newsforge serve did not answer /healthz in {timeout:.0f} s:\n{service.output()[-4000:]}")
