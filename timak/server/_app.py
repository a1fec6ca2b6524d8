"""The ASGI app: routes, auth, limits, access log and metrics around
``Service`` (what each route does) and ``Hub`` (subscriptions).

Every handler parses its request (``_codec``), checks the token's scope
(``_auth``), runs one ``Service`` call in a worker thread (timak's calls
block), and answers JSON; any ``TimakError`` becomes a problem response in
``_errors``, the one place that maps them. Bad input is refused before the
call, or by timak before it writes: a 4xx never follows a write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ..activity import Activity
from ..backends import Backend, connect
from ..errors import InvalidInputError, TimakError, ValueTooLargeError
from ._auth import Scope as TokenScope
from ._codec import (
    cursor_param,
    dumps,
    int_param,
    parse_body,
    score_param,
    take,
)
from ._config import ServerConfig
from ._errors import problem, problem_for
from ._metrics import Metrics
from ._openapi import openapi_document
from ._service import Service
from ._streams import sse_routes, websocket_session
from ._subscriptions import Hub

__all__ = ["create_app"]

access_log = logging.getLogger("timak.server.access")
log = logging.getLogger("timak.server")

Handler = Callable[[Request], Awaitable[Any]]


class _App:
    """One service's state: config, store, service, hub, metrics."""

    def __init__(self, config: ServerConfig, backend: Backend | None) -> None:
        self.config = config
        self.backend = backend if backend is not None else connect(config.url)
        self.service = Service(self.backend, max_followers=config.max_followers)
        self.metrics = Metrics(self.service.timelines)
        self.hub = Hub(self.service.timeline, config.poll_interval, self.metrics)

    # -- request plumbing ------------------------------------------------------

    def token_scope(self, request: Request | WebSocket, query_token: bool) -> TokenScope | None:
        header = request.headers.get("authorization", "")
        token: str | None = None
        if header[:7].lower() == "bearer ":
            token = header[7:].strip()
        elif query_token:
            token = request.query_params.get("access_token")
        return self.config.tokens.scope_of(token)

    def denied(self, request: Request | WebSocket, needs: TokenScope,
               query_token: bool = False) -> Response | None:
        """A 401/403 problem if the request's token does not allow ``needs``."""
        scope = self.token_scope(request, query_token)
        if scope is None:
            return problem(401, "a valid bearer token is required", "AccessDeniedError",
                           {"WWW-Authenticate": 'Bearer realm="timak"'})
        if needs == "write" and scope != "write":
            return problem(403, "this token may only read", "AccessDeniedError")
        return None

    def json_route(self, path: str, needs: TokenScope, handler: Handler,
                   method: str = "GET") -> Route:
        async def endpoint(request: Request) -> Response:
            refused = self.denied(request, needs)
            if refused is not None:
                return refused
            try:
                result = await handler(request)
            except TimakError as exc:
                return self.failure(exc)
            return Response(dumps(result), media_type="application/json")

        return Route(path, endpoint, methods=[method])

    def failure(self, exc: TimakError) -> Response:
        self.metrics.errors.labels(type(exc).__name__).inc()
        return problem_for(exc)

    async def body(self, request: Request, spec: dict[str, tuple[str, bool]]) -> dict[str, Any]:
        """The request's JSON object, checked against ``spec``; a body over
        ``max_body_bytes`` raises ``ValueTooLargeError`` (413)."""
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ValueTooLargeError(f"the body is {declared} bytes; the limit is {limit}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ValueTooLargeError(f"the body is over the limit of {limit} bytes")
            chunks.append(chunk)
        return take(parse_body(b"".join(chunks)), spec)

    def page_limit(self, request: Request, default: int) -> int:
        return int_param(request.query_params, "limit", default, low=None,
                         high=self.config.max_page)


def _flag(request: Request, name: str) -> bool:
    text = request.query_params.get(name, "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise InvalidInputError(f"query parameter {name} must be true or false, got {text!r:.20}")
    return text in ("true", "1")


def _bucket(request: Request) -> str:
    return request.query_params.get("bucket", "timelines")


def _max_items(request: Request) -> int | None:
    if "max_items" not in request.query_params:
        return None
    return int_param(request.query_params, "max_items", 1000)


# -- route tables ------------------------------------------------------------


def _timeline_routes(app: _App) -> list[Route]:
    svc = app.service

    async def page(request: Request) -> Any:
        key, limit = request.path_params["key"], app.page_limit(request, 50)
        cursor, raw = cursor_param(request.query_params), _flag(request, "raw")
        return await run_in_threadpool(svc.page, _bucket(request), key, limit, cursor, raw)

    async def get(request: Request) -> Any:
        key, raw = request.path_params["key"], _flag(request, "raw")
        skip = _flag(request, "skip_corrupt")
        return await run_in_threadpool(svc.get, _bucket(request), key, raw, skip)

    async def range_(request: Request) -> Any:
        q = request.query_params
        start, stop = score_param(q.get("start")), score_param(q.get("stop"))
        return await run_in_threadpool(
            svc.range, _bucket(request), request.path_params["key"], start, stop,
            _flag(request, "raw"),
        )

    async def count(request: Request) -> Any:
        return await run_in_threadpool(svc.count, _bucket(request), request.path_params["key"])

    async def changes(request: Request) -> Any:
        since = cursor_param(request.query_params, "since")
        return await run_in_threadpool(
            svc.changes, _bucket(request), request.path_params["key"], since
        )

    item = {"id": ("id", True), "score": ("score", True), "data": ("any", False)}

    async def add(request: Request) -> Any:
        body = await app.body(request, item)
        return await run_in_threadpool(
            svc.add, _bucket(request), _max_items(request), request.path_params["key"], body,
            _flag(request, "raw"),
        )

    async def delete(request: Request) -> Any:
        body = await app.body(request, {"id": ("id", True), "score": ("score", False)})
        return await run_in_threadpool(
            svc.delete, _bucket(request), _max_items(request), request.path_params["key"], body,
            _flag(request, "raw"),
        )

    async def fanout(request: Request) -> Any:
        body = await app.body(request, {**item, "keys": ("list", True), "deleted": ("bool", False)})
        if len(body["keys"]) > app.config.max_fanout_keys:
            raise InvalidInputError(
                f"{len(body['keys'])} keys; one request fans out to at most "
                f"{app.config.max_fanout_keys}"
            )
        return await run_in_threadpool(svc.fanout, _bucket(request), _max_items(request), body)

    t = "/timeline"
    return [
        app.json_route(t + "/page/{key:path}", "read", page),
        app.json_route(t + "/get/{key:path}", "read", get),
        app.json_route(t + "/range/{key:path}", "read", range_),
        app.json_route(t + "/count/{key:path}", "read", count),
        app.json_route(t + "/changes/{key:path}", "read", changes),
        app.json_route(t + "/add/{key:path}", "write", add, "POST"),
        app.json_route(t + "/delete/{key:path}", "write", delete, "POST"),
        app.json_route(t + "/fanout", "write", fanout, "POST"),
    ]


_ACTIVITY = {
    "actor": ("ref", True), "verb": ("str", True), "object": ("ref", False),
    "target": ("ref", False), "time": ("score", False), "extra": ("object", False),
    "id": ("str", False),
}


def _activity(body: dict[str, Any]) -> Activity:
    fields = take(body, _ACTIVITY)
    return Activity(**fields)


def _pairs(value: list[Any]) -> list[tuple[str, Any]]:
    pairs = []
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
                and isinstance(pair[1], str | int) and not isinstance(pair[1], bool)):
            raise InvalidInputError(f"each 'to' entry is [group, owner], got {pair!r:.80}")
        pairs.append((pair[0], pair[1]))
    return pairs


def _names(value: list[Any] | None, what: str) -> list[str] | None:
    if value is not None and not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"{what} must be a list of strings")
    return value


def _feed_routes(app: _App) -> list[Route]:
    svc = app.service

    def posting(remove: bool) -> Handler:
        async def handler(request: Request) -> Any:
            body = await app.body(request, {
                "activity": ("object", True), "to": ("list", False), "fanout_to": ("list", False),
            })
            activity = _activity(body["activity"])
            to = _pairs(body.get("to", []))
            fanout_to = _names(body.get("fanout_to"), "fanout_to")
            return await run_in_threadpool(svc.add_activity, activity, to, fanout_to, remove)
        return handler

    async def follow(request: Request) -> Any:
        body = await app.body(request, {
            "follower": ("ref", True), "target": ("ref", True),
            "copy_limit": ("int", False), "feeds": ("list", False),
        })
        return await run_in_threadpool(
            svc.follow, body["follower"], body["target"], body.get("copy_limit", 300),
            _names(body.get("feeds"), "feeds"),
        )

    async def unfollow(request: Request) -> Any:
        body = await app.body(request, {
            "follower": ("ref", True), "target": ("ref", True),
            "keep_history": ("bool", False), "feeds": ("list", False),
        })
        return await run_in_threadpool(
            svc.unfollow, body["follower"], body["target"], body.get("keep_history", False),
            _names(body.get("feeds"), "feeds"),
        )

    async def followers(request: Request) -> Any:
        return await run_in_threadpool(svc.followers, request.path_params["actor"])

    async def read(request: Request) -> Any:
        p = request.path_params
        return await run_in_threadpool(
            svc.read, p["feed"], p["owner"], app.page_limit(request, 25),
            cursor_param(request.query_params),
        )

    async def aggregated(request: Request) -> Any:
        p = request.path_params
        group_limit = int_param(request.query_params, "group_limit", 10,
                                high=app.config.max_page)
        return await run_in_threadpool(
            svc.aggregated, p["feed"], p["owner"], app.page_limit(request, 10),
            cursor_param(request.query_params), group_limit,
        )

    async def count(request: Request) -> Any:
        p = request.path_params
        return await run_in_threadpool(svc.feed_count, p["feed"], p["owner"])

    def feed_of(request: Request) -> str:
        return request.query_params.get("feed", "notification")

    async def notifications(request: Request) -> Any:
        return await run_in_threadpool(
            svc.notifications, request.path_params["reader"], app.page_limit(request, 10),
            cursor_param(request.query_params), feed_of(request),
        )

    async def counts(request: Request) -> Any:
        return await run_in_threadpool(svc.counts, request.path_params["reader"], feed_of(request))

    async def seen(request: Request) -> Any:
        return await run_in_threadpool(svc.mark_seen, request.path_params["reader"],
                                       feed_of(request))

    async def mark_read(request: Request) -> Any:
        body = await app.body(request, {"groups": ("list", False)})
        groups = _names(body.get("groups"), "groups")
        return await run_in_threadpool(
            svc.mark_read, request.path_params["reader"], groups, feed_of(request)
        )

    n = "/notifications"
    return [
        app.json_route("/feeds/activities", "write", posting(False), "POST"),
        app.json_route("/feeds/activities/remove", "write", posting(True), "POST"),
        app.json_route("/feeds/follow", "write", follow, "POST"),
        app.json_route("/feeds/unfollow", "write", unfollow, "POST"),
        app.json_route("/feeds/followers/{actor:path}", "read", followers),
        app.json_route("/feeds/{feed}/read/{owner:path}", "read", read),
        app.json_route("/feeds/{feed}/aggregated/{owner:path}", "read", aggregated),
        app.json_route("/feeds/{feed}/count/{owner:path}", "read", count),
        app.json_route(n + "/page/{reader:path}", "read", notifications),
        app.json_route(n + "/counts/{reader:path}", "read", counts),
        app.json_route(n + "/seen/{reader:path}", "write", seen, "POST"),
        app.json_route(n + "/read/{reader:path}", "write", mark_read, "POST"),
    ]


# -- health, metrics, documents ------------------------------------------------


def _plain_routes(app: _App) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await run_in_threadpool(app.service.ready)
        except TimakError as exc:
            return app.failure(exc)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return Response(app.metrics.render(), media_type="text/plain; version=0.0.4")

    document = openapi_document(list(app.service.feeds.groups))

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    demo_page = (Path(__file__).parent / "demo.html").read_text()

    async def demo(request: Request) -> Response:
        return HTMLResponse(demo_page)

    return [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/openapi.json", openapi),
        Route("/demo", demo),
    ]


class _Observed:
    """Access log and latency histogram around the whole app (pure ASGI, so
    streams pass through). Logs the path without its query string: a
    browser's ``access_token`` never reaches a log."""

    def __init__(self, inner: ASGIApp, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.inner(scope, receive, send)
            return
        started = time.perf_counter()
        status = 101 if scope["type"] == "websocket" else 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.inner(scope, receive, observe)
        finally:
            took = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "(unmatched)")
            method = scope.get("method", "WS")
            if scope["type"] == "http":
                self.metrics.requests.labels(method, route, str(status)).observe(took)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(json.dumps({
                    "method": method, "path": scope.get("path", ""), "route": route,
                    "status": status, "ms": round(took * 1000, 2),
                }))


def create_app(config: ServerConfig, *, backend: Backend | None = None) -> ASGIApp:
    """The service as an ASGI app. ``backend`` (default: ``connect(config.url)``)
    is closed on shutdown only if the app opened it."""
    app = _App(config, backend)
    owned = backend is None

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            app.hub.close()
            if owned:
                app.backend.close()

    async def websocket(ws: WebSocket) -> None:
        await websocket_session(app, ws)

    routes = [
        *_timeline_routes(app), *_feed_routes(app), *sse_routes(app), *_plain_routes(app),
        WebSocketRoute("/ws", websocket),
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan)
    starlette.state.timak = app

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        return problem(status, getattr(exc, "detail", "") or "no such route")

    starlette.add_exception_handler(404, not_found)
    starlette.add_exception_handler(405, not_found)
    return _Observed(starlette, app.metrics)


def shutdown(asgi: ASGIApp) -> None:
    """End the subscriptions of an app made by ``create_app`` (before a
    server waits for its connections to close)."""
    inner = getattr(asgi, "inner", None)
    state = getattr(inner, "state", None)
    found = getattr(state, "timak", None)
    if isinstance(found, _App):
        found.hub.close()
