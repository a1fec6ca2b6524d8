"""``Timeline``: bounded, mergeable timelines on any backend.

The API of timak 0.1 stays: ``Timeline(connection=..., max_items=...)``, and
``add``/``delete`` return the visible timeline (ids, or ``obj_data`` where an
item has it). What changed underneath:

* conflicts are decided by the item's score, never by a writer's clock
  (see ``timak.value``);
* ``fanout`` writes one item to many keys with one blind write per key and
  no read;
* every read that sees several siblings writes the merge back (read
  repair), and keys that only receive blind writes are folded when they
  collect ``fold_at`` siblings, so siblings per key stay bounded;
* ``page`` gives cursors that stay stable while new items arrive, ``range``
  reads by score or datetime, ``changes`` follows a timeline by polling.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgpack

from . import encoding
from .backends import MAX_KEY_BYTES, Backend, Fetched, UsesBackend
from .cursors import damaged, decode_cursor, encode_cursor
from .errors import (
    BackendError,
    ConfigError,
    CorruptValueError,
    InvalidInputError,
    InvalidKeyError,
    InvalidScoreError,
    ValueTooLargeError,
)
from .options import checked_clock, int_option
from .scores import ScoreLike, to_score, to_scores
from .value import (
    INT64_RANGE,
    ItemId,
    Record,
    Score,
    TimelineValue,
    check_data,
    check_id,
    check_key,
    check_score,
    merge,
    order_key,
)

__all__ = [
    "Change",
    "Changes",
    "CompactStats",
    "Counters",
    "KeyFeed",
    "Page",
    "Timeline",
    "TimelineStats",
    "now_us",
]

_log = logging.getLogger("timak")

#: Default largest encoded value: Riak is at its best under 1 MB.
MAX_VALUE_BYTES = 1024 * 1024
#: Default largest single item (its encoded record, data included).
MAX_ITEM_BYTES = 64 * 1024
#: Blind writes fold a key once it holds this many siblings.
FOLD_AT = 16
# Per-process memory of blind writes per key, for stores that cannot report
# a sibling count. Bounded so a fan-out to millions of keys stays small.
_BLIND_COUNTS_MAX = 65536


def now_us() -> int:
    """The local clock in microseconds since the epoch: records' arrival time."""
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Page:
    """One page of a timeline: ``items`` and the ``cursor`` for the next page
    (``None`` when there is no next page). Cursors are plain strings."""

    items: list[Any]
    cursor: str | None


@dataclass(frozen=True)
class Change:
    """One add or delete that arrived on a timeline."""

    key: str
    id: ItemId
    score: Score
    deleted: bool
    data: Any
    arrived: int


@dataclass(frozen=True)
class Changes:
    """What ``Timeline.changes`` found, and the cursor to poll from next."""

    changes: list[Change]
    cursor: str


@dataclass
class CompactStats:
    """What a ``compact`` sweep did."""

    keys: int = 0
    folded: int = 0
    siblings_merged: int = 0
    corrupt: int = 0


@dataclass
class Counters:
    """Integer counters that threads may bump together; subclasses name them."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add each of ``counts`` to the counter of that name."""
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


@dataclass
class TimelineStats(Counters):
    """Counters of one ``Timeline`` object since it was made."""

    reads: int = 0
    writes: int = 0
    blind_writes: int = 0
    siblings_merged: int = 0
    repairs: int = 0
    folds: int = 0


class KeyFeed(Protocol):
    """What a global change feed offers ``Timeline`` (``timak.feed.Feed``)."""

    def written(self, bucket: str, keys: Sequence[str], arrived: int) -> None:
        """Note that ``keys`` of ``bucket`` were written at ``arrived``."""
        ...

    def poll(
        self, cursor: str | None = None, *, bucket: str = "timelines"
    ) -> tuple[list[str], str]:
        """The keys of ``bucket`` written since ``cursor``, and the next cursor."""
        ...

    def floor(self, cursor: str | None = None) -> int:
        """The arrival time (µs) after which ``poll(cursor)`` reports writes."""
        ...


@dataclass
class _Read:
    value: TimelineValue
    fetched: Fetched
    corrupt: list[CorruptValueError]
    repaired: bool = False  # the merge of several siblings was stored


class Timeline(UsesBackend):
    """Timelines of at most ``max_items`` items each, stored one value per key.

    ``connection`` is a ``Backend`` or a store URL (``sqlite:///timak.db``,
    ``cassandra://...``); a Timeline closes only a backend it opened itself.
    ``order`` is ``"desc"`` (newest first) or ``"asc"``; it changes only the
    order results come back in: the newest ``max_items`` are always kept.
    Every timeline in a bucket must use the same ``max_items``.

    Every option is checked here, before a connection is opened: a bad one
    raises ``ConfigError`` (a bad ``bucket``, ``InvalidKeyError``). ``clock``
    gives records their arrival time and must return an ``int`` of
    microseconds since the epoch (``time.time`` does not: it returns float
    seconds); it is read once here, and a reading that goes wrong later
    raises ``ConfigError`` before anything is written.

    >>> from datetime import datetime
    >>> tl = Timeline(connection="memory://", max_items=3)
    >>> tl.add("brett:tweets", 1, datetime(2011, 1, 1))
    [1]
    >>> tl.add("brett:tweets", 2, datetime(2011, 1, 2))
    [2, 1]
    """

    def __init__(
        self,
        connection: Backend | str | None = None,
        bucket: str = "timelines",
        order: Literal["desc", "asc"] = "desc",
        max_items: int = 1000,
        *,
        max_value_bytes: int = MAX_VALUE_BYTES,
        max_item_bytes: int = MAX_ITEM_BYTES,
        fold_at: int = FOLD_AT,
        skew_us: int = 5_000_000,
        feed: KeyFeed | None = None,
        clock: Callable[[], int] = now_us,
    ) -> None:
        if order not in ("desc", "asc"):
            raise ConfigError(f"order must be 'desc' or 'asc', got {order!r}")
        self.max_items = int_option("max_items", max_items, 1)
        self.max_value_bytes = int_option("max_value_bytes", max_value_bytes, 1)
        self.max_item_bytes = int_option("max_item_bytes", max_item_bytes, 1)
        self.fold_at = int_option("fold_at", fold_at, 2)
        #: How far behind its cursor ``changes`` looks again: the largest
        #: disagreement between writers' clocks (plus replication delay)
        #: that still loses no change.
        self.skew_us = int_option("skew_us", skew_us, 0)
        if feed is not None and not all(
            callable(getattr(feed, name, None)) for name in ("written", "poll", "floor")
        ):
            raise ConfigError(f"feed must be a timak.feed.Feed, got {feed!r:.80}")
        self.feed = feed
        self._clock = checked_clock(clock)
        self.bucket = check_key(bucket, "bucket")
        self.order = order
        self._use_backend(connection)
        self.stats = TimelineStats()
        self._blind_counts: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._blind_lock = threading.Lock()

    # -- the timak 0.1 API ------------------------------------------------

    def get(self, key: str, raw: bool = False, *, skip_corrupt: bool = False) -> list[Any]:
        """The timeline under ``key``, in ``order``.

        Returns item ids, or each item's ``obj_data`` where it has some; with
        ``raw=True``, every ``Record`` including tombstones. Several siblings
        are merged and the merge is written back. A corrupt sibling raises
        ``CorruptValueError`` and nothing is written back; with
        ``skip_corrupt=True`` the other siblings are returned instead (still
        without writing back, so the corrupt bytes stay for inspection).
        """
        read = self._read(check_key(key), skip_corrupt=skip_corrupt)
        return self._present(read.value, raw)

    def add(
        self, key: str, id: ItemId, score: ScoreLike, obj_data: Any = None, raw: bool = False
    ) -> list[Any]:
        """Add (or move) item ``id`` at ``score``; return the visible timeline.

        ``score`` is a number, a ``datetime`` (naive means UTC) or an ISO-8601
        string. An item already present with a higher score, or deleted at a
        score at least as high, stays as it is: writes are decided by score.
        """
        return self._write(key, self._record(id, score, obj_data, deleted=False), raw)

    def delete(
        self, key: str, id: ItemId, score: ScoreLike | None = None, raw: bool = False
    ) -> list[Any]:
        """Delete item ``id``; return the visible timeline.

        The delete wins over adds at ``score`` or lower. Without ``score`` the
        item's current score is looked up; if the item is not there, nothing
        is written. Pass the score when a concurrent add of the same item may
        be in flight, so the delete is decided against it rather than
        against whatever this read happened to see.
        """
        key = check_key(key)
        if score is None:
            read = self._read(key)
            found = read.value.get(check_id(id))
            if found is None or found.deleted:
                return self._present(read.value, raw)
            score = found.score
        return self._write(key, self._record(id, score, None, deleted=True), raw)

    # -- blind writes -----------------------------------------------------

    def fanout(
        self,
        keys: Iterable[str],
        id: ItemId,
        score: ScoreLike,
        obj_data: Any = None,
        *,
        deleted: bool = False,
        chunk: int = 1000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write one item to every key in ``keys``: one blind write per key, no read.

        Returns how many keys were written. ``progress`` is called with the
        number written so far after each chunk of ``chunk`` keys. Keys that
        collect ``fold_at`` siblings are folded (read, merged, written back).

        ``keys`` is an iterable of keys; one ``str`` is refused with
        ``InvalidKeyError`` (it would be taken as one key per character), as
        is any key that ``check_key`` refuses, before the first write.
        ``chunk`` that is not a positive int raises ``ConfigError``.
        """
        if isinstance(keys, str | bytes):
            raise InvalidKeyError(
                f"fanout takes an iterable of keys, not one {type(keys).__name__} "
                f"({keys!r:.60}): pass [key]"
            )
        int_option("chunk", chunk, 1)
        record = self._record(id, score, None if deleted else obj_data, deleted=deleted)
        value = self._encode_checked(TimelineValue({record.id: record}))
        # Check every key before the first write: bad input writes nothing.
        # The common case (a short ASCII str) is checked inline: a call per
        # key was the largest cost of fan-out on the memory store.
        checked = [
            key if type(key) is str and key.isascii() and 0 < len(key) <= MAX_KEY_BYTES
            else check_key(key)
            for key in keys
        ]
        written = 0
        for start in range(0, len(checked), chunk):
            written += self._blind(checked[start : start + chunk], value, record.arrived)
            if progress:
                progress(written)
        return written

    def add_many(
        self,
        key: str,
        items: Iterable[tuple[ItemId, ScoreLike, Any]],
        *,
        deleted: bool = False,
    ) -> int:
        """Write several ``(id, score, obj_data)`` items to ``key`` in one blind
        write (no read); return how many. ``deleted=True`` writes tombstones
        (data ignored). The items are one sibling, merged like any other: the
        newest ``max_items`` of them are kept. Every item is checked first.
        """
        key = check_key(key)
        records = [
            self._record(i, score, None if deleted else data, deleted=deleted)
            for i, score, data in items
        ]
        if records:
            value = self._encode_checked(TimelineValue.of(records, self.max_items))
            self._blind([key], value, max(r.arrived for r in records))
        return len(records)

    def count(self, key: str) -> int:
        """How many visible (not deleted) items ``key`` holds; reads like ``get``.
        Counts by the records' deleted flags, never by decoding their data."""
        return sum(1 for r in self._read(check_key(key)).value.values() if not r.deleted)

    def _blind(self, keys: list[str], value: bytes, arrived: int) -> int:
        results = self.connection.store_many(self.bucket, [(k, value) for k in keys])
        self.stats.add(blind_writes=len(keys))
        if self.feed is not None:
            self.feed.written(self.bucket, keys, arrived)
        fold_at = self.fold_at
        # Fan-out's per-key hot loop: a reported count needs only a compare.
        to_fold = [
            key
            for key, count in zip(keys, results, strict=True)
            if (count >= fold_at if count is not None else self._should_fold(key, None))
        ]
        for key in to_fold:
            try:
                self.fold(key)
            except BackendError as exc:
                # The blind writes are stored; folding is housekeeping that
                # the next read, write or sweep does again.
                _log.warning("folding %r failed: %s", key, exc)
        return len(keys)

    def _should_fold(self, key: str, count: int | None) -> bool:
        if count is not None:
            return count >= self.fold_at
        # The store cannot say how many siblings there are: count this
        # process's own blind writes per key. With W writing processes a key
        # then holds at most about W * fold_at siblings between folds.
        with self._blind_lock:
            seen = self._blind_counts.pop(key, 0) + 1
            if seen >= self.fold_at:
                return True
            self._blind_counts[key] = seen
            if len(self._blind_counts) > _BLIND_COUNTS_MAX:
                self._blind_counts.popitem(last=False)
        return False

    def fold(self, key: str) -> int:
        """Merge the siblings under ``key`` into one; return how many were merged.

        Returns 0, and counts no fold in ``stats.folds``, when there was
        nothing to merge (one sibling or none) or the merge was not stored
        (a store error, logged; the siblings stay for the next read). A key
        with a corrupt sibling is left alone (nothing is lost).
        """
        try:
            read = self._read(check_key(key))
        except CorruptValueError:
            return 0
        if not read.repaired:
            return 0
        self.stats.add(folds=1)
        return len(read.fetched.siblings)

    def compact(
        self, keys: Iterable[str] | None = None, progress: Callable[[int], None] | None = None
    ) -> CompactStats:
        """Fold every key of the bucket (or ``keys``): the sweep for keys that
        get blind writes and are rarely read. Listing every key is a full scan
        on Cassandra and Riak: run it off-peak.

        ``keys`` are checked before the first read, as ``fanout`` checks them
        (``InvalidKeyError``). ``folded`` counts keys whose merge was stored,
        not keys whose repair failed or was skipped.
        """
        if isinstance(keys, str | bytes):
            raise InvalidKeyError(f"compact takes an iterable of keys, not one "
                                  f"{type(keys).__name__} ({keys!r:.60}): pass [key]")
        stats = CompactStats()
        todo = self.connection.keys(self.bucket) if keys is None else [check_key(k) for k in keys]
        for key in todo:
            stats.keys += 1
            try:
                read = self._read(key)
            except CorruptValueError:
                stats.corrupt += 1
                continue
            if read.repaired:
                stats.folded += 1
                stats.siblings_merged += len(read.fetched.siblings)
            if progress:
                progress(stats.keys)
        return stats

    # -- reading ----------------------------------------------------------

    def page(
        self, key: str, limit: int = 50, cursor: str | None = None, raw: bool = False
    ) -> Page:
        """``limit`` items after ``cursor`` (from the start without one).

        The cursor remembers the position (score and id) of the last item
        returned, so items added above it while paging do not shift later
        pages, and no item is returned twice.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"limit must be a positive int, got {limit!r}")
        records = self._ordered(self._read(check_key(key)).value)
        if cursor is not None:
            after = _decode_cursor(cursor, "p")
            if self.order == "desc":
                records = [r for r in records if order_key(r) < after]
            else:
                records = [r for r in records if order_key(r) > after]
        visible = [r for r in records if not r.deleted or raw]
        taken = visible[:limit]
        next_cursor = None
        if len(visible) > limit:
            next_cursor = encode_cursor("p", list(order_key(taken[-1])))
        return Page(self._items(taken, raw), next_cursor)

    def range(
        self,
        key: str,
        start: ScoreLike | None = None,
        stop: ScoreLike | None = None,
        raw: bool = False,
    ) -> list[Any]:
        """Items with ``start <= score <= stop`` (either bound may be open).

        Bounds compare with stored scores, and a datetime is stored as
        microseconds since the epoch: on a timeline of datetimes a numeric
        bound counts microseconds (``range(key, 0, 100)`` is the first 100 µs
        of 1970). Raises ``InvalidScoreError`` (an ``InvalidInputError``) if
        ``start`` is after ``stop``.
        """
        low, high = to_scores(start, stop)
        if low is not None and high is not None and low > high:
            raise InvalidScoreError(f"range start {start!r:.80} is after its stop {stop!r:.80}")
        records = [
            r
            for r in self._ordered(self._read(check_key(key)).value)
            if (raw or not r.deleted)
            and (low is None or r.score >= low)
            and (high is None or r.score <= high)
        ]
        return self._items(records, raw)

    def changes(self, key: str, since: str | None = None) -> Changes:
        """Adds and deletes on ``key`` that arrived after cursor ``since``.

        Delivery is at least once: each poll looks ``skew_us`` behind its
        cursor again, so a write whose writer's clock lags by up to that much
        is still seen, and the cursor remembers what it already returned in
        that window so it is not returned twice. Changes come oldest arrival
        first. An item trimmed off the timeline before a poll is not
        reported: the timeline only keeps its newest ``max_items``.
        """
        key = check_key(key)
        if since is None:
            mark, seen = -1, set()
        else:
            mark, digests = _decode_cursor(since, "c")
            seen = set(digests)
        value = self._read(key).value
        floor = mark - self.skew_us
        fresh = sorted(
            (r for r in value.values() if r.arrived > floor and _digest(r) not in seen),
            key=lambda r: (r.arrived, order_key(r)),
        )
        new_mark = max([mark, *(r.arrived for r in fresh)])
        keep = [_digest(r) for r in value.values() if r.arrived > new_mark - self.skew_us]
        cursor = encode_cursor("c", [new_mark, keep])
        return Changes(
            [Change(key, r.id, r.score, r.deleted, r.data, r.arrived) for r in fresh], cursor
        )

    def watch(
        self,
        keys: Sequence[str] | None = None,
        interval: float = 1.0,
        *,
        cursors: dict[str, str] | None = None,
        feed_cursor: str | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[Change]:
        """Yield changes as they arrive, polling every ``interval`` seconds.

        With ``keys``, those timelines are polled. Without, the Timeline's
        ``feed`` says which keys changed; it must have been given one, and
        every writer must have one too. A key without a cursor starts at the
        watch's start minus ``skew_us``, not at its whole history (pass
        cursors from ``changes(key)`` for that).

        ``cursors`` (key -> cursor, updated in place) lets a caller save
        progress and resume: a key's cursor moves only after all of its
        changes from one poll were taken from the generator, so a resumed
        watch repeats rather than loses. With the feed, ``cursors[""]``
        holds the feed cursor (``feed_cursor`` overrides it), and keys whose
        cursor fell behind the feed's window are dropped from ``cursors`` to
        keep it small; they start at the feed's window when they change again.

        Ends when ``stop()`` returns true; it is asked before every poll and
        key, and every 50 ms while waiting.
        """
        if keys is None and self.feed is None:
            raise ConfigError("watch() without keys needs a Timeline made with feed=Feed(...)")
        cursors = {} if cursors is None else cursors
        feed = self.feed if keys is None else None
        if feed is not None:
            feed_cursor = feed_cursor if feed_cursor is not None else cursors.get("")
            start = feed.floor(feed_cursor)
        else:
            start = self._clock() - self.skew_us
        watched = list(keys or ())
        while not stop():
            if feed is not None:
                watched, next_feed_cursor = feed.poll(feed_cursor, bucket=self.bucket)
            for key in watched:
                if stop():
                    return
                since = cursors.get(key) or encode_cursor("c", [start + self.skew_us, []])
                result = self.changes(key, since)
                yield from result.changes
                cursors[key] = result.cursor
            if feed is not None:
                feed_cursor = cursors[""] = next_feed_cursor
                start = feed.floor(feed_cursor)
                for key in [k for k in cursors if k]:
                    if _decode_cursor(cursors[key], "c")[0] <= start:
                        del cursors[key]
            deadline = time.monotonic() + interval
            while not stop() and (left := deadline - time.monotonic()) > 0:
                time.sleep(min(left, 0.05))

    # -- internals --------------------------------------------------------

    def _record(self, id: ItemId, score: ScoreLike, data: Any, deleted: bool) -> Record:
        item_id = check_id(id)
        stored_score = to_score(score)
        if data is not None:
            check_data(data)
        record = Record(item_id, stored_score, deleted, data, self._clock())
        size = len(encoding.encode(TimelineValue({item_id: record}), compress_at=1 << 62))
        if size > self.max_item_bytes:
            raise ValueTooLargeError(
                f"item {item_id!r:.80} encodes to {size} bytes; max_item_bytes is "
                f"{self.max_item_bytes}"
            )
        return record

    def _encode_checked(self, value: TimelineValue) -> bytes:
        data = encoding.encode(value)
        if len(data) > self.max_value_bytes:
            raise ValueTooLargeError(
                f"timeline value would be {len(data)} bytes; max_value_bytes is "
                f"{self.max_value_bytes} (lower max_items or store less obj_data)"
            )
        return data

    def _read(self, key: str, *, skip_corrupt: bool = False, repair: bool = True) -> _Read:
        fetched = self.connection.fetch(self.bucket, key)
        values: list[TimelineValue] = []
        corrupt: list[CorruptValueError] = []
        for i, sibling in enumerate(fetched.siblings):
            try:
                values.append(encoding.decode(sibling))
            except CorruptValueError as exc:
                corrupt.append(
                    CorruptValueError(f"key {key!r}, sibling {i}: {exc}", key=key)
                )
        self.stats.add(reads=1)
        merged = merge(values, self.max_items)
        if corrupt and not skip_corrupt:
            error = corrupt[0]
            error.partial = merged
            raise error
        repaired = repair and len(fetched.siblings) > 1 and not corrupt \
            and self._repair(key, merged, fetched)
        return _Read(merged, fetched, corrupt, repaired)

    def _repair(self, key: str, merged: TimelineValue, fetched: Fetched) -> bool:
        data = encoding.encode(merged)
        if len(data) > self.max_value_bytes:
            warnings.warn(
                f"not read-repairing {key!r}: merged value is {len(data)} bytes, over "
                f"max_value_bytes={self.max_value_bytes}",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        try:
            self.connection.store(self.bucket, key, data, fetched.context)
        except BackendError as exc:
            # The read itself succeeded; a failed repair loses nothing (the
            # siblings are still there) and the next read tries again.
            _log.warning("read repair of %r failed: %s", key, exc)
            return False
        self.stats.add(repairs=1, siblings_merged=len(fetched.siblings))
        return True

    def _write(self, key: str, record: Record, raw: bool) -> list[Any]:
        # Read, merge the new record in, store with the read's context: the
        # store replaces exactly the siblings merged here, and any sibling
        # written meanwhile survives beside it. A corrupt sibling raises
        # before anything is written.
        read = self._read(check_key(key), repair=False)
        merged = merge([read.value], self.max_items, extra=[record])
        data = self._encode_checked(merged)
        self.connection.store(self.bucket, key, data, read.fetched.context)
        self.stats.add(writes=1, siblings_merged=max(0, len(read.fetched.siblings) - 1))
        if self.feed is not None:
            self.feed.written(self.bucket, [key], record.arrived)
        return self._present(merged, raw)

    def _ordered(self, value: TimelineValue) -> list[Record]:
        records = value.newest_first()
        return records if self.order == "desc" else records[::-1]

    def _present(self, value: TimelineValue, raw: bool) -> list[Any]:
        records = self._ordered(value)
        return self._items(records if raw else [r for r in records if not r.deleted], raw)

    @staticmethod
    def _items(records: list[Record], raw: bool) -> list[Any]:
        if raw:
            return list(records)
        return [r.id if r.data is None else r.data for r in records]


def _digest(record: Record) -> bytes:
    packed = msgpack.packb([record.id, record.score, record.deleted, record.arrived])
    return hashlib.blake2b(packed, digest_size=8).digest()


def _decode_cursor(cursor: object, kind: str) -> Any:
    """A page cursor's position ``(score, id kind, id)``, or a change cursor's
    ``(mark, digests)``; ``InvalidCursorError`` for anything timak did not make."""
    body = decode_cursor(cursor, kind)
    if kind == "p" and _valid_position(body):
        return (body[1], body[2], body[3])
    if kind == "c" and _valid_change_cursor(body):
        return body[1], [bytes(d) for d in body[2]]
    raise damaged(cursor, "page cursor" if kind == "p" else "change cursor")


def _valid_position(body: list[Any]) -> bool:
    # [p, score, id kind, id]: the id kind is order_key's flag, 0 for an int
    # id and 1 for a str id. A mismatched flag would make the cursor compare
    # an int with a str at an equal score (TypeError), and a NaN score
    # compares false with everything (a silently empty page).
    if len(body) != 4:
        return False
    _, score, flag, item_id = body
    try:
        check_score(score)
        check_id(item_id)
    except InvalidInputError:
        return False
    return type(flag) is int and flag == (1 if isinstance(item_id, str) else 0)


def _valid_change_cursor(body: list[Any]) -> bool:
    # [c, mark, digests]: the mark is an arrival time (µs, -1 before any).
    return (
        len(body) == 3
        and type(body[1]) is int
        and -1 <= body[1] <= INT64_RANGE[1]
        and isinstance(body[2], list)
        and all(isinstance(d, bytes) and len(d) == 8 for d in body[2])
    )
