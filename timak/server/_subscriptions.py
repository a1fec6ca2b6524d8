"""Subscriptions: one shared poller per subscribed key, however many watch it.

A ``KeyPoller`` polls ``Timeline.changes`` for one ``(bucket, key)`` every
``interval`` seconds and hands each batch to every subscriber's queue; it
starts with the first subscriber and stops with the last (a refcount). So a
key costs the store one poll per interval, and since the poll reads the
store, a write made through any process on the same store reaches every
subscriber of every process: several ``timak serve`` behave as one service.

A batch carries the poller's cursor after it. SSE sends that cursor as the
``id:`` of a batch's last event, so a client that reconnects with
``Last-Event-ID`` resumes from it (on any process: cursors are plain
strings). Delivery is at least once, as ``Timeline.changes`` is; a client
removes repeats by ``(key, id, score, deleted)``.

A subscriber whose queue fills up (``QUEUE_SIZE`` batches: a client that
stopped reading) is dropped with a ``("overflow",)`` message; its
reconnection resumes from its last id, so nothing is lost. ``Hub.close``
ends every subscription with ``("closed",)`` on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from ..errors import TimakError
from ..timelines import Change, Timeline
from ._codec import change_json
from ._metrics import Metrics

__all__ = ["QUEUE_SIZE", "Batch", "Hub", "Message", "Subscriber"]

log = logging.getLogger("timak.server")

#: Batches a subscriber may have waiting before it is dropped.
QUEUE_SIZE = 256
#: ("changes", bucket, key, Batch) | ("error", bucket, key, detail)
#: | ("overflow",) | ("closed",)
Message = tuple[Any, ...]


@dataclass(eq=False)
class Batch:
    """What one poll found, shared by every subscriber of the key: each
    change is encoded to JSON once, however many streams send it."""

    bucket: str
    key: str
    changes: list[Change]
    cursor: str

    @functools.cached_property
    def encoded(self) -> list[str]:
        """Each change as compact JSON (the SSE ``data:`` of its event)."""
        return [json.dumps(change_json(c), separators=(",", ":"), allow_nan=False)
                for c in self.changes]

    @functools.cached_property
    def message(self) -> str:
        """The batch as one WebSocket ``changes`` message."""
        return (f'{{"type":"changes","bucket":{json.dumps(self.bucket)},'
                f'"key":{json.dumps(self.key)},"cursor":{json.dumps(self.cursor)},'
                f'"changes":[{",".join(self.encoded)}]}}')


@dataclass(eq=False)
class Subscriber:
    """One consumer's queue: an SSE stream, or a whole WebSocket connection
    (it may hold many keys)."""

    queue: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False

    def put(self, message: Message) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True
            # Make room for the one message that says why it ends.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(("overflow",))


class KeyPoller:
    """Polls one key for all of its subscribers."""

    def __init__(self, timeline: Timeline, key: str, interval: float, metrics: Metrics) -> None:
        self.timeline = timeline
        self.key = key
        self.interval = interval
        self.metrics = metrics
        self.subscribers: set[Subscriber] = set()
        self.cursor: str | None = None
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read where the key stands (its cursor), then poll in the background."""
        first = await run_in_threadpool(self.timeline.changes, self.key)
        self.cursor = first.cursor
        self.ready.set()
        self.task = asyncio.create_task(self._run(), name=f"timak-poll-{self.key}")

    async def _run(self) -> None:
        bucket = self.timeline.bucket
        while True:
            await asyncio.sleep(self.interval)
            try:
                batch = await run_in_threadpool(self.timeline.changes, self.key, self.cursor)
            except Exception as exc:  # the poller outlives any one failed poll
                # A store error, or a corrupt sibling on the key: subscribers
                # hear of it, and the next poll tries again from the cursor.
                if not isinstance(exc, TimakError):
                    log.exception("polling %r failed", self.key)
                self.metrics.errors.labels(type(exc).__name__).inc()
                detail = str(exc) if isinstance(exc, TimakError) else type(exc).__name__
                for sub in list(self.subscribers):
                    sub.put(("error", bucket, self.key, detail))
                continue
            self.metrics.polls.inc()
            self.cursor = batch.cursor
            if batch.changes:
                for sub in list(self.subscribers):
                    shared = Batch(bucket, self.key, batch.changes, batch.cursor)
                    sub.put(("changes", bucket, self.key, shared))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


class Hub:
    """Every poller of one app, by ``(bucket, key)``."""

    def __init__(self, timeline: Callable[[str], Timeline], interval: float,
                 metrics: Metrics) -> None:
        self._timeline = timeline
        self.interval = interval
        self.metrics = metrics
        self._pollers: dict[tuple[str, str], KeyPoller] = {}
        self._starting: dict[tuple[str, str], asyncio.Lock] = {}
        self.closing = asyncio.Event()

    async def subscribe(self, sub: Subscriber, bucket: str, key: str) -> str:
        """Add ``sub`` to the poller of ``key`` (starting it if need be);
        return the poller's cursor (where the subscription starts)."""
        where = (bucket, key)
        lock = self._starting.setdefault(where, asyncio.Lock())
        async with lock:
            poller = self._pollers.get(where)
            if poller is None:
                poller = KeyPoller(self._timeline(bucket), key, self.interval, self.metrics)
                await poller.start()
                self._pollers[where] = poller
                self.metrics.subscribed_keys.set(len(self._pollers))
            poller.subscribers.add(sub)
        assert poller.cursor is not None
        return poller.cursor

    def unsubscribe(self, sub: Subscriber, bucket: str, key: str) -> None:
        """Remove ``sub`` from ``key``; the last one out stops the poller."""
        where = (bucket, key)
        poller = self._pollers.get(where)
        if poller is None:  # its start failed (a bad key, the store down)
            lock = self._starting.get(where)
            if lock is not None and not lock.locked():
                del self._starting[where]
            return
        poller.subscribers.discard(sub)
        if not poller.subscribers:
            poller.stop()
            del self._pollers[where]
            self._starting.pop(where, None)
            self.metrics.subscribed_keys.set(len(self._pollers))

    async def catch_up(self, bucket: str, key: str, since: str) -> tuple[list[Change], str]:
        """What arrived on ``key`` after cursor ``since`` (a resuming client).
        Raises ``InvalidCursorError`` for a cursor timak did not make."""
        batch = await run_in_threadpool(self._timeline(bucket).changes, key, since)
        return batch.changes, batch.cursor

    def close(self) -> None:
        """End every subscription (graceful shutdown)."""
        self.closing.set()
        for poller in list(self._pollers.values()):
            poller.stop()
            for sub in list(poller.subscribers):
                sub.put(("closed",))
        self._pollers.clear()
        self.metrics.subscribed_keys.set(0)
