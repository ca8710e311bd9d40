"""Hot reload under load: moving ``ctr_model``'s champion alias switches the running service within a few poll
periods without a failed request; a version that cannot load leaves the old one serving and is reported."""
import threading
import time
from collections import defaultdict
from typing import Self

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from builders.ltr import register_tiny_ranker
from builders.serving import (
    FailingCtrPyfunc,
    mlflow_registry,
    register_failing_ctr_model,
    register_tiny_ctr_model,
    start_service,
    write_tiny_candidate_store,
)
from mlflow.tracking import MlflowClient
from prometheus_text import parse_samples

POLL_SECONDS = 0.5
SWITCH_DEADLINE = 30.0  # seconds: a few poll periods plus loading the new version on a busy 2-core box
REQUEST = {"user_id": "U3", "history": ["N1", "N2", "N7"], "candidates": ["N3", "N4", "N5", "N8", "N_unknown"],
           "time": "2019-11-12T08:55:22Z"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """ctr_model v1 (champion), v2 (another seed) and v3 (fails to load); ranker v1 (champion)."""
    root = tmp_path_factory.mktemp("registry")
    with mlflow_registry(root) as uri:
        versions = {"v1": register_tiny_ctr_model(root, seed=0),
                    "v2": register_tiny_ctr_model(root, alias=None, seed=1),
                    "broken": register_failing_ctr_model()}
        ranker_version = register_tiny_ranker(root, seed=0)
        ranker = mlflow.pyfunc.load_model(f"models:/ranker/{ranker_version}").unwrap_python_model()
        offline = {}
        for key in ("v1", "v2"):
            model = mlflow.pyfunc.load_model(f"models:/ctr_model/{versions[key]}")
            rows = pd.DataFrame([{"impression_id": 1, "user_id": REQUEST["user_id"], "time": REQUEST["time"],
                                  "news_id": c, "history": " ".join(REQUEST["history"])}
                                 for c in REQUEST["candidates"]])
            offline[key] = np.asarray(model.predict(rows), dtype=np.float64)
    store = root / "candidates.sqlite"
    write_tiny_candidate_store(store, sorted(ranker.triggers), [f"N{i}" for i in range(100)])
    return {"root": root, "uri": uri, "store": store, "versions": versions, "offline": offline,
            "triggers": sorted(ranker.triggers)}


class Hammer:
    """Client threads sending /v1/rank and /v1/related in a loop, recording every outcome."""

    def __init__(self, url: str, triggers: list[str], threads: int = 4) -> None:
        self.url, self.triggers = url, triggers
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: list[tuple[int, str, float, int | str, str | None]] = []  # thread, endpoint, t, status, version
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, index: int) -> None:
        rng = np.random.default_rng(index)
        with requests.Session() as session:
            while not self.stop.is_set():
                endpoint = "rank" if index % 2 == 0 else "related"
                try:
                    if endpoint == "rank":
                        response = session.post(f"{self.url}/v1/rank", json=REQUEST, timeout=10)
                    else:
                        trigger = self.triggers[int(rng.integers(len(self.triggers)))]
                        response = session.get(f"{self.url}/v1/related/{trigger}", timeout=10)
                    status: int | str = response.status_code
                    version = response.json()["model"]["version"] if status == 200 else None
                except Exception as err:  # noqa: BLE001 - recorded and asserted on
                    status, version = f"{type(err).__name__}: {err}", None
                with self.lock:
                    self.outcomes.append((index, endpoint, time.monotonic(), status, version))

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def rank_versions_since(self, t: float) -> set[str]:
        with self.lock:
            return {v for _, e, at, s, v in self.outcomes if e == "rank" and at >= t and s == 200}


def _wait_for(condition, deadline: float, what: str, step: float = 0.1):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what} did not happen within {deadline:.0f} s")


def test_alias_moves_switch_the_service_without_failed_requests(registry):
    versions = registry["versions"]
    client = MlflowClient(tracking_uri=registry["uri"], registry_uri=registry["uri"])
    with start_service(registry["uri"], registry["store"], registry["root"] / "serve", POLL_SECONDS) as service, \
            requests.Session() as http:
        def health() -> dict:
            return http.get(f"{service.url}/healthz", timeout=10).json()

        assert health()["models"]["ctr_model"]["version"] == versions["v1"]
        with Hammer(service.url, registry["triggers"]) as hammer:
            time.sleep(1.0)
            client.set_registered_model_alias("ctr_model", "champion", versions["v2"])
            moved = time.monotonic()
            _wait_for(lambda: versions["v2"] in hammer.rank_versions_since(moved), SWITCH_DEADLINE,
                      "answering with ctr_model v2")
            switched = time.monotonic()
            time.sleep(1.0)
            assert hammer.rank_versions_since(switched) == {versions["v2"]}  # never back to v1

            answer = http.post(f"{service.url}/v1/rank", json=REQUEST, timeout=10).json()
            np.testing.assert_allclose(answer["scores"], registry["offline"]["v2"], rtol=0, atol=1e-6)
            assert np.abs(registry["offline"]["v1"] - registry["offline"]["v2"]).max() > 1e-4  # it really changed

            client.set_registered_model_alias("ctr_model", "champion", versions["broken"])
            broken = time.monotonic()
            status = _wait_for(lambda: (h := health())["models"]["ctr_model"]["error"] and h, SWITCH_DEADLINE,
                               "reporting the broken version")
            time.sleep(1.5)
            assert hammer.rank_versions_since(broken) == {versions["v2"]}  # the old version kept serving

        assert status["status"] == "degraded"
        assert status["models"]["ctr_model"]["version"] == versions["v2"]
        assert FailingCtrPyfunc.MESSAGE in status["models"]["ctr_model"]["error"]
        assert status["last_reload_error"]["version"] == versions["broken"]

        failures = [o for o in hammer.outcomes if o[3] != 200]
        assert not failures, failures[:10]
        per_endpoint = defaultdict(int)
        for _, endpoint, _, _, _ in hammer.outcomes:
            per_endpoint[endpoint] += 1
        assert per_endpoint["rank"] > 20 and per_endpoint["related"] > 20, per_endpoint  # it was under load

        reloads = {(lab["model"], lab["result"]): value
                   for name, lab, value in parse_samples(http.get(f"{service.url}/metrics", timeout=10).text)
                   if name == "newsforge_model_reloads_total"}
        assert reloads[("ctr_model", "success")] == 1 and reloads[("ctr_model", "failure")] >= 1

        client.set_registered_model_alias("ctr_model", "champion", versions["v2"])  # back to the loaded version
        recovered = _wait_for(lambda: (h := health())["status"] == "ok" and h, SWITCH_DEADLINE, "recovering")
        assert recovered["models"]["ctr_model"]["error"] is None
        assert recovered["last_reload_error"]["version"] == versions["broken"]  # the history stays
