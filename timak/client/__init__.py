"""A client for ``timak serve`` with the library's API.

``timak.client.Timeline`` and ``timak.client.Feeds`` take the service's URL
where ``timak.Timeline`` and ``timak.activity.Feeds`` take a store URL, and
otherwise have the same methods, arguments, return types and exceptions,
so an app moves between embedded mode and server mode without changing its
calls. ``timak.client.aio`` has the same classes with ``async`` methods,
mirroring ``timak.aio``.

>>> from timak.client import Timeline
>>> tl = Timeline("http://127.0.0.1:8470", token="...")  # doctest: +SKIP
>>> tl.add("alice:home", "post-1", "2024-05-01T12:00:00Z", {"text": "hi"})  # doctest: +SKIP
[{'text': 'hi'}]

What differs, and why:

* the token: ``token=`` or ``$TIMAK_TOKEN`` (``AccessDeniedError`` when
  the service refuses it);
* ``Feeds`` takes no ``followers``: the service keeps the follow graph,
  recorded by ``follow`` and ``unfollow`` (see ``docs/server.md``);
* a service that cannot be reached raises ``UnavailableError``, one that
  does not answer in time ``BackendTimeoutError``: to the app, the service
  is its store, and every timak write is safe to retry;
* ``watch`` is pushed over the service's WebSocket, not polled by the app.

Needs the ``client`` extra: ``pip install 'timak[client]'`` (in a checkout
of timak, ``pip install '.[client]'``).
"""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

from ..errors import ConfigError, MissingDriverError

try:
    import httpx
except ImportError as exc:  # pragma: no cover - the extra is installed in CI
    raise MissingDriverError(
        "timak.client needs the client extra (httpx is missing): pip install "
        "'timak[client]' (in a checkout of timak, pip install '.[client]')"
    ) from exc

from ..activity import Activity, ActivityPage, AggregatedPage
from ..timelines import Change, Changes, Page
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
    """One HTTP pool to one service; closed by ``close()`` or ``with``."""

    def __init__(self, connection: str, token: str | None, timeout: float) -> None:
        if not isinstance(connection, str) or not connection.startswith(("http://", "https://")):
            raise ConfigError(f"a timak service URL is http:// or https://, got {connection!r:.80}")
        self.url = connection.rstrip("/")
        self._token = token
        self._http = httpx.Client(base_url=self.url, headers=headers(token), timeout=timeout)

    def _do(self, call: Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, params=call.params,
                                          json=call.body)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.url) from exc
        except ValueError as exc:  # json= that JSON cannot hold
            raise unsendable(exc) from None
        raise_for(response)
        return call.decode(response.json())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Timeline(_Client):
    """``timak.Timeline`` over a ``timak serve`` service at ``connection``.

    ``bucket`` and ``max_items`` mean what they mean in-process (the service
    makes the key with ``max_items``; ``None`` adopts the stored capacity).
    ``order`` must be ``"desc"``: the service answers newest first.
    """

    def __init__(self, connection: str, bucket: str = "timelines",
                 order: Literal["desc", "asc"] = "desc", max_items: int | None = 1000, *,
                 token: str | None = None, timeout: float = 30.0) -> None:
        if order != "desc":
            raise ConfigError("a timak service answers newest first: order must be 'desc'")
        super().__init__(connection, token, timeout)
        self.bucket = bucket
        self.max_items = max_items
        self._calls = TimelineCalls(bucket, max_items)

    def get(self, key: str, raw: bool = False, *, skip_corrupt: bool = False) -> list[Any]:
        """The timeline under ``key`` (``Timeline.get``)."""
        found: list[Any] = self._do(self._calls.get(key, raw, skip_corrupt))
        return found

    def add(self, key: str, id: Any, score: Any, obj_data: Any = None,
            raw: bool = False) -> list[Any]:
        """Add (or move) an item; the visible timeline (``Timeline.add``)."""
        found: list[Any] = self._do(self._calls.add(key, id, score, obj_data, raw))
        return found

    def delete(self, key: str, id: Any, score: Any = None, raw: bool = False) -> list[Any]:
        """Delete an item; the visible timeline (``Timeline.delete``)."""
        found: list[Any] = self._do(self._calls.delete(key, id, score, raw))
        return found

    def fanout(self, keys: Iterable[str], id: Any, score: Any, obj_data: Any = None, *,
               deleted: bool = False, chunk: int = 1000,
               progress: Callable[[int], None] | None = None) -> int:
        """One item to many keys, one request per ``chunk`` keys (``Timeline.fanout``)."""
        written = 0
        for part in chunks(keys, chunk):
            written += self._do(self._calls.fanout(part, id, score, obj_data, deleted))
            if progress:
                progress(written)
        return written

    def count(self, key: str) -> int:
        """Visible items under ``key`` (``Timeline.count``)."""
        found: int = self._do(self._calls.count(key))
        return found

    def page(self, key: str, limit: int = 50, cursor: str | None = None,
             raw: bool = False) -> Page:
        """A page and the next page's cursor (``Timeline.page``)."""
        found: Page = self._do(self._calls.page(key, limit, cursor, raw))
        return found

    def range(self, key: str, start: Any = None, stop: Any = None,
              raw: bool = False) -> list[Any]:
        """Items with ``start <= score <= stop`` (``Timeline.range``)."""
        found: list[Any] = self._do(self._calls.range(key, start, stop, raw))
        return found

    def changes(self, key: str, since: str | None = None) -> Changes:
        """Adds and deletes after cursor ``since`` (``Timeline.changes``)."""
        found: Changes = self._do(self._calls.changes(key, since))
        return found

    def watch(self, keys: Sequence[str] | None = None, interval: float = 1.0, *,
              cursors: dict[str, str] | None = None,
              feed_cursor: str | None = None,
              stop: Callable[[], bool] = lambda: False) -> Iterator[Change]:
        """Changes of ``keys`` as the service pushes them (its WebSocket).

        As ``Timeline.watch``: ``cursors`` (key -> cursor, updated in place
        once every change of a batch was taken) resumes a watch; a key
        without one starts now. ``stop()`` is asked every 50 ms at most.
        Keys are required (``ConfigError`` here, before anything is sent):
        the service follows keys, not the global feed (``feed_cursor``).
        ``interval`` is taken for the library's signature: changes are
        pushed as the service's pollers find them (``--poll-interval``).
        """
        return self._watch(watched(keys, feed_cursor), {} if cursors is None else cursors, stop)

    def _watch(self, keys: list[str], saved: dict[str, str],
               stop: Callable[[], bool]) -> Iterator[Change]:
        from httpx_ws import connect_ws

        session: Any = connect_ws(self.url + "/ws", self._http)
        with session as ws:
            for key in keys:
                message: dict[str, Any] = {"op": "subscribe", "key": key, "bucket": self.bucket}
                if saved.get(key):
                    message["since"] = saved[key]
                ws.send_json(message)
            pending = set(keys)
            while not stop():
                try:
                    reply = json.loads(ws.receive_text(timeout=0.05))
                except queue.Empty:
                    continue
                yield from _batch(reply, saved, pending)


def _batch(reply: dict[str, Any], saved: dict[str, str], pending: set[str]) -> Iterator[Change]:
    """The changes of one WebSocket message; moves the key's cursor after."""
    from ._calls import change, raise_for_message

    raise_for_message(reply)
    key = reply.get("key", "")
    if reply["type"] == "subscribed":
        pending.discard(key)
        for item in reply.get("changes", []):
            yield change(item)
        saved[key] = reply["cursor"]
    elif reply["type"] == "changes":
        for item in reply["changes"]:
            yield change(item)
        saved[key] = reply["cursor"]


class Feeds(_Client):
    """``timak.activity.Feeds`` over a ``timak serve`` service: the same
    calls; the service keeps the follow graph (no ``followers``)."""

    def __init__(self, connection: str, *, token: str | None = None,
                 timeout: float = 30.0) -> None:
        super().__init__(connection, token, timeout)
        self._calls = FeedCalls()

    def add_activity(self, activity: Activity, *, fanout_to: Iterable[str] | None = None,
                     to: Iterable[tuple[str, Any]] = (),
                     progress: Callable[[int], None] | None = None) -> int:
        """Post ``activity`` to its actor's feed and its followers' (``Feeds.add_activity``)."""
        written: int = self._do(self._calls.spread(activity, fanout_to, to, remove=False))
        if progress:
            progress(written)
        return written

    def remove_activity(self, activity: Activity, *, fanout_to: Iterable[str] | None = None,
                        to: Iterable[tuple[str, Any]] = (),
                        progress: Callable[[int], None] | None = None) -> int:
        """Remove ``activity`` everywhere it went (``Feeds.remove_activity``)."""
        written: int = self._do(self._calls.spread(activity, fanout_to, to, remove=True))
        if progress:
            progress(written)
        return written

    def follow(self, follower: Any, target: Any, *, copy_limit: int = 300,
               feeds: Iterable[str] | None = None) -> int:
        """Record the follow and copy the newest activities (``Feeds.follow``)."""
        copied: int = self._do(self._calls.follow(follower, target, copy_limit, feeds))
        return copied

    def unfollow(self, follower: Any, target: Any, *, keep_history: bool = False,
                 feeds: Iterable[str] | None = None) -> int:
        """Remove the follow and the copies (``Feeds.unfollow``)."""
        removed: int = self._do(self._calls.unfollow(follower, target, keep_history, feeds))
        return removed

    def read(self, feed: str, owner: Any, limit: int = 25,
             cursor: str | None = None) -> ActivityPage:
        """A flat page (``Feeds.read``)."""
        found: ActivityPage = self._do(self._calls.read(feed, owner, limit, cursor))
        return found

    def aggregated(self, feed: str, owner: Any, limit: int = 10, cursor: str | None = None, *,
                   group_limit: int = 10) -> AggregatedPage:
        """A page of groups (``Feeds.aggregated``)."""
        found: AggregatedPage = self._do(
            self._calls.aggregated(feed, owner, limit, cursor, group_limit))
        return found

    def notifications(self, reader: Any, limit: int = 10, cursor: str | None = None, *,
                      feed: str = "notification") -> AggregatedPage:
        """Notification groups with marks and counts (``Feeds.notifications``)."""
        found: AggregatedPage = self._do(self._calls.notifications(reader, limit, cursor, feed))
        return found

    def mark_seen(self, reader: Any, *, feed: str = "notification") -> int:
        """Mark everything seen (``Feeds.mark_seen``)."""
        marked: int = self._do(self._calls.mark_seen(reader, feed))
        return marked

    def mark_read(self, reader: Any, groups: Iterable[str] | None = None, *,
                  feed: str = "notification") -> int:
        """Mark groups, or all, read (``Feeds.mark_read``)."""
        marked: int = self._do(self._calls.mark_read(reader, groups, feed))
        return marked

    def unseen_count(self, reader: Any, *, feed: str = "notification") -> int:
        """Groups not seen (``Feeds.unseen_count``)."""
        found: int = self._do(self._calls.counts(reader, feed, "unseen"))
        return found

    def unread_count(self, reader: Any, *, feed: str = "notification") -> int:
        """Groups not read (``Feeds.unread_count``)."""
        found: int = self._do(self._calls.counts(reader, feed, "unread"))
        return found

    def count(self, feed: str, owner: Any) -> int:
        """Activities in a feed (``Feeds.count``)."""
        found: int = self._do(self._calls.count(feed, owner))
        return found
