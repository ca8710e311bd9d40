"""``POST /v1/rank`` and ``GET /v1/related/{news_id}`` answered by a bare ASGI layer in front of FastAPI.

Through FastAPI a request passes its error, exception, exit-stack, telemetry and body-limit middleware and
the router before its endpoint runs: about a sixth of ``/v1/related``'s CPU. ``ScoringRoutes`` calls the
endpoints of those two method/path pairs itself, with Starlette's error handling: an exception with a handler
in ``error_handlers`` gets that handler's answer, any other one ``server_error``'s answer and is then
re-raised. Every other request (other methods on those paths included) goes to FastAPI, whose routes call the
same endpoints with the same handlers.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from serving.service.limits import ASGIApp, Receive, Scope, Send

RANK_PATH = "/v1/rank"
RELATED_PREFIX = "/v1/related/"
RELATED_ROUTE = RELATED_PREFIX + "{news_id}"

Endpoint = Callable[[Request], Awaitable[Response]]
#: Starlette's handler type: a handler gets instances of the exception class it is registered for (so ``Any``).
ErrorHandler = Callable[[Request, Any], Coroutine[Any, Any, Response]]


def related_news_id(path: str) -> str | None:
    """The ``news_id`` of a ``/v1/related/{news_id}`` path (Starlette's ``[^/]+``), else None."""
    news_id = path[len(RELATED_PREFIX):]
    return news_id if path.startswith(RELATED_PREFIX) and news_id and "/" not in news_id else None


class ScoringRoutes:
    """ASGI: ``rank`` for ``POST /v1/rank``, ``related`` for ``GET /v1/related/{news_id}`` (its
    ``path_params`` set as Starlette's router sets them), ``app`` for everything else."""

    def __init__(self, app: ASGIApp, rank: Endpoint, related: Endpoint,
                 error_handlers: Mapping[type[Exception], ErrorHandler], server_error: ErrorHandler) -> None:
        self.app = app
        self.rank = rank
        self.related = related
        self.error_handlers = error_handlers
        self.server_error = server_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            if method == "POST" and path == RANK_PATH:
                await self._answer(self.rank, scope, receive, send)
                return
            if method == "GET" and (news_id := related_news_id(path)) is not None:
                scope["path_params"] = {"news_id": news_id}
                await self._answer(self.related, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as err:
            for cls in type(err).__mro__:  # Starlette's handler lookup
                if cls in self.error_handlers:
                    response = await self.error_handlers[cls](request, err)
                    break
            else:
                await (await self.server_error(request, err))(scope, receive, send)
                raise
        await response(scope, receive, send)
