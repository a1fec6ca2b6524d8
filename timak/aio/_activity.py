"""``timak.aio.Feeds``: activity feeds (``timak.activity.Feeds``) for asyncio."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import activity
from ..activity import Activity, ActivityPage, AggregatedPage, FeedGroup, Ref
from ..activity._payloads import INLINE_BYTES, PAYLOAD_BUCKET
from ..backends import Backend
from ._threads import Threaded, Threads, bridged
from ._timeline import Timeline

__all__ = ["Feeds"]

#: ``followers(actor)``: the ids of those who follow ``actor``, or an
#: awaitable of them (an ``async def`` that asks an async database).
Followers = Callable[[Ref], Any]


class Feeds(Threaded):
    """``timak.activity.Feeds`` with coroutines: the same constructor (plus
    ``threads``), method names, arguments, return values and errors, and
    the same race rule (see ``timak.activity``). It runs like
    ``timak.aio.Timeline``: each call runs the sync ``Feeds`` in one of this
    object's worker threads.

    ``followers`` may be a plain function, called in the worker thread as
    the sync ``Feeds`` calls it, or an ``async def``, awaited on the loop
    that made the call. ``group`` is a lookup and stays plain;
    ``timeline(name)`` gives a ``timak.aio.Timeline`` that shares this
    object's threads (closing it closes nothing).

    >>> import asyncio
    >>> from timak.activity import Activity
    >>> async def followers(actor):          # e.g. an async database query
    ...     return {"alice": ["bob"]}.get(actor, [])
    >>> async def main():
    ...     async with Feeds("memory://", followers=followers) as feeds:
    ...         await feeds.add_activity(Activity("alice", "post", "post:1", time=10))
    ...         page = await feeds.read("home", "bob")
    ...         return [a.object for a in page.activities]
    >>> asyncio.run(main())
    ['post:1']
    """

    def __init__(
        self,
        connection: Backend | str | None = None,
        *,
        followers: Followers,
        groups: Iterable[FeedGroup] | None = None,
        author_group: str = "user",
        chunk: int = 1000,
        timeline_options: dict[str, Any] | None = None,
        inline_bytes: int | None = INLINE_BYTES,
        payload_bucket: str = PAYLOAD_BUCKET,
        threads: int = 8,
    ) -> None:
        threads_ = Threads(threads, "Feeds")
        self._followers = followers
        self._sync = activity.Feeds(
            connection, followers=bridged(followers), groups=groups,
            author_group=author_group, chunk=chunk, timeline_options=timeline_options,
            inline_bytes=inline_bytes, payload_bucket=payload_bucket,
        )
        self._threads = threads_

    def _close_sync(self) -> None:
        self._sync.close()

    # -- what the sync Feeds holds -------------------------------------------

    @property
    def connection(self) -> Backend:
        return self._sync.connection

    @property
    def groups(self) -> dict[str, FeedGroup]:
        return self._sync.groups

    @property
    def author_group(self) -> str:
        return self._sync.author_group

    @property
    def inline_bytes(self) -> int | None:
        return self._sync.inline_bytes

    @property
    def payload_bucket(self) -> str:
        return self._sync.payload_bucket

    @property
    def followers(self) -> Followers:
        return self._followers

    @followers.setter
    def followers(self, followers: Followers) -> None:
        self._followers = followers
        self._sync.followers = bridged(followers)

    @property
    def chunk(self) -> int:
        """Keys per blind-write batch (settable, as on the sync ``Feeds``)."""
        return self._sync.chunk

    @chunk.setter
    def chunk(self, chunk: int) -> None:
        self._sync.chunk = chunk

    def group(self, name: str) -> FeedGroup:
        """See ``timak.activity.Feeds.group`` (no I/O)."""
        return self._sync.group(name)

    def timeline(self, name: str) -> Timeline:
        """The ``timak.aio.Timeline`` of group ``name``'s feeds, on this
        object's threads (``UnknownFeedGroupError`` for an unknown group)."""
        return Timeline._lent(self._sync.timeline(name), self._threads)

    # -- posting, removing, following -----------------------------------------

    async def add_activity(
        self,
        activity: Activity,
        *,
        fanout_to: Iterable[str] | None = None,
        to: Iterable[tuple[str, Ref]] = (),
        progress: Callable[[int], Any] | None = None,
    ) -> int:
        """See ``timak.activity.Feeds.add_activity``; ``progress`` as in
        ``timak.aio.Timeline.fanout``."""
        return await self._threads.run(
            self._sync.add_activity, activity, fanout_to=fanout_to, to=to,
            progress=None if progress is None else bridged(progress),
        )

    async def check_activity(
        self,
        activity: Activity,
        *,
        fanout_to: Iterable[str] | None = None,
        to: Iterable[tuple[str, Ref]] = (),
    ) -> None:
        """See ``timak.activity.Feeds.check_activity``."""
        await self._threads.run(self._sync.check_activity, activity, fanout_to=fanout_to,
                                to=to)

    async def remove_activity(
        self,
        activity: Activity,
        *,
        fanout_to: Iterable[str] | None = None,
        to: Iterable[tuple[str, Ref]] = (),
        progress: Callable[[int], Any] | None = None,
    ) -> int:
        """See ``timak.activity.Feeds.remove_activity``."""
        return await self._threads.run(
            self._sync.remove_activity, activity, fanout_to=fanout_to, to=to,
            progress=None if progress is None else bridged(progress),
        )

    async def follow(
        self, follower: Ref, target: Ref, *, copy_limit: int = 300,
        feeds: Iterable[str] | None = None,
    ) -> int:
        """See ``timak.activity.Feeds.follow``."""
        return await self._threads.run(
            self._sync.follow, follower, target, copy_limit=copy_limit, feeds=feeds
        )

    async def unfollow(
        self, follower: Ref, target: Ref, *, keep_history: bool = False,
        feeds: Iterable[str] | None = None,
    ) -> int:
        """See ``timak.activity.Feeds.unfollow``."""
        return await self._threads.run(
            self._sync.unfollow, follower, target, keep_history=keep_history, feeds=feeds
        )

    # -- reading, marks and counts --------------------------------------------

    async def read(
        self, feed: str, owner: Ref, limit: int = 25, cursor: str | None = None,
        *, skip_corrupt: bool = False,
    ) -> ActivityPage:
        """See ``timak.activity.Feeds.read``."""
        return await self._threads.run(self._sync.read, feed, owner, limit, cursor,
                                       skip_corrupt=skip_corrupt)

    async def aggregated(
        self, feed: str, owner: Ref, limit: int = 10, cursor: str | None = None, *,
        group_limit: int = 10, skip_corrupt: bool = False,
    ) -> AggregatedPage:
        """See ``timak.activity.Feeds.aggregated``."""
        return await self._threads.run(
            self._sync.aggregated, feed, owner, limit, cursor, group_limit=group_limit,
            skip_corrupt=skip_corrupt,
        )

    async def notifications(
        self, reader: Ref, limit: int = 10, cursor: str | None = None, *,
        feed: str = "notification", skip_corrupt: bool = False,
    ) -> AggregatedPage:
        """See ``timak.activity.Feeds.notifications``."""
        return await self._threads.run(self._sync.notifications, reader, limit, cursor,
                                       feed=feed, skip_corrupt=skip_corrupt)

    async def mark_seen(self, reader: Ref, *, feed: str = "notification") -> int:
        """See ``timak.activity.Feeds.mark_seen``."""
        return await self._threads.run(self._sync.mark_seen, reader, feed=feed)

    async def mark_read(
        self, reader: Ref, groups: Iterable[str] | None = None, *, feed: str = "notification"
    ) -> int:
        """See ``timak.activity.Feeds.mark_read``."""
        return await self._threads.run(self._sync.mark_read, reader, groups, feed=feed)

    async def unseen_count(self, reader: Ref, *, feed: str = "notification") -> int:
        """See ``timak.activity.Feeds.unseen_count``."""
        return await self._threads.run(self._sync.unseen_count, reader, feed=feed)

    async def unread_count(self, reader: Ref, *, feed: str = "notification") -> int:
        """See ``timak.activity.Feeds.unread_count``."""
        return await self._threads.run(self._sync.unread_count, reader, feed=feed)

    async def count(self, feed: str, owner: Ref) -> int:
        """See ``timak.activity.Feeds.count``."""
        return await self._threads.run(self._sync.count, feed, owner)
