"""The async client: ``timak.client.Timeline`` and ``Feeds`` with ``async``
methods, mirroring ``timak.aio`` (the same names and arguments), so an
asyncio app moves between ``timak.aio`` on a store and a ``timak serve``
service without changing its calls.

>>> from timak.client.aio import Timeline
>>> async def main():
...     async with Timeline("http://127.0.0.1:8470") as tl:
...         await tl.add("alice:home", "post-1", 100)
...         async for change in tl.watch(["alice:home"]):
...             print(change.id)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, Literal

import httpx

from ..activity import Activity, ActivityPage, AggregatedPage
from ..errors import ConfigError
from ..timelines import Change, Changes, Page
from . import _batch
from ._calls import (
    Call,
    FeedCalls,
    TimelineCalls,
    chunks,
    headers,
    raise_for,
    transport_error,
    unsendable,
    watched,
)

__all__ = ["Feeds", "Timeline"]


class _Client:
    """One async HTTP pool to one service; ``await close()`` or ``async with``."""

    def __init__(self, connection: str, token: str | None, timeout: float) -> None:
        if not isinstance(connection, str) or not connection.startswith(("http://", "https://")):
            raise ConfigError(f"a timak service URL is http:// or https://, got {connection!r:.80}")
        self.url = connection.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers(token),
                                       timeout=timeout)

    async def _do(self, call: Call) -> Any:
        try:
            response = await self._http.request(call.method, call.path, params=call.params,
                                                json=call.body)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.url) from exc
        except ValueError as exc:  # json= that JSON cannot hold
            raise unsendable(exc) from None
        raise_for(response)
        return call.decode(response.json())

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class Timeline(_Client):
    """``timak.client.Timeline``, awaitable (see the sync class for each method)."""

    def __init__(self, connection: str, bucket: str = "timelines",
                 order: Literal["desc", "asc"] = "desc", max_items: int | None = 1000, *,
                 token: str | None = None, timeout: float = 30.0) -> None:
        if order != "desc":
            raise ConfigError("a timak service answers newest first: order must be 'desc'")
        super().__init__(connection, token, timeout)
        self.bucket = bucket
        self.max_items = max_items
        self._calls = TimelineCalls(bucket, max_items)

    async def get(self, key: str, raw: bool = False, *, skip_corrupt: bool = False) -> list[Any]:
        found: list[Any] = await self._do(self._calls.get(key, raw, skip_corrupt))
        return found

    async def add(self, key: str, id: Any, score: Any, obj_data: Any = None,
                  raw: bool = False) -> list[Any]:
        found: list[Any] = await self._do(self._calls.add(key, id, score, obj_data, raw))
        return found

    async def delete(self, key: str, id: Any, score: Any = None,
                     raw: bool = False) -> list[Any]:
        found: list[Any] = await self._do(self._calls.delete(key, id, score, raw))
        return found

    async def fanout(self, keys: Iterable[str], id: Any, score: Any, obj_data: Any = None, *,
                     deleted: bool = False, chunk: int = 1000,
                     progress: Callable[[int], None] | None = None) -> int:
        written = 0
        for part in chunks(keys, chunk):
            written += await self._do(self._calls.fanout(part, id, score, obj_data, deleted))
            if progress:
                progress(written)
        return written

    async def count(self, key: str) -> int:
        found: int = await self._do(self._calls.count(key))
        return found

    async def page(self, key: str, limit: int = 50, cursor: str | None = None,
                   raw: bool = False) -> Page:
        found: Page = await self._do(self._calls.page(key, limit, cursor, raw))
        return found

    async def range(self, key: str, start: Any = None, stop: Any = None,
                    raw: bool = False) -> list[Any]:
        found: list[Any] = await self._do(self._calls.range(key, start, stop, raw))
        return found

    async def changes(self, key: str, since: str | None = None) -> Changes:
        found: Changes = await self._do(self._calls.changes(key, since))
        return found

    def watch(self, keys: Sequence[str] | None = None, interval: float = 1.0, *,
              cursors: dict[str, str] | None = None,
              feed_cursor: str | None = None,
              stop: Callable[[], bool] = lambda: False) -> AsyncIterator[Change]:
        """Changes of ``keys`` as the service pushes them: ``async for``
        (see the sync ``watch``; ``ConfigError`` here without keys)."""
        return self._watch(watched(keys, feed_cursor), {} if cursors is None else cursors, stop)

    async def _watch(self, keys: list[str], saved: dict[str, str],
                     stop: Callable[[], bool]) -> AsyncIterator[Change]:
        from httpx_ws import aconnect_ws

        session: Any = aconnect_ws(self.url + "/ws", self._http)
        async with session as ws:
            for key in keys:
                message: dict[str, Any] = {"op": "subscribe", "key": key, "bucket": self.bucket}
                if saved.get(key):
                    message["since"] = saved[key]
                await ws.send_json(message)
            pending = set(keys)
            while not stop():
                try:
                    text = await ws.receive_text(timeout=0.05)
                except (asyncio.TimeoutError, TimeoutError):
                    continue
                for change in _batch(json.loads(text), saved, pending):
                    yield change


class Feeds(_Client):
    """``timak.client.Feeds``, awaitable (see the sync class for each method)."""

    def __init__(self, connection: str, *, token: str | None = None,
                 timeout: float = 30.0) -> None:
        super().__init__(connection, token, timeout)
        self._calls = FeedCalls()

    async def add_activity(self, activity: Activity, *, fanout_to: Iterable[str] | None = None,
                           to: Iterable[tuple[str, Any]] = (),
                           progress: Callable[[int], None] | None = None) -> int:
        written: int = await self._do(self._calls.spread(activity, fanout_to, to, remove=False))
        if progress:
            progress(written)
        return written

    async def remove_activity(self, activity: Activity, *,
                              fanout_to: Iterable[str] | None = None,
                              to: Iterable[tuple[str, Any]] = (),
                              progress: Callable[[int], None] | None = None) -> int:
        written: int = await self._do(self._calls.spread(activity, fanout_to, to, remove=True))
        if progress:
            progress(written)
        return written

    async def follow(self, follower: Any, target: Any, *, copy_limit: int = 300,
                     feeds: Iterable[str] | None = None) -> int:
        copied: int = await self._do(self._calls.follow(follower, target, copy_limit, feeds))
        return copied

    async def unfollow(self, follower: Any, target: Any, *, keep_history: bool = False,
                       feeds: Iterable[str] | None = None) -> int:
        removed: int = await self._do(
            self._calls.unfollow(follower, target, keep_history, feeds))
        return removed

    async def read(self, feed: str, owner: Any, limit: int = 25,
                   cursor: str | None = None) -> ActivityPage:
        found: ActivityPage = await self._do(self._calls.read(feed, owner, limit, cursor))
        return found

    async def aggregated(self, feed: str, owner: Any, limit: int = 10,
                         cursor: str | None = None, *, group_limit: int = 10) -> AggregatedPage:
        found: AggregatedPage = await self._do(
            self._calls.aggregated(feed, owner, limit, cursor, group_limit))
        return found

    async def notifications(self, reader: Any, limit: int = 10, cursor: str | None = None, *,
                            feed: str = "notification") -> AggregatedPage:
        found: AggregatedPage = await self._do(
            self._calls.notifications(reader, limit, cursor, feed))
        return found

    async def mark_seen(self, reader: Any, *, feed: str = "notification") -> int:
        marked: int = await self._do(self._calls.mark_seen(reader, feed))
        return marked

    async def mark_read(self, reader: Any, groups: Iterable[str] | None = None, *,
                        feed: str = "notification") -> int:
        marked: int = await self._do(self._calls.mark_read(reader, groups, feed))
        return marked

    async def unseen_count(self, reader: Any, *, feed: str = "notification") -> int:
        found: int = await self._do(self._calls.counts(reader, feed, "unseen"))
        return found

    async def unread_count(self, reader: Any, *, feed: str = "notification") -> int:
        found: int = await self._do(self._calls.counts(reader, feed, "unread"))
        return found

    async def count(self, feed: str, owner: Any) -> int:
        found: int = await self._do(self._calls.count(feed, owner))
        return found
