"""``Timeline.changes`` and ``Timeline.watch``: following timelines by polling.

A change cursor is ``[mark, digests]``: the newest arrival time returned so
far, and digests of what was returned within ``skew_us`` of it, so that a
poll can look ``skew_us`` behind its mark again (writers' clocks disagree)
without returning anything twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence

import msgpack

from ._cursors import decode_change_cursor, encode_cursor
from ._records import order_key
from ._results import Change, Changes, KeyFeed
from .value import Record, TimelineValue

__all__ = ["WatchState", "changes", "watch"]


def changes(value: TimelineValue, key: str, since: str | None, skew_us: int) -> Changes:
    """See ``Timeline.changes``: what of ``value`` (``key``'s timeline, just
    read) arrived after ``since``, looking ``skew_us`` behind it."""
    if since is None:
        mark, seen = -1, set()
    else:
        mark, digests = decode_change_cursor(since)
        seen = set(digests)
    floor = mark - skew_us
    fresh = sorted(
        (r for r in value.values() if r.arrived > floor and _digest(r) not in seen),
        key=lambda r: (r.arrived, order_key(r)),
    )
    new_mark = max([mark, *(r.arrived for r in fresh)])
    keep = [_digest(r) for r in value.values() if r.arrived > new_mark - skew_us]
    cursor = encode_cursor("c", [new_mark, keep])
    return Changes(
        [Change(key, r.id, r.score, r.deleted, r.data, r.arrived) for r in fresh], cursor
    )


class WatchState:
    """The cursors of one watch: where a key starts, how cursors advance
    after a poll, which keys the feed names and which are forgotten. The
    one owner of these rules, for ``watch`` here and ``timak.aio``'s, which
    differ only in how they wait and do I/O.

    ``keys`` is None only with a ``feed``; ``start`` is where keys without a
    cursor begin (µs) when there is no feed.
    """

    def __init__(
        self, feed: KeyFeed | None, bucket: str, start: int, skew_us: int,
        keys: Sequence[str] | None, cursors: dict[str, str], feed_cursor: str | None,
    ) -> None:
        self.feed = feed if keys is None else None
        self.bucket, self.skew_us, self.cursors = bucket, skew_us, cursors
        self.feed_cursor = feed_cursor if feed_cursor is not None else cursors.get("")
        self.start = start if self.feed is None else self.feed.floor(self.feed_cursor)
        self.keys = list(keys or ())
        self._next_feed_cursor: str | None = None

    def poll_keys(self) -> list[str]:
        """The keys to poll this round: asks the feed (I/O) when there is one."""
        if self.feed is not None:
            self.keys, self._next_feed_cursor = self.feed.poll(self.feed_cursor,
                                                               bucket=self.bucket)
        return self.keys

    def since(self, key: str) -> str:
        """The change cursor to poll ``key`` from."""
        return self.cursors.get(key) or encode_cursor("c", [self.start + self.skew_us, []])

    def taken(self, key: str, cursor: str) -> None:
        """Every change of ``key``'s poll was taken: move its cursor."""
        self.cursors[key] = cursor

    def end_poll(self) -> None:
        """Move the feed cursor and forget keys whose cursor fell behind it."""
        if self.feed is None:
            return
        assert self._next_feed_cursor is not None
        self.feed_cursor = self.cursors[""] = self._next_feed_cursor
        self.start = self.feed.floor(self.feed_cursor)
        for key in [k for k in self.cursors if k]:
            if decode_change_cursor(self.cursors[key])[0] <= self.start:
                del self.cursors[key]


def watch(
    poll: Callable[[str, str | None], Changes],
    feed: KeyFeed | None,
    bucket: str,
    start: int,
    skew_us: int,
    keys: Sequence[str] | None,
    interval: float,
    cursors: dict[str, str],
    feed_cursor: str | None,
    stop: Callable[[], bool],
) -> Iterator[Change]:
    """See ``Timeline.watch``: ``poll(key, cursor)`` is its ``changes``; the
    other arguments are ``WatchState``'s."""
    state = WatchState(feed, bucket, start, skew_us, keys, cursors, feed_cursor)
    while not stop():
        for key in state.poll_keys():
            if stop():
                return
            result = poll(key, state.since(key))
            yield from result.changes
            state.taken(key, result.cursor)
        state.end_poll()
        deadline = time.monotonic() + interval
        while not stop() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))


def _digest(record: Record) -> bytes:
    packed = msgpack.packb([record.id, record.score, record.deleted, record.arrived])
    return hashlib.blake2b(packed, digest_size=8).digest()
