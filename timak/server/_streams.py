"""Subscriptions on the wire: Server-Sent Events routes and the WebSocket
session, over the pollers of ``_subscriptions``.

An SSE stream sends ``retry``, a ``ready`` event (its ``id`` is where the
stream starts: the resume point of a resuming client, else the poller's
cursor), the catch-up of a resuming client, then each change the key's
poller finds (the last change of each batch carries the batch's cursor as
its ``id``), a comment as heartbeat while idle, and ``bye`` when it ends
(shutdown, or a client too slow to keep up).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import InvalidInputError, TimakError
from ..timelines import Change
from ._codec import change_json, take
from ._errors import problem
from ._subscriptions import Batch, Subscriber

if TYPE_CHECKING:
    from ._app import _App

__all__ = ["sse_routes", "websocket_session"]


def _sse(event: str, data: Any, event_id: str | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'), allow_nan=False)}")
    return "\n".join(lines) + "\n\n"


def _identity(change: Change) -> tuple[Any, ...]:
    return (change.key, change.id, change.score, change.deleted, change.arrived)


def sse_routes(app: _App) -> list[Route]:
    async def stream(request: Request, bucket: str, key: str) -> Response:
        refused = app.denied(request, "read", query_token=True)
        if refused is not None:
            return refused
        if app.hub.closing.is_set():
            return problem(503, "the service is shutting down", "UnavailableError",
                           {"Retry-After": "1"})
        since = request.headers.get("last-event-id") or request.query_params.get("since")
        sub = Subscriber()
        try:
            cursor = await app.hub.subscribe(sub, bucket, key)
            caught: list[Change] = []
            if since:
                caught, cursor = await app.hub.catch_up(bucket, key, since)
        except TimakError as exc:
            app.hub.unsubscribe(sub, bucket, key)
            return app.failure(exc)
        # A resuming client's "ready" says where it resumed from: were it
        # cut off before the catch-up's last change, it resumes there again.
        return StreamingResponse(
            _events(app, sub, bucket, key, caught, since or cursor, cursor),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def timeline_events(request: Request) -> Response:
        bucket = request.query_params.get("bucket", "timelines")
        return await stream(request, bucket, request.path_params["key"])

    async def feed_events(request: Request) -> Response:
        try:
            bucket = app.service.feed_timeline(request.path_params["feed"]).bucket
        except TimakError as exc:
            return app.failure(exc)
        return await stream(request, bucket, request.path_params["owner"])

    return [
        Route("/timeline/events/{key:path}", timeline_events),
        Route("/feeds/{feed}/events/{owner:path}", feed_events),
    ]


async def _events(app: _App, sub: Subscriber, bucket: str, key: str,
                  caught: list[Change], ready_id: str, cursor: str) -> AsyncIterator[str]:
    """One SSE stream: the catch-up of a resuming client, then what the key's
    poller finds; heartbeats while idle; ends on shutdown or overflow."""
    app.metrics.subscriptions.labels("sse").inc()
    try:
        yield "retry: 1000\n\n"
        yield _sse("ready", {"key": key, "bucket": bucket}, ready_id)
        sent = {_identity(c) for c in caught}
        for n, change in enumerate(caught, 1):
            yield _sse("change", change_json(change), cursor if n == len(caught) else None)
        while True:
            try:
                message = await _next(sub, app.config.heartbeat)
            except asyncio.TimeoutError:  # not TimeoutError before Python 3.11
                yield ": heartbeat\n\n"
                continue
            kind = message[0]
            if kind == "changes":
                batch: Batch = message[3]
                # Batches polled while the catch-up read may repeat it.
                fresh = [n for n, c in enumerate(batch.changes) if _identity(c) not in sent]
                for n in fresh:
                    last = f"id: {batch.cursor}\n" if n == fresh[-1] else ""
                    yield f"event: change\n{last}data: {batch.encoded[n]}\n\n"
            elif kind == "error":
                yield _sse("store-error", {"detail": message[3]})
            else:  # closed, overflow
                yield _sse("bye", {"reason": kind})
                return
    finally:
        app.hub.unsubscribe(sub, bucket, key)
        app.metrics.subscriptions.labels("sse").dec()


async def _next(sub: Subscriber, timeout: float) -> Any:
    return await asyncio.wait_for(sub.queue.get(), timeout)


async def websocket_session(app: _App, websocket: WebSocket) -> None:
    """``/ws``: subscribe and unsubscribe to many keys over one connection.

    Client messages: ``{"op": "subscribe", "key": K, "bucket": B?, "feed":
    F?, "since": CURSOR?}`` and ``{"op": "unsubscribe", "key": K, "bucket":
    B?, "feed": F?}`` (``feed`` names a feed group: the key is then its
    owner). Server messages: ``subscribed`` (with the cursor it starts
    from), ``changes`` (key, bucket, changes, cursor), ``unsubscribed``,
    ``error`` (a bad message; the connection stays) and ``store-error``.
    """
    refused = app.denied(websocket, "read", query_token=True)
    if refused is not None:
        await websocket.close(code=1008, reason="a valid bearer token is required")
        return
    await websocket.accept()
    sub = Subscriber()
    watching: set[tuple[str, str]] = set()

    async def pump() -> None:
        while True:
            message = await sub.queue.get()
            if message[0] == "changes":
                await websocket.send_text(message[3].message)
            elif message[0] == "error":
                await websocket.send_json({"type": "store-error", "bucket": message[1],
                                           "key": message[2], "detail": message[3]})
            else:
                await websocket.close(code=1001, reason=message[0])
                return

    async def handle(message: Any) -> dict[str, Any]:
        if not isinstance(message, dict) or message.get("op") not in ("subscribe",
                                                                       "unsubscribe"):
            raise InvalidInputError("a message is {'op': 'subscribe'|'unsubscribe', 'key': ...}")
        spec = {"op": ("str", True), "key": ("str", True), "bucket": ("str", False),
                "feed": ("str", False), "since": ("str", False)}
        body = take(message, spec)
        key = body["key"]
        if "feed" in body:
            bucket = app.service.feed_timeline(body["feed"]).bucket
        else:
            bucket = body.get("bucket", "timelines")
        if body["op"] == "unsubscribe":
            if (bucket, key) in watching:
                watching.discard((bucket, key))
                app.hub.unsubscribe(sub, bucket, key)
                app.metrics.subscriptions.labels("websocket").dec()
            return {"type": "unsubscribed", "bucket": bucket, "key": key}
        if (bucket, key) not in watching and len(watching) >= app.config.max_subscriptions:
            raise InvalidInputError(
                f"one connection watches at most {app.config.max_subscriptions} keys"
            )
        cursor = await app.hub.subscribe(sub, bucket, key)
        if (bucket, key) not in watching:
            watching.add((bucket, key))
            app.metrics.subscriptions.labels("websocket").inc()
        reply: dict[str, Any] = {"type": "subscribed", "bucket": bucket, "key": key,
                                 "cursor": cursor}
        if "since" in body:
            changes, cursor = await app.hub.catch_up(bucket, key, body["since"])
            reply["changes"], reply["cursor"] = [change_json(c) for c in changes], cursor
        return reply

    pumping = asyncio.create_task(pump())
    try:
        while True:
            try:
                message = json.loads(await websocket.receive_text())
                reply = await handle(message)
            except (ValueError, TimakError) as exc:
                error = type(exc).__name__ if isinstance(exc, TimakError) else "InvalidInputError"
                reply = {"type": "error", "error": error, "detail": str(exc)[:300]}
            await websocket.send_text(json.dumps(reply, allow_nan=False))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        pumping.cancel()
        for bucket, key in watching:
            app.hub.unsubscribe(sub, bucket, key)
            app.metrics.subscriptions.labels("websocket").dec()
