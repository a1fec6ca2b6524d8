"""What each route does, in plain synchronous timak calls: the service's one
owner of ``Timeline`` and ``Feeds`` objects. Handlers (``_app``) parse a
request, call one method here in a worker thread, and send what it returns.

The follow graph: an in-process ``Feeds`` asks the application who follows
an actor. A service has no application beside it, so it keeps the graph
itself, as timak timelines (bucket ``activity.followers``: key = the
followed actor, one item per follower, scored by the follow's time):
``follow`` records the edge and then copies, ``unfollow`` removes it and
then removes the copies, and posting reads it after writing the author's
feed, so the race rules of ``docs/activity.md`` hold as they do in-process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from ..activity import Activity, Feeds
from ..backends import Backend
from ..errors import InvalidFollowError, UnknownFeedGroupError
from ..timelines import Timeline
from ..value import Record, check_key
from ._codec import aggregated_json, change_json, flat_json, jsonable, record_json

__all__ = ["GRAPH_BUCKET", "Service"]

#: Where the service keeps who follows whom.
GRAPH_BUCKET = "activity.followers"
#: Different (bucket, max_items) Timelines one service keeps at most (the
#: oldest made is forgotten beyond it).
MAX_TIMELINES = 256


class Service:
    """Timelines and feeds over one backend, for the routes."""

    def __init__(self, backend: Backend, *, max_followers: int = 10_000) -> None:
        self.backend = backend
        self._timelines: dict[tuple[str, int | None], Timeline] = {}
        self._lock = threading.Lock()
        self.graph = Timeline(backend, GRAPH_BUCKET, max_items=max_followers)
        self.feeds = Feeds(backend, followers=self._followers)
        self._ready = Timeline(backend, "timak.readyz", max_items=None)

    # -- timelines -----------------------------------------------------------

    def timeline(self, bucket: str = "timelines", max_items: int | None = None) -> Timeline:
        """The Timeline of ``bucket`` (made once). ``max_items`` ``None`` adopts
        each key's stored capacity; writes may name one (a new key gets it)."""
        where = (bucket, max_items)
        with self._lock:
            found = self._timelines.get(where)
            if found is None:
                found = Timeline(self.backend, bucket, max_items=max_items)  # checks bucket
                if len(self._timelines) >= MAX_TIMELINES:
                    # Forget the oldest: Timelines are cheap to make again,
                    # and a client naming many buckets must not fill memory.
                    del self._timelines[next(iter(self._timelines))]
                self._timelines[where] = found
            return found

    def timelines(self) -> list[Timeline]:
        """Every Timeline the service made (for ``/metrics``)."""
        with self._lock:
            made = list(self._timelines.values())
        feeds = [self.feeds.timeline(name) for name in self.feeds.groups]
        return [*made, self.graph, *feeds, self._ready]

    def get(self, bucket: str, key: str, raw: bool, skip_corrupt: bool = False
            ) -> dict[str, Any]:
        found = self.timeline(bucket).get(key, raw=raw, skip_corrupt=skip_corrupt)
        return {"items": _items(found, raw)}

    def page(self, bucket: str, key: str, limit: int, cursor: str | None,
             raw: bool) -> dict[str, Any]:
        page = self.timeline(bucket).page(key, limit, cursor, raw=raw)
        return {"items": _items(page.items, raw), "cursor": page.cursor}

    def range(self, bucket: str, key: str, start: Any, stop: Any, raw: bool) -> dict[str, Any]:
        return {"items": _items(self.timeline(bucket).range(key, start, stop, raw=raw), raw)}

    def count(self, bucket: str, key: str) -> dict[str, Any]:
        return {"count": self.timeline(bucket).count(key)}

    def changes(self, bucket: str, key: str, since: str | None) -> dict[str, Any]:
        found = self.timeline(bucket).changes(key, since)
        return {"changes": [change_json(c) for c in found.changes], "cursor": found.cursor}

    def add(self, bucket: str, max_items: int | None, key: str, body: dict[str, Any],
            raw: bool) -> dict[str, Any]:
        items = self.timeline(bucket, max_items).add(
            key, body["id"], body["score"], body.get("data"), raw=raw
        )
        return {"items": _items(items, raw)}

    def delete(self, bucket: str, max_items: int | None, key: str, body: dict[str, Any],
               raw: bool) -> dict[str, Any]:
        items = self.timeline(bucket, max_items).delete(key, body["id"], body.get("score"), raw=raw)
        return {"items": _items(items, raw)}

    def fanout(self, bucket: str, max_items: int | None, body: dict[str, Any]
               ) -> dict[str, Any]:
        written = self.timeline(bucket, max_items).fanout(
            body["keys"], body["id"], body["score"], body.get("data"),
            deleted=bool(body.get("deleted", False)),
        )
        return {"written": written}

    # -- activity feeds ------------------------------------------------------

    def _followers(self, actor: object) -> list[Any]:
        return [r.id for r in self.graph.get(str(actor), raw=True) if not r.deleted]

    def add_activity(self, activity: Activity, to: list[tuple[str, Any]],
                     fanout_to: list[str] | None, remove: bool) -> dict[str, Any]:
        call = self.feeds.remove_activity if remove else self.feeds.add_activity
        return {"written": call(activity, fanout_to=fanout_to, to=to)}

    def follow(self, follower: Any, target: Any, copy_limit: int,
               feeds: list[str] | None) -> dict[str, Any]:
        self._check_follow(follower, target, feeds)
        if copy_limit < 0:
            raise InvalidFollowError(f"copy_limit must be an int of at least 0, got {copy_limit}")
        self.graph.add(str(target), follower, time.time_ns() // 1000)
        return {"copied": self.feeds.follow(follower, target, copy_limit=copy_limit, feeds=feeds)}

    def unfollow(self, follower: Any, target: Any, keep_history: bool,
                 feeds: list[str] | None) -> dict[str, Any]:
        self._check_follow(follower, target, feeds)
        self.graph.delete(str(target), follower)
        removed = self.feeds.unfollow(follower, target, keep_history=keep_history, feeds=feeds)
        return {"removed": removed}

    def _check_follow(self, follower: Any, target: Any, feeds: list[str] | None) -> None:
        """What ``Feeds.follow`` would refuse, refused before the graph is
        written: bad input writes nothing."""
        if str(follower) == str(target):
            raise InvalidFollowError(f"{follower!r:.80} cannot follow themself")
        for name in feeds or ():
            if self.feeds.group(name).follows is None:
                raise UnknownFeedGroupError(f"feed group {name!r} follows no group")
        check_key(str(follower))
        check_key(str(target))

    def followers(self, actor: str) -> dict[str, Any]:
        return {"followers": jsonable(self._followers(actor))}

    def read(self, feed: str, owner: str, limit: int, cursor: str | None) -> dict[str, Any]:
        return flat_json(self.feeds.read(feed, owner, limit, cursor))

    def aggregated(self, feed: str, owner: str, limit: int, cursor: str | None,
                   group_limit: int) -> dict[str, Any]:
        return aggregated_json(
            self.feeds.aggregated(feed, owner, limit, cursor, group_limit=group_limit)
        )

    def feed_count(self, feed: str, owner: str) -> dict[str, Any]:
        return {"count": self.feeds.count(feed, owner)}

    def notifications(self, reader: str, limit: int, cursor: str | None,
                      feed: str) -> dict[str, Any]:
        return aggregated_json(self.feeds.notifications(reader, limit, cursor, feed=feed))

    def mark_seen(self, reader: str, feed: str) -> dict[str, Any]:
        return {"marked": self.feeds.mark_seen(reader, feed=feed)}

    def mark_read(self, reader: str, groups: list[str] | None, feed: str) -> dict[str, Any]:
        return {"marked": self.feeds.mark_read(reader, groups, feed=feed)}

    def counts(self, reader: str, feed: str) -> dict[str, Any]:
        page = self.feeds.notifications(reader, 1, feed=feed)
        return {"unseen": page.unseen or 0, "unread": page.unread or 0}

    def feed_timeline(self, feed: str) -> Timeline:
        """The Timeline holding the feeds of group ``feed`` (for subscriptions)."""
        return self.feeds.timeline(feed)

    # -- health --------------------------------------------------------------

    def ready(self) -> None:
        """Raise a ``BackendError`` unless the store answers a read."""
        self._ready.get("readyz")


def _items(items: Sequence[Any], raw: bool) -> list[Any]:
    """What the library returned, for JSON: records with ``raw``, else the
    ids and data as they are."""
    if raw:
        return [record_json(r) for r in items if isinstance(r, Record)]
    return [jsonable(i) for i in items]
