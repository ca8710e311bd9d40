"""``newsforge serve`` against a real server on a loopback port: every answer equals the offline scoring of
the same registered model (``CtrPyfunc.predict``, ``newsforge predict``, ``RankerPyfunc.predict``)."""
import math
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from builders.ltr import register_tiny_ranker
from builders.serving import (
    REPO_ROOT,
    mlflow_registry,
    register_tiny_ctr_model,
    serve_command,
    service_env,
    start_service,
    write_tiny_candidate_store,
)
from mlflow.tracking import MlflowClient
from prometheus_text import histogram_buckets, histogram_quantile, parse_samples

from serving.service.app import health
from serving.service.prometheus import ServiceMetrics
from serving.service.schemas import ErrorResponse, RankResponse, RelatedResponse
from serving.service.store_status import StoreStatus
from training.data.schema import MIND_TIME_FORMAT, NEWS_TSV_COLUMNS
from training.metrics.submission import read_prediction_file

TIME = "2019-11-12T08:55:22Z"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """ctr_model v1 and ranker v1 (both champions), a candidate store, and the two models loaded here."""
    root = tmp_path_factory.mktemp("registry")
    with mlflow_registry(root) as uri:
        ctr_version = register_tiny_ctr_model(root, seed=0)
        ranker_version = register_tiny_ranker(root, seed=0)
        ctr = mlflow.pyfunc.load_model(f"models:/ctr_model/{ctr_version}")
        ranker = mlflow.pyfunc.load_model(f"models:/ranker/{ranker_version}").unwrap_python_model()
    store = root / "candidates.sqlite"
    store_version = write_tiny_candidate_store(store, sorted(ranker.triggers),
                                               ctr.unwrap_python_model().news["news_id"].tolist())
    return {"root": root, "uri": uri, "store": store, "store_version": store_version, "ctr": ctr,
            "ctr_version": ctr_version, "ranker": ranker, "ranker_version": ranker_version}


@pytest.fixture(scope="module")
def service(registry):
    with start_service(registry["uri"], registry["store"], registry["root"] / "serve") as running:
        yield running


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


def _catalogue(registry) -> pd.DataFrame:
    return registry["ctr"].unwrap_python_model().news


def _requests(registry, time: str = TIME) -> list[dict]:
    """Impressions at ``time`` covering a known user, a cold user with no history, a history longer than the
    model keeps, 100 candidates, and candidates and history items missing from the catalogue."""
    rng = np.random.default_rng(7)
    known = _catalogue(registry)["news_id"].tolist()

    def pick(n: int) -> list[str]:
        return [str(x) for x in rng.choice(known, size=n, replace=False)]

    return [
        {"user_id": "U3", "history": pick(5) + ["N_never_seen"], "candidates": pick(10) + ["N_unknown_1"],
         "time": time},
        {"user_id": "U_cold_user", "history": [], "candidates": ["N_unknown_2"] + pick(6) + ["N_unknown_3"],
         "time": time},
        {"user_id": "U10", "history": pick(70), "candidates": pick(99) + ["N_unknown_4"], "time": time},
    ]


def _offline_rows(request: dict) -> pd.DataFrame:
    """The ``CtrPyfunc`` input rows of one request (one impression: news unseen in training count as first
    seen at its time, which a batch of impressions at other times would change)."""
    return pd.DataFrame([{"impression_id": 1, "user_id": request["user_id"], "time": request.get("time"),
                          "news_id": c, "history": " ".join(request["history"])} for c in request["candidates"]])


def _rank(http, service, request: dict) -> dict:
    response = http.post(f"{service.url}/v1/rank", json=request, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _write_mind_folder(folder, requests_: list[dict], catalogue: pd.DataFrame) -> None:
    """news.tsv (the catalogue rows of every id used) and behaviors.tsv (one unlabelled impression per request)."""
    folder.mkdir()
    used = {n for r in requests_ for n in r["history"] + r["candidates"]}
    news = catalogue[catalogue["news_id"].isin(used)].loc[:, list(NEWS_TSV_COLUMNS)]
    news.to_csv(folder / "news.tsv", sep="\t", header=False, index=False)
    with open(folder / "behaviors.tsv", "w") as f:
        for i, r in enumerate(requests_, start=1):
            when = pd.Timestamp(r["time"]).strftime(MIND_TIME_FORMAT)
            f.write(f"{i}\t{r['user_id']}\t{when}\t{' '.join(r['history'])}\t{' '.join(r['candidates'])}\n")


@pytest.mark.parametrize("time", [TIME, "2019-11-13T23:05:00+00:00", "2019-11-14T03:10:00+05:00", None])
def test_rank_equals_ctr_pyfunc_predict(registry, service, http, time):
    catalogue = set(_catalogue(registry)["news_id"])
    for case in _requests(registry, time):
        if time is None:
            del case["time"]  # an absent time is scored like a missing one offline
        answer = _rank(http, service, case)
        RankResponse.model_validate(answer)
        offline = np.asarray(registry["ctr"].predict(_offline_rows(case)), dtype=np.float64)
        assert answer["model"] == {"name": "ctr_model", "version": registry["ctr_version"]}
        np.testing.assert_allclose(answer["scores"], offline, rtol=0, atol=1e-6)
        assert answer["unknown"] == [c for c in case["candidates"] if c not in catalogue]
        assert answer["unknown"], "every case holds an id missing from the catalogue"
        scores = dict(zip(case["candidates"], answer["scores"]))
        assert sorted(answer["ranking"]) == sorted(case["candidates"])
        assert all(scores[a] >= scores[b] for a, b in zip(answer["ranking"], answer["ranking"][1:]))


def test_concurrent_ranks_share_forwards_and_keep_their_own_scores(registry, service):
    """Requests arriving together are scored in one model forward; each still gets exactly its own scores."""
    cases = [case for t in (TIME, "2019-11-13T23:05:00Z") for case in _requests(registry, t)] * 3
    barrier = threading.Barrier(len(cases))

    def send(case):
        with requests.Session() as session:
            session.get(f"{service.url}/healthz", timeout=10)  # connected before the barrier: the posts overlap
            barrier.wait(timeout=30)
            return _rank(session, service, case)

    def forwards() -> dict[str, float]:
        text = requests.get(f"{service.url}/metrics", timeout=10).text
        return {name: value for name, _, value in parse_samples(text) if name.startswith("newsforge_rank_forward")}

    before = forwards()
    with ThreadPoolExecutor(len(cases)) as pool:
        answers = list(pool.map(send, cases))
    after = forwards()
    scored = after["newsforge_rank_forward_requests_total"] - before["newsforge_rank_forward_requests_total"]
    assert scored == len(cases)
    assert after["newsforge_rank_forwards_total"] - before["newsforge_rank_forwards_total"] < scored  # shared
    for case, answer in zip(cases, answers):
        RankResponse.model_validate(answer)
        offline = np.asarray(registry["ctr"].predict(_offline_rows(case)), dtype=np.float64)
        np.testing.assert_allclose(answer["scores"], offline, rtol=0, atol=1e-6)


def test_rank_ranking_equals_newsforge_predict(registry, service, http, tmp_path):
    """The impressions share one time: ``newsforge predict`` scores a folder as one batch, where a news
    unseen in training counts as first seen at its earliest time in the folder (one impression per folder
    would only cost more runs)."""
    cases = _requests(registry)
    answers = [_rank(http, service, case) for case in cases]
    _write_mind_folder(tmp_path / "mind", cases, _catalogue(registry))
    out = tmp_path / "prediction.txt"
    proc = subprocess.run([sys.executable, "-m", "newsforge.cli", "predict", "--model", "ctr_model@champion",
                           "--data", str(tmp_path / "mind"), "--out", str(out), "--tracking-uri", registry["uri"]],
                          cwd=REPO_ROOT, env=service_env(tmp_path), capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    predicted_ranks = read_prediction_file(out)
    assert sorted(predicted_ranks) == list(range(1, len(cases) + 1))
    for i, (case, answer) in enumerate(zip(cases, answers), start=1):
        assert answer["ranking"] == [case["candidates"][j] for j in np.argsort(predicted_ranks[i], kind="stable")]


@pytest.mark.parametrize("lam", [None, 0.0, 0.35, 1.0])
def test_related_equals_ranker_predict(registry, service, http, lam):
    ranker = registry["ranker"]
    for trigger in sorted(ranker.triggers)[:5]:
        rows = ranker.candidate_rows(trigger)
        params = None if lam is None else {"lambda": lam}
        offline = ranker.predict(None, rows, params=params)
        by_id = dict(zip(rows["news_id"], offline["score"]))
        stage2 = dict(zip(rows["news_id"], offline["stage2"]))
        quality = dict(zip(rows["news_id"], rows["student_quality"]))
        k = 7
        query = {"k": k} if lam is None else {"k": k, "lambda": lam}
        response = http.get(f"{service.url}/v1/related/{trigger}", params=query, timeout=10)
        assert response.status_code == 200, response.text
        answer = response.json()
        RelatedResponse.model_validate(answer)
        assert answer["model"] == {"name": "ranker", "version": registry["ranker_version"],
                                   "lambda": ranker.default_lambda if lam is None else lam}
        items = answer["items"]
        expected = [rows["news_id"].iloc[j] for j in np.argsort(-offline["score"].to_numpy(), kind="stable")[:k]]
        assert [item["news_id"] for item in items] == expected
        for item in items:
            assert item["score"] == pytest.approx(by_id[item["news_id"]], abs=1e-6)
            assert item["click"] == pytest.approx(stage2[item["news_id"]], abs=1e-6)
            assert item["quality"] == pytest.approx(quality[item["news_id"]], abs=1e-6)


def test_related_errors(registry, service, http):
    trigger = min(registry["ranker"].triggers)
    unknown = http.get(f"{service.url}/v1/related/N_not_a_trigger", timeout=10)
    ErrorResponse.model_validate(unknown.json())
    assert unknown.status_code == 404 and unknown.json()["field"] == "news_id"
    assert "N_not_a_trigger" in unknown.json()["detail"]
    for query, field in [({"k": 0}, "k"), ({"k": "two"}, "k"), ({"lambda": 1.5}, "lambda"),
                         ({"lambda": "nan"}, "lambda")]:
        response = http.get(f"{service.url}/v1/related/{trigger}", params=query, timeout=10)
        assert response.status_code == 422 and response.json()["field"] == field, (query, response.text)
    everything = http.get(f"{service.url}/v1/related/{trigger}", params={"k": 100}, timeout=10).json()["items"]
    assert len(everything) == len(registry["ranker"].candidate_rows(trigger))


def test_other_methods_on_the_scoring_paths_reach_fastapi(registry, service, http):
    """GET /v1/related and POST /v1/rank skip FastAPI's stack; HEAD, wrong methods and near-miss paths still
    get FastAPI's answers."""
    url = f"{service.url}/v1/related/{min(registry['ranker'].triggers)}"
    get, head = http.get(url, params={"k": 3}, timeout=10), http.head(url, params={"k": 3}, timeout=10)
    assert get.status_code == head.status_code == 200 and head.content == b""
    assert {k: head.headers[k] for k in ("content-type", "content-length")} == \
        {k: get.headers[k] for k in ("content-type", "content-length")}
    for method, path in [("GET", "/v1/rank"), ("POST", "/v1/related/N1")]:
        response = http.request(method, f"{service.url}{path}", timeout=10)
        assert response.status_code == 405 and "allow" in response.headers, (method, path)
    assert http.get(f"{url}/", timeout=10).status_code == 404


def _counts(text: str) -> dict:
    return {(lab["endpoint"], lab["status"]): value for name, lab, value in parse_samples(text)
            if name == "newsforge_requests_total"}


def test_healthz_and_metrics(registry, service, http):
    health = http.get(f"{service.url}/healthz", timeout=10).json()
    assert health["status"] == "ok", health
    assert health["models"]["ctr_model"]["version"] == registry["ctr_version"]
    assert health["models"]["ranker"]["version"] == registry["ranker_version"]
    assert health["store"]["version"] == registry["store_version"]
    assert health["last_reload_error"] is None and health["warnings"] == []

    before = http.get(f"{service.url}/metrics", timeout=10)
    assert before.headers["content-type"].startswith("text/plain")
    trigger = sorted(registry["ranker"].triggers)[1]
    case = _requests(registry)[1]
    for _ in range(3):
        assert http.post(f"{service.url}/v1/rank", json=case, timeout=10).status_code == 200
    for _ in range(2):
        assert http.get(f"{service.url}/v1/related/{trigger}", timeout=10).status_code == 200
    assert http.get(f"{service.url}/v1/related/N_nope", timeout=10).status_code == 404
    after = http.get(f"{service.url}/metrics", timeout=10).text

    old, new = _counts(before.text), _counts(after)
    delta = {key: new[key] - old.get(key, 0) for key in new}
    assert delta[("/v1/rank", "200")] == 3
    assert delta[("/v1/related/{news_id}", "200")] == 2
    assert delta[("/v1/related/{news_id}", "404")] == 1
    samples = parse_samples(after)
    counts = {lab["endpoint"]: value for name, lab, value in samples
              if name == "newsforge_request_duration_seconds_count"}
    assert counts["/v1/rank"] == sum(v for (e, _), v in new.items() if e == "/v1/rank")
    inf = [value for name, lab, value in samples
           if name == "newsforge_request_duration_seconds_bucket" and lab == {"endpoint": "/v1/rank", "le": "+Inf"}]
    assert inf == [counts["/v1/rank"]]
    models = {lab["model"]: lab["version"] for name, lab, value in samples if name == "newsforge_model_info"}
    assert models == {"ctr_model": registry["ctr_version"], "ranker": registry["ranker_version"]}
    stores = [lab["version"] for name, lab, value in samples if name == "newsforge_candidate_store_info"]
    assert stores == [registry["store_version"]]


def test_refuses_to_start_without_ranker_champion(registry, tmp_path):
    shutil.copy(registry["root"] / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).delete_registered_model_alias("ranker", "champion")
    proc = subprocess.run(serve_command(uri, registry["store"], port=9, poll_seconds=1), cwd=REPO_ROOT,
                          env=service_env(tmp_path), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("newsforge serve: ranker has no alias 'champion'"), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_healthz_warns_when_the_rankers_snapshot_is_not_the_stores_version(registry):
    """The ranker's candidates come from one store version; another current version is a warning, not an error."""
    ranker = SimpleNamespace(python_model=SimpleNamespace(candidate_version="older-run"))
    champions = SimpleNamespace(get=lambda name: ranker if name == "ranker" else None,
                                status=lambda: {"models": {"ranker": {"error": None}}, "last_reload_error": None})
    store = StoreStatus(registry["store"])
    try:
        report = health(champions, store)
    finally:
        store.close()
    assert report["status"] == "degraded"
    assert report["store"] == {"path": str(registry["store"]), "version": registry["store_version"],
                               "ranker_snapshot": "older-run"}
    assert report["warnings"] == [("the ranker's candidates are a snapshot of store version older-run; "
                                   f"the store's current version is {registry['store_version']}")]
    missing = StoreStatus(registry["root"] / "no-such-store.sqlite")
    assert missing.version() is None and "no candidate store" in missing.error


def test_histogram_quantile_interpolates_inside_the_bucket():
    metrics = ServiceMetrics()
    for seconds in [0.0012] * 50 + [0.004] * 40 + [0.03] * 10:
        metrics.observe_request("/v1/rank", 200, seconds)
    samples = parse_samples(metrics.render({"ctr_model": "3"}, None))
    buckets = histogram_buckets(samples, "newsforge_request_duration_seconds", endpoint="/v1/rank")
    assert buckets[-1] == (math.inf, 100)
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.0015)  # the 50th of 50 in (0.001, 0.0015]
    assert 0.003 < histogram_quantile(0.9, buckets) <= 0.004
    assert 0.025 < histogram_quantile(0.99, buckets) <= 0.03
    assert ("newsforge_model_version", {"model": "ctr_model"}, 3.0) in samples
