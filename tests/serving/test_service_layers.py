"""The service's ASGI and transport layers on their own: ``ScoringRoutes`` (the two scoring routes in front
of FastAPI) and ``CoalescedWrites`` (each response in one write)."""
import asyncio

import orjson
import pytest
from starlette.responses import Response

from serving.service.http_protocol import CoalescedWrites
from serving.service.schemas import RequestError
from serving.service.scoring_routes import ScoringRoutes, related_news_id


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_coalesced_writes_leave_as_one_write_at_the_end_of_the_iteration():
    async def scenario():
        transport = _Transport()
        writes = CoalescedWrites(transport, asyncio.get_running_loop())
        writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
        writes.write(b"body")
        assert transport.writes == []  # not yet: the loop iteration goes on
        await asyncio.sleep(0)
        assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        writes.write(b"last")
        writes.close()  # flushes first
        assert transport.writes[-1] == b"last" and transport.closing
        writes.write(b"too late")
        await asyncio.sleep(0)
        assert transport.writes[-1] == b"last"  # dropped once the connection is closing
        assert writes.get_extra_info("peername") == "info:peername"

    asyncio.run(scenario())


def test_related_news_id_matches_the_route_template():
    assert related_news_id("/v1/related/N1") == "N1"
    assert related_news_id("/v1/related/N 1%") == "N 1%"
    for path in ("/v1/related/", "/v1/related/N1/", "/v1/related/a/b", "/v1/related", "/v1/rank"):
        assert related_news_id(path) is None, path


async def _call(app, method: str, path: str, body: bytes = b"", query: bytes = b"", root_path: str = "",
                sent: list | None = None):
    scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": [],
             "root_path": root_path}
    sent = [] if sent is None else sent

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return scope, sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def _routes(seen: list):
    async def fallback(scope, receive, send):
        seen.append(("fastapi", scope["method"], scope["path"]))
        await Response(b"fallback", status_code=405)(scope, receive, send)

    async def rank(request):
        body = await request.body()
        if body == b"bad":
            raise RequestError(422, "body", "bad body")
        if body == b"boom":
            raise RuntimeError("boom")
        return Response(b"ranked:" + body)

    async def related(request):
        query = request.query_params
        return Response(orjson.dumps([request.path_params["news_id"], query.get("k"), query.get("lambda")]))

    async def request_error(request, err):
        return Response(orjson.dumps(err.payload()), status_code=err.status)

    async def server_error(request, err):
        seen.append(("500", type(err).__name__))
        return Response(b"internal", status_code=500)

    return ScoringRoutes(fallback, rank, related, {RequestError: request_error}, server_error)


def test_scoring_routes_answer_their_two_routes_and_pass_everything_else_on():
    seen: list = []
    app = _routes(seen)

    async def scenario():
        assert (await _call(app, "POST", "/v1/rank", b"x"))[1:] == (200, b"ranked:x")
        scope, status, body = await _call(app, "GET", "/v1/related/N7", query=b"k=3&lambda=0.5&k=4")
        assert status == 200 and orjson.loads(body) == ["N7", "4", "0.5"]  # Starlette's last-value-wins
        assert scope["path_params"] == {"news_id": "N7"}
        assert seen == []
        for method, path, root in [("GET", "/v1/rank", ""), ("HEAD", "/v1/related/N7", ""),
                                   ("POST", "/v1/related/N7", ""), ("GET", "/v1/related/N7/", ""),
                                   ("POST", "/v1/rank", "/prefix")]:
            assert (await _call(app, method, path, root_path=root))[1:] == (405, b"fallback")
            assert seen.pop() == ("fastapi", method, path)

    asyncio.run(scenario())


def test_scoring_routes_answer_errors_as_the_fastapi_handlers_do():
    seen: list = []
    app = _routes(seen)

    async def scenario():
        _, status, body = await _call(app, "POST", "/v1/rank", b"bad")
        assert status == 422 and orjson.loads(body) == {"detail": "body: bad body", "field": "body"}
        sent: list = []
        with pytest.raises(RuntimeError, match="boom"):  # answered with the 500, then re-raised (as Starlette)
            await _call(app, "POST", "/v1/rank", b"boom", sent=sent)
        assert seen == [("500", "RuntimeError")]
        assert sent[0]["status"] == 500 and sent[1]["body"] == b"internal"

    asyncio.run(scenario())
