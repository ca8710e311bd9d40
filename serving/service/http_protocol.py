"""uvicorn's httptools protocol with each response sent in one piece.

uvicorn writes a response's status line and headers, then its body, as two ``transport.write`` calls: two
``send(2)`` calls and two TCP segments, which the client reads with two wake-ups. ``CoalescingHttpToolsProtocol``
hands uvicorn a transport that joins the writes of one event-loop iteration into one, written at the end of
that iteration; the bytes on the wire are the same.
"""
from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescedWrites:
    """A transport proxy: ``write``s wait for the end of the loop iteration and go out as one ``write``;
    everything else (flow control, ``close``, ``get_extra_info``) is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        """Write what is pending now (no-op once the connection is closing)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` writing through ``CoalescedWrites`` (``uvicorn.run(..., http=...)``)."""

    # ignore: uvicorn's own override narrows asyncio's BaseTransport to Transport (and ignores it there too)
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # cast: CoalescedWrites is a Transport by duck typing (a proxy forwarding all else via __getattr__);
        # subclassing asyncio.Transport would shadow that forwarding with its NotImplementedError methods
        super().connection_made(cast(asyncio.Transport, CoalescedWrites(transport, self.loop)))
