"""Request size limits and the ASGI middleware that answers 413 for bodies over ``MAX_BODY_BYTES``."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

MAX_BODY_BYTES = 1 << 20      # 1 MiB per request body
MAX_CANDIDATES = 1000         # candidates per /v1/rank request (more: 413)
MAX_RELATED_K = 100           # largest k of /v1/related (more: 422)
MAX_ID_LENGTH = 128           # characters of a user or news id
#: An oversized body is read and dropped up to this many bytes before the 413 is sent, so a client still
#: writing its body reads the answer instead of a reset connection; past it the connection is closed.
DRAIN_BYTES = 16 * MAX_BODY_BYTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """A chunked request body grew past the limit while the app read it (the app answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


def too_large_message(limit: int) -> bytes:
    return b'{"detail":"body: request body over %d bytes","field":"body"}' % limit


async def _drain(receive: Receive, budget: int) -> None:
    """Read and drop the rest of a request body, at most ``budget`` bytes."""
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodySizeLimit:
    """ASGI middleware: 413 without reading when ``Content-Length`` exceeds ``max_bytes``; a body without
    a length (chunked) is counted as the app reads it and the read raises ``BodyTooLarge`` past the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:  # the HTTP parser normally rejects these first
                    length = None
                break
        if length is not None:
            if length > self.max_bytes:
                await _drain(receive, DRAIN_BYTES)
                await send({"type": "http.response.start", "status": 413,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": too_large_message(self.max_bytes)})
                return
            await self.app(scope, receive, send)
            return
        seen = 0
        limit = self.max_bytes

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_BYTES)
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted_receive, send)
