"""The FastAPI app: ``POST /v1/rank``, ``GET /v1/related/{news_id}``, ``GET /healthz``, ``GET /metrics``.

Client errors answer ``{"detail": "<field>: <message>", "field": "<field>"}`` (``schemas.RequestError``); the
two scoring routes are answered by ``scoring_routes.ScoringRoutes`` in front of FastAPI (which keeps them as
plain Starlette routes for the other methods), so there is no OpenAPI document.

The work runs on the event loop: the ``/v1/rank`` requests of one loop iteration share a model forward
(``rank_batching``), and ``/v1/related`` answers from the ranker's precomputed rows. Responses are encoded once
with orjson; nothing pandas happens per request.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from serving.service.champions import CTR_MODEL, RANKER, Champions
from serving.service.limits import (
    MAX_BODY_BYTES,
    ASGIApp,
    BodySizeLimit,
    BodyTooLarge,
    too_large_message,
)
from serving.service.prometheus import CONTENT_TYPE, RequestMetrics, ServiceMetrics
from serving.service.rank_batching import RankBatcher
from serving.service.schemas import (
    RequestError,
    parse_rank_request,
    parse_related_query,
)
from serving.service.scoring_routes import (
    RANK_PATH,
    RELATED_ROUTE,
    ErrorHandler,
    ScoringRoutes,
    related_news_id,
)
from serving.service.store_status import StoreStatus

#: Attributes a ranker may expose naming the candidate-store version its candidates were snapshotted from.
SNAPSHOT_ATTRIBUTES = ("candidate_version", "store_version", "snapshot_version")
_JSON = "application/json"
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before its request was read

log = logging.getLogger("newsforge.serve")


def endpoint_of(path: str) -> str:
    """The metrics label of a request path: the route template, or ``other`` (bounded cardinality)."""
    if path in (RANK_PATH, "/healthz", "/metrics"):
        return path
    if related_news_id(path) is not None:
        return RELATED_ROUTE
    return "other"


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status, media_type=_JSON)


async def _request_error(request: Request, err: RequestError) -> Response:
    return _json(err.payload(), err.status)


async def _body_too_large(request: Request, err: BodyTooLarge) -> Response:
    return Response(too_large_message(err.limit), status_code=413, media_type=_JSON)


async def _client_gone(request: Request, err: ClientDisconnect) -> Response:
    return Response(status_code=CLIENT_CLOSED_REQUEST)  # nobody reads it; counted apart from server errors


async def _server_error(request: Request, err: Exception) -> Response:
    log.error("newsforge serve: %s %s failed", request.method, request.url.path, exc_info=err)
    return _json({"detail": f"internal error ({type(err).__name__})", "field": "server"}, 500)


#: The client-error answers (FastAPI's exception handlers, also used by ``ScoringRoutes``); any other
#: exception gets ``_server_error``'s 500.
ERROR_HANDLERS: dict[type[Exception], ErrorHandler] = {RequestError: _request_error, BodyTooLarge: _body_too_large,
                                                       ClientDisconnect: _client_gone}


def _unavailable(name: str) -> Response:
    return _json({"detail": f"model: no {name} champion is loaded", "field": "model"}, 503)


def ranker_snapshot_version(ranker: Any) -> str | None:
    """The candidate-store version a ranker's candidates come from, when it says so."""
    for attribute in SNAPSHOT_ATTRIBUTES:
        value = getattr(ranker, attribute, None)
        if value:
            return str(value)
    return None


def create_app(champions: Champions, store: StoreStatus, metrics: ServiceMetrics | None = None) -> ASGIApp:
    """The service as an ASGI app (``ScoringRoutes`` and FastAPI behind it, inside the body-size guard and the
    request metrics). The lifespan starts and stops ``champions``' polling thread and closes ``store``."""
    metrics = metrics or champions.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        champions.start_polling()
        try:
            yield
        finally:
            champions.stop_polling()
            store.close()

    # FastAPI's table also takes status codes as keys (a wider key type than ERROR_HANDLERS')
    handlers: dict[int | type[Exception], ErrorHandler] = {cls: handler for cls, handler in ERROR_HANDLERS.items()}
    handlers[Exception] = _server_error
    app = FastAPI(title="newsforge", summary="News ranking and related news from the registry's champions.",
                  redirect_slashes=False, lifespan=lifespan, openapi_url=None, exception_handlers=handlers)

    def rank_response(candidates: list[str], scores: Any, unknown: list[str], version: str) -> Response:
        scores = np.asarray(scores, dtype=np.float32)
        order = np.argsort(-scores, kind="stable").tolist()
        return _json({"scores": scores.tolist(), "ranking": [candidates[i] for i in order], "unknown": list(unknown),
                      "model": {"name": CTR_MODEL, "version": version}})

    def related_items(news_id: str, k_text: str | None, lam_text: str | None) -> Response:
        k, lam = parse_related_query(k_text, lam_text)
        loaded = champions.get(RANKER)
        if loaded is None:
            return _unavailable(RANKER)
        ranker = loaded.served
        try:
            items = ranker.related(news_id, k=k, lam=lam)
        except KeyError:
            shown = news_id if len(news_id) <= 60 else news_id[:57] + "..."
            return _json({"detail": f"news_id: no related news for unknown trigger {shown!r}", "field": "news_id"},
                         404)
        except ValueError as err:
            raise RequestError(422, "lambda" if lam is not None else "k", str(err)) from None
        used = float(ranker.default_lambda if lam is None else lam)
        return _json({"items": items, "model": {"name": RANKER, "version": loaded.version, "lambda": used}})

    batcher = RankBatcher(metrics)

    async def answer_rank(body: bytes) -> Response:
        request = parse_rank_request(body)
        loaded = champions.get(CTR_MODEL)
        if loaded is None:
            return _unavailable(CTR_MODEL)
        scores, unknown = await batcher.score(loaded.served, request)
        return rank_response(request.candidates, scores, unknown, loaded.version)

    # The scoring endpoints: called by ScoringRoutes for POST /v1/rank and GET /v1/related/{news_id}, and by
    # these plain Starlette routes (no FastAPI dependency machinery) for the other methods (HEAD). Their
    # contracts are ``schemas.RankRequest``, ``RankResponse``, ``RelatedResponse`` and ``ErrorResponse``.
    async def rank(request: Request) -> Response:
        return await answer_rank(await request.body())

    async def related(request: Request) -> Response:
        query = request.query_params
        return related_items(request.path_params["news_id"], query.get("k"), query.get("lambda"))

    app.add_route(RANK_PATH, rank, methods=["POST"])
    app.add_route(RELATED_ROUTE, related, methods=["GET"])

    @app.get("/healthz")
    async def healthz() -> Response:
        """Loaded versions, the candidate store's version, reload errors and warnings."""
        return _json(health(champions, store))

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(champions.versions(), store.version()), media_type=CONTENT_TYPE)

    scoring = ScoringRoutes(app, rank, related, ERROR_HANDLERS, _server_error)
    return RequestMetrics(BodySizeLimit(scoring, MAX_BODY_BYTES), metrics, endpoint_of)


def health(champions: Champions, store: StoreStatus) -> dict[str, Any]:
    """The ``/healthz`` document; ``status`` is ``degraded`` while a reload error or a warning stands."""
    status = champions.status()
    store_version = store.version()
    warnings = [store.error] if store.error else []
    ranker = champions.get(RANKER)
    snapshot = ranker_snapshot_version(ranker.python_model) if ranker else None
    if snapshot and store_version and snapshot != store_version:
        warnings.append(f"the ranker's candidates are a snapshot of store version {snapshot}; "
                        f"the store's current version is {store_version}")
    errors = any(m["error"] for m in status["models"].values())
    return {"status": "degraded" if warnings or errors else "ok", **status,
            "store": {"path": str(store.path), "version": store_version, "ranker_snapshot": snapshot},
            "warnings": warnings}

