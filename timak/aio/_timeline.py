"""``timak.aio.Timeline``: ``timak.timelines.Timeline`` for asyncio."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

from .. import timelines
from .._changes import WatchState
from .._results import Change, Changes, CompactStats, KeyFeed, Page, TimelineStats, now_us
from .._scores import ScoreLike
from ..backends import Backend
from ..errors import ConfigError
from ..value import ItemId, Record
from ._feed import Feed
from ._threads import Threaded, Threads, bridged

__all__ = ["Timeline"]


class Timeline(Threaded):
    """``timak.timelines.Timeline`` with coroutines: the same constructor,
    method names, arguments, return values and errors, and the same
    semantics (each method's contract is the sync one's docstring).

    Every method that reaches the store is ``async def``; ``item_limit`` is
    arithmetic and stays plain, and ``watch`` returns an async iterator.
    One more option, ``threads`` (default 8), bounds the worker threads
    that run this Timeline's calls (see *How it runs*). ``feed`` is a
    ``timak.feed.Feed`` or a ``timak.aio.Feed``.

    How it runs: each call runs the sync ``Timeline`` (and so
    ``timak._engine``, the one owner of checks, merge, read repair and
    folds) in a worker thread, so the event loop never waits on a store.
    The store's own I/O is what it is in the sync API: SQLite in the worker
    thread (one connection per thread), the memory store in the worker
    thread, Cassandra in cassandra-driver's event loop thread (the worker
    waits on its future), Riak through urllib3's connection pool. Not
    natively async yet: the engine calls the backend contract synchronously,
    and an async path would need a second copy of its rules (or an engine
    that leaves the I/O to its caller).

    Cancelling a call that is still queued means it never runs; cancelling
    one that has started does not stop its thread, so its write may land
    (as with a timeout; every timak write is idempotent, so retrying is
    safe). ``close()`` (or leaving ``async with``) waits for running calls,
    then closes the store if this Timeline opened it from a URL. Opening a
    store from a URL happens in the constructor, as in the sync API: quick
    for memory and SQLite; for Cassandra open it off the loop
    (``await asyncio.to_thread(timak.connect, url)``) and pass the backend.

    >>> import asyncio
    >>> from timak import aio
    >>> async def main():
    ...     async with aio.Timeline("memory://", max_items=3) as tl:
    ...         await tl.add("brett:tweets", 1, 10)
    ...         return await tl.add("brett:tweets", 2, 20)
    >>> asyncio.run(main())
    [2, 1]
    """

    def __init__(
        self,
        connection: Backend | str | os.PathLike[str] | None = None,
        bucket: str = "timelines",
        order: Literal["desc", "asc"] = "desc",
        max_items: int | None = 1000,
        *,
        max_value_bytes: int | None = None,
        max_item_bytes: int = timelines.MAX_ITEM_BYTES,
        fold_at: int = timelines.FOLD_AT,
        skew_us: int = 5_000_000,
        feed: KeyFeed | Feed | None = None,
        clock: Callable[[], int] = now_us,
        threads: int = 8,
    ) -> None:
        threads_ = Threads(threads, "Timeline")
        self._sync = timelines.Timeline(
            connection, bucket, order, max_items, max_value_bytes=max_value_bytes,
            max_item_bytes=max_item_bytes, fold_at=fold_at, skew_us=skew_us,
            feed=feed.sync_feed if isinstance(feed, Feed) else feed, clock=clock,
        )
        self._threads = threads_

    @classmethod
    def _lent(cls, timeline: timelines.Timeline, threads: Threads) -> Timeline:
        """A Timeline over ``timeline`` on borrowed ``threads`` (``close``
        leaves both to their owner)."""
        lent = cls.__new__(cls)
        lent._sync, lent._threads, lent._owner = timeline, threads, False
        return lent

    def _close_sync(self) -> None:
        self._sync.close()

    # -- what the sync Timeline holds --------------------------------------

    @property
    def connection(self) -> Backend:
        """The backend (opened from the URL, or the one given)."""
        return self._sync.connection

    @property
    def bucket(self) -> str:
        return self._sync.bucket

    @property
    def order(self) -> Literal["desc", "asc"]:
        return self._sync.order

    @property
    def max_items(self) -> int | None:
        return self._sync.max_items

    @property
    def feed(self) -> KeyFeed | None:
        """The sync change feed this Timeline notes its writes in."""
        return self._sync.feed

    @property
    def skew_us(self) -> int:
        return self._sync.skew_us

    @property
    def max_value_bytes(self) -> int:
        return self._sync.max_value_bytes

    @property
    def max_item_bytes(self) -> int:
        return self._sync.max_item_bytes

    @property
    def fold_at(self) -> int:
        return self._sync.fold_at

    @property
    def stats(self) -> TimelineStats:
        """Counters since this Timeline was made (see ``TimelineStats``)."""
        return self._sync.stats

    def item_limit(self, capacity: int | None = None) -> int:
        """See ``timak.timelines.Timeline.item_limit`` (no I/O)."""
        return self._sync.item_limit(capacity)

    # -- the timak 0.1 API ------------------------------------------------

    async def get(self, key: str, raw: bool = False, *, skip_corrupt: bool = False) -> list[Any]:
        """See ``timak.timelines.Timeline.get``."""
        return await self._threads.run(self._sync.get, key, raw, skip_corrupt=skip_corrupt)

    async def add(
        self, key: str, id: ItemId, score: ScoreLike, obj_data: Any = None, raw: bool = False
    ) -> list[Any]:
        """See ``timak.timelines.Timeline.add``; a list here, built in the
        worker thread, so that the event loop never decodes."""
        return await self._threads.run(
            lambda: list(self._sync.add(key, id, score, obj_data, raw)))

    async def delete(
        self, key: str, id: ItemId, score: ScoreLike | None = None, raw: bool = False
    ) -> list[Any]:
        """See ``timak.timelines.Timeline.delete``; a list, as ``add``."""
        return await self._threads.run(lambda: list(self._sync.delete(key, id, score, raw)))

    # -- blind writes -----------------------------------------------------

    async def fanout(
        self,
        keys: Iterable[str],
        id: ItemId,
        score: ScoreLike,
        obj_data: Any = None,
        *,
        deleted: bool = False,
        chunk: int = 1000,
        progress: Callable[[int], Any] | None = None,
    ) -> int:
        """See ``timak.timelines.Timeline.fanout``. ``progress`` is called in
        the worker thread; an ``async def`` one is awaited on the loop."""
        return await self._threads.run(
            self._sync.fanout, keys, id, score, obj_data, deleted=deleted, chunk=chunk,
            progress=None if progress is None else bridged(progress),
        )

    async def add_many(
        self, key: str, items: Iterable[tuple[ItemId, ScoreLike, Any]], *, deleted: bool = False
    ) -> int:
        """See ``timak.timelines.Timeline.add_many``."""
        return await self._threads.run(self._sync.add_many, key, items, deleted=deleted)

    async def count(self, key: str) -> int:
        """See ``timak.timelines.Timeline.count``."""
        return await self._threads.run(self._sync.count, key)

    async def fold(self, key: str) -> int:
        """See ``timak.timelines.Timeline.fold``."""
        return await self._threads.run(self._sync.fold, key)

    async def compact(
        self,
        keys: Iterable[str] | None = None,
        progress: Callable[[int], Any] | None = None,
        *,
        workers: int = 1,
    ) -> CompactStats:
        """See ``timak.timelines.Timeline.compact``: one of this Timeline's
        threads runs the sweep, with its own ``workers``."""
        return await self._threads.run(
            self._sync.compact, keys, None if progress is None else bridged(progress),
            workers=workers,
        )

    # -- reading ----------------------------------------------------------

    async def page(
        self, key: str, limit: int = 50, cursor: str | None = None, raw: bool = False
    ) -> Page:
        """See ``timak.timelines.Timeline.page``."""
        return await self._threads.run(self._sync.page, key, limit, cursor, raw)

    async def scan(
        self,
        key: str,
        after: tuple[Any, int, ItemId] | None = None,
        *,
        hint: int | None = None,
        skip_corrupt: bool = False,
    ) -> Iterator[Record]:
        """See ``timak.timelines.Timeline.scan``: the read happens in a
        worker thread; the records it returns decode as the (plain)
        iterator reaches them, without further I/O."""
        return await self._threads.run(self._sync.scan, key, after, hint=hint,
                                       skip_corrupt=skip_corrupt)

    async def range(
        self,
        key: str,
        start: ScoreLike | None = None,
        stop: ScoreLike | None = None,
        raw: bool = False,
    ) -> list[Any]:
        """See ``timak.timelines.Timeline.range``."""
        return await self._threads.run(self._sync.range, key, start, stop, raw)

    async def changes(self, key: str, since: str | None = None) -> Changes:
        """See ``timak.timelines.Timeline.changes``."""
        return await self._threads.run(self._sync.changes, key, since)

    def watch(
        self,
        keys: Sequence[str] | None = None,
        interval: float = 1.0,
        *,
        cursors: dict[str, str] | None = None,
        feed_cursor: str | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> AsyncIterator[Change]:
        """See ``timak.timelines.Timeline.watch``: the same changes, cursors
        and resumption, as an async iterator (``async for``) that waits with
        ``asyncio.sleep``. It also ends when the loop that iterates it
        stops, or its task is cancelled; break out of it with
        ``contextlib.aclosing`` to end it at once."""
        if keys is None and self._sync.feed is None:
            raise ConfigError("watch() without keys needs a Timeline made with feed=Feed(...)")
        # Where keys without a cursor start, read when watch() is called, as
        # the sync watch reads it (the sync Timeline's checked clock).
        start = self._sync._clock() - self.skew_us
        return self._watch(
            keys, interval, {} if cursors is None else cursors, feed_cursor, stop, start
        )

    async def _watch(
        self, keys: Sequence[str] | None, interval: float, cursors: dict[str, str],
        feed_cursor: str | None, stop: Callable[[], bool], start: int,
    ) -> AsyncIterator[Change]:
        state = WatchState(self._sync.feed, self.bucket, start, self.skew_us, keys, cursors,
                           feed_cursor)
        while not stop():
            for key in await self._threads.run(state.poll_keys):
                if stop():
                    return
                result = await self.changes(key, state.since(key))
                for change in result.changes:
                    yield change
                state.taken(key, result.cursor)
            state.end_poll()
            deadline = time.monotonic() + interval
            while not stop() and (left := deadline - time.monotonic()) > 0:
                await asyncio.sleep(min(left, 0.05))
