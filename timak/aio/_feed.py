"""``timak.aio.Feed``: the change feed (``timak.feed.Feed``) for asyncio."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from .. import feed
from .._results import now_us
from ..backends import Backend
from ._threads import Threaded, Threads

__all__ = ["Feed"]


class Feed(Threaded):
    """``timak.feed.Feed`` with coroutines for the calls that reach the
    store (``written``, ``poll``, ``oldest_cursor``, ``prune``); ``floor``
    and ``cursor_at`` are arithmetic and stay plain. The same constructor
    plus ``threads``; it runs like ``timak.aio.Timeline`` (see there).

    Give it to ``timak.aio.Timeline(feed=...)``, which notes its writes in
    the sync feed inside (``sync_feed``) from its own worker threads.
    """

    def __init__(
        self,
        connection: Backend | str | os.PathLike[str],
        bucket: str = feed.DEFAULT_BUCKET,
        *,
        partition_seconds: float = 10,
        shards: int = 4,
        capacity: int = 10_000,
        skew_us: int = 5_000_000,
        retention_seconds: float = 86_400,
        fold_at: int = 16,
        max_cursor_seen: int = 4096,
        max_periods_per_poll: int = 30,
        clock: Callable[[], int] = now_us,
        threads: int = 8,
    ) -> None:
        threads_ = Threads(threads, "Feed")
        #: The ``timak.feed.Feed`` this one runs in threads.
        self.sync_feed = feed.Feed(
            connection, bucket, partition_seconds=partition_seconds, shards=shards,
            capacity=capacity, skew_us=skew_us, retention_seconds=retention_seconds,
            fold_at=fold_at, max_cursor_seen=max_cursor_seen,
            max_periods_per_poll=max_periods_per_poll, clock=clock,
        )
        self._threads = threads_

    def _close_sync(self) -> None:
        self.sync_feed.close()

    @property
    def connection(self) -> Backend:
        return self.sync_feed.connection

    @property
    def bucket(self) -> str:
        return self.sync_feed.bucket

    @property
    def stats(self) -> feed.FeedStats:
        return self.sync_feed.stats

    async def written(self, bucket: str, keys: Sequence[str], arrived: int) -> None:
        """See ``timak.feed.Feed.written``."""
        await self._threads.run(self.sync_feed.written, bucket, keys, arrived)

    async def poll(
        self, cursor: str | None = None, *, bucket: str = "timelines"
    ) -> tuple[list[str], str]:
        """See ``timak.feed.Feed.poll``."""
        return await self._threads.run(self.sync_feed.poll, cursor, bucket=bucket)

    def floor(self, cursor: str | None = None) -> int:
        """See ``timak.feed.Feed.floor`` (no I/O)."""
        return self.sync_feed.floor(cursor)

    def cursor_at(self, since_us: int, *, bucket: str = "timelines") -> str:
        """See ``timak.feed.Feed.cursor_at`` (no I/O)."""
        return self.sync_feed.cursor_at(since_us, bucket=bucket)

    async def oldest_cursor(self, *, bucket: str = "timelines") -> str:
        """See ``timak.feed.Feed.oldest_cursor``."""
        return await self._threads.run(self.sync_feed.oldest_cursor, bucket=bucket)

    async def prune(self, older_than: float | None = None, *, scan: bool = False) -> int:
        """See ``timak.feed.Feed.prune``."""
        return await self._threads.run(self.sync_feed.prune, older_than, scan=scan)
