"""1,000 seeded malformed requests against a real ``newsforge serve``: never a 5xx, and the right 4xx (with the
field named) for each class of mistake."""
import json
import math
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote

import mlflow
import numpy as np
import pytest
import requests
from builders.ltr import register_tiny_ranker
from builders.serving import (
    mlflow_registry,
    register_tiny_ctr_model,
    start_service,
    write_tiny_candidate_store,
)
from prometheus_text import parse_samples

from serving.service.limits import (
    MAX_BODY_BYTES,
    MAX_CANDIDATES,
    MAX_ID_LENGTH,
    MAX_RELATED_K,
)

N_CASES = 1000
VALID = {"user_id": "U1", "history": ["N1", "N2"], "candidates": ["N3", "N4", "N5"], "time": "2019-11-14T08:55:22Z"}
FIELDS = ("user_id", "history", "candidates", "time")


@dataclass
class Case:
    kind: str
    method: str
    path: str
    body: bytes | None = None
    expect: int = 422
    field: str | None = None     # the field the 422 must name (prefix match: candidates[3] names candidates)
    chunked: bool = False


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    with mlflow_registry(root) as uri:
        register_tiny_ctr_model(root, seed=0)
        version = register_tiny_ranker(root, seed=0)
        triggers = sorted(mlflow.pyfunc.load_model(f"models:/ranker/{version}").unwrap_python_model().triggers)
    store = root / "candidates.sqlite"
    write_tiny_candidate_store(store, triggers, [f"N{i}" for i in range(100)])
    with start_service(uri, store, root / "serve") as running:
        running.triggers = triggers
        yield running


def _body(payload) -> bytes:
    return json.dumps(payload, allow_nan=True).encode()


def _weird_text(rng: np.random.Generator, n: int) -> str:
    """Printable text from several scripts (no whitespace, no surrogates)."""
    ranges = [(0x21, 0x7E), (0xA1, 0x24F), (0x391, 0x3C9), (0x410, 0x44F), (0x4E00, 0x4FFF), (0x1F600, 0x1F64F)]
    out = []
    for _ in range(n):
        lo, hi = ranges[int(rng.integers(len(ranges)))]
        out.append(chr(int(rng.integers(lo, hi + 1))))
    return "".join(out)


def _with(field: str, value) -> dict:
    return {**VALID, field: value}


def _make_case(kind: str, rng: np.random.Generator, triggers: list[str]) -> Case:
    def pick(options):
        return options[int(rng.integers(len(options)))]

    def rank(body, **kw) -> Case:
        return Case(kind, "POST", "/v1/rank", body, **kw)

    trigger = pick(triggers)
    if kind == "bad_json":
        text = _body(VALID)
        body = pick([text[: int(rng.integers(1, len(text) - 1))], bytes(rng.integers(0, 256, 40, dtype=np.uint8)),
                     b"\xff\xfe{}", b'{"user_id": NaN}', b"{'user_id': 'U1'}", text[:-1] + b",}", b"", b"   ",
                     b'{"user_id": "U1",,}', b"nul", b'{"a":' * 50])
        return rank(body, field="body")
    if kind == "not_object":
        return rank(_body(pick([[], [VALID], 3, "U1", None, True, 1.5])), field="body")
    if kind == "wrong_type":
        field = pick(FIELDS)
        value = pick({"user_id": [1, 1.5, True, [], {}, ["U1"]],
                      "history": ["N1 N2", 3, {}, [1], [True], [["N1"]], [{"id": "N1"}]],
                      "candidates": ["N1", 3, {}, [1], [False], [["N1"]], [1.5]],
                      "time": [1573721722, True, [], {}, 1.5]}[field])
        return rank(_body(_with(field, value)), field=field)
    if kind == "null":
        field = pick(["user_id", "history", "candidates", "history[]", "candidates[]"])
        payload = _with(field.rstrip("[]"), [None] if field.endswith("[]") else None)
        return rank(_body(payload), field=field.rstrip("[]"))
    if kind == "missing":
        field = pick(["user_id", "candidates"])
        return rank(_body({k: v for k, v in VALID.items() if k != field}), field=field)
    if kind == "unknown_field":
        name = pick(["candidate", "userId", "hist", _weird_text(rng, 6)])
        return rank(_body({**VALID, name: 1}), field=name)
    if kind == "bad_id":
        field = pick(["user_id", "history", "candidates"])
        bad = pick(["", "N 1", "N\t1", "\u2003N1", "N" * (MAX_ID_LENGTH + 1)])
        return rank(_body(_with(field, bad if field == "user_id" else [bad])), field=field)
    if kind == "empty_candidates":
        return rank(_body(_with("candidates", [])), field="candidates")
    if kind == "duplicates":
        ids = [f"N{i}" for i in range(int(rng.integers(2, 50)))]
        ids.insert(int(rng.integers(1, len(ids) + 1)), pick(ids))
        return rank(_body(_with("candidates", ids)), field="candidates")
    if kind == "bad_time":
        value = pick(["2019-13-01T00:00:00Z", "yesterday", "", "2019-11-14T25:00:00Z", "9999-01-01T00:00:00Z",
                      "1900-01-01", "14/11/2019 08:55", "2019-11-14T08:55:22+25:00", _weird_text(rng, 8)])
        return rank(_body(_with("time", value)), field="time")
    if kind == "too_many":
        n = int(rng.integers(MAX_CANDIDATES + 1, 2 * MAX_CANDIDATES))
        return rank(_body(_with("candidates", [f"N{i}" for i in range(n)])), expect=413)
    if kind == "huge_body":
        n = MAX_BODY_BYTES // 8 + int(rng.integers(1, 50_000))
        return Case(kind, "POST", "/v1/rank", _body(_with("history", ["N123456"] * n)), expect=413,
                    chunked=bool(rng.random() < 0.5))
    if kind == "bad_k":
        k = pick(["0", "-1", "abc", "1.5", str(MAX_RELATED_K + 1), "", "1e3", "\u0663", "99999999999999", "0x5"])
        return Case(kind, "GET", f"/v1/related/{trigger}?k={quote(k)}", field="k")
    if kind == "bad_lambda":
        lam = pick(["-0.1", "1.1", "nan", "inf", "-inf", "x", "", "1e9", "0,5"])
        return Case(kind, "GET", f"/v1/related/{trigger}?lambda={quote(lam)}", field="lambda")
    if kind == "unknown_trigger":
        news_id = pick([_weird_text(rng, int(rng.integers(1, 30))).replace("/", "_"), "N" + "9" * 40, "%00", "...x",
                        trigger + "x", trigger.lower() + "\u0301"])
        return Case(kind, "GET", f"/v1/related/{quote(news_id, safe='')}", expect=404, field="news_id")
    if kind == "weird_path":
        path = pick(["/v1/rankx", "/v1/rank/", "/v1/related/", "/v1/related", "/%00", f"/v1/related/{trigger}/x",
                     "/" + quote(_weird_text(rng, 12)), "/v1//rank", "/V1/RANK", "/healthz/x"])
        return Case(kind, "GET" if "related" in path else "POST", path, _body(VALID), expect=404)
    if kind == "wrong_method":
        method, path = pick([("GET", "/v1/rank"), ("POST", f"/v1/related/{trigger}"), ("DELETE", "/healthz"),
                             ("PUT", "/v1/rank")])
        return Case(kind, method, path, _body(VALID), expect=405)
    if kind == "valid_weird_ids":  # not malformed: unknown ids from any script are scored, never dropped
        ids = list(dict.fromkeys(_weird_text(rng, int(rng.integers(1, 12))) for _ in range(int(rng.integers(1, 20)))))
        history = [_weird_text(rng, 5) for _ in range(int(rng.integers(0, 5)))]
        return rank(_body({"user_id": _weird_text(rng, 4), "history": history, "candidates": ids}), expect=200)
    raise ValueError(kind)


KINDS = {  # kind: relative weight
    "bad_json": 10, "not_object": 4, "wrong_type": 12, "null": 6, "missing": 5, "unknown_field": 4, "bad_id": 6,
    "empty_candidates": 3, "duplicates": 5, "bad_time": 8, "too_many": 3, "huge_body": 1, "bad_k": 6,
    "bad_lambda": 6, "unknown_trigger": 6, "weird_path": 5, "wrong_method": 3, "valid_weird_ids": 7,
}


def _cases(triggers: list[str]) -> list[Case]:
    rng = np.random.default_rng(20191114)
    kinds, weights = list(KINDS), np.array(list(KINDS.values()), dtype=float)
    drawn = rng.choice(len(kinds), size=N_CASES, p=weights / weights.sum())
    return [_make_case(kinds[i], rng, triggers) for i in drawn]


def _send(session: requests.Session, url: str, case: Case) -> requests.Response:
    body = case.body
    if case.chunked and body is not None:
        data = body
        body = (data[i:i + 65536] for i in range(0, len(data), 65536))  # no Content-Length: chunked encoding
    headers = {"content-type": "application/json"} if case.body is not None else {}
    return session.request(case.method, url + case.path, data=body, headers=headers, timeout=30)


def test_malformed_requests_get_the_right_4xx_and_never_a_5xx(service):
    cases = _cases(service.triggers)
    assert set(Counter(c.kind for c in cases)) == set(KINDS), "every class is drawn"
    wrong = []
    with requests.Session() as session:
        for i, case in enumerate(cases):
            response = _send(session, service.url, case)
            problem = None
            if response.status_code >= 500 or response.status_code != case.expect:
                problem = f"status {response.status_code}, expected {case.expect}"
            elif case.field is not None:
                answer = response.json()
                if not str(answer.get("field", "")).startswith(case.field) or not answer["detail"].startswith(
                        answer["field"] + ":"):
                    problem = f"names {answer.get('field')!r}, expected {case.field!r}: {answer}"
            if problem:
                shown = (case.body or b"")[:120]
                wrong.append(f"#{i} {case.kind} {case.method} {case.path[:80]} {shown!r}: {problem}")
        health = session.get(f"{service.url}/healthz", timeout=10)
        metrics = session.get(f"{service.url}/metrics", timeout=10).text
    assert not wrong, f"{len(wrong)} of {len(cases)} cases answered wrongly:\n" + "\n".join(wrong[:30])
    assert health.status_code == 200
    statuses = Counter()
    for name, labels, value in parse_samples(metrics):
        if name == "newsforge_requests_total":
            statuses[int(labels["status"])] += int(value)
    assert not [s for s in statuses if s >= 500], statuses
    assert sum(statuses.values()) >= N_CASES  # every case reached the service and was counted
    assert all(math.isfinite(v) for _, _, v in parse_samples(metrics))
