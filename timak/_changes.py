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

__all__ = ["changes", "watch"]


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
    """See ``Timeline.watch``: ``poll(key, cursor)`` is its ``changes``;
    ``keys`` is None only with a ``feed``; ``start`` is where keys without a
    cursor begin (µs) when there is no feed."""
    feed = feed if keys is None else None
    if feed is not None:
        feed_cursor = feed_cursor if feed_cursor is not None else cursors.get("")
        start = feed.floor(feed_cursor)
    watched = list(keys or ())
    while not stop():
        if feed is not None:
            watched, next_feed_cursor = feed.poll(feed_cursor, bucket=bucket)
        for key in watched:
            if stop():
                return
            since = cursors.get(key) or encode_cursor("c", [start + skew_us, []])
            result = poll(key, since)
            yield from result.changes
            cursors[key] = result.cursor
        if feed is not None:
            feed_cursor = cursors[""] = next_feed_cursor
            start = feed.floor(feed_cursor)
            for key in [k for k in cursors if k]:
                if decode_change_cursor(cursors[key])[0] <= start:
                    del cursors[key]
        deadline = time.monotonic() + interval
        while not stop() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))


def _digest(record: Record) -> bytes:
    packed = msgpack.packb([record.id, record.score, record.deleted, record.arrived])
    return hashlib.blake2b(packed, digest_size=8).digest()
