"""The global change feed: which timeline keys were written, and when.

``Timeline(conn, feed=Feed(conn))`` notes every write in the feed; then
``Feed.poll`` (or ``Timeline.watch()`` without keys) answers "which keys
changed since I last looked" without listing every key of the store.

How it is stored
================
The feed lives in its own bucket (``timak.feed``) on the same store, through
the same backend contract, so it works wherever timelines do. Time is cut
into *periods* of ``partition_seconds``; each period of each timeline bucket
is split into ``shards`` keys, ``"{bucket}|{period}|{shard}"``. Each such key
holds an ordinary timak value with one record per write: id
``"{arrived} {key}"``, score ``arrived`` (the writer's clock, µs). One record
per write rather than per key, because a record per key would let a newer
write hide a lagging writer's older one, which a poll must still report.

Writers never coordinate: ``written`` is one blind write per shard it
touches (no read). A writer that sees ``fold_at`` siblings under a feed key
(or, on stores that cannot count them, that wrote it ``fold_at`` times
itself) folds it: read, merge, store with the read's context.

Bounds
======
* Siblings per feed key: about ``fold_at`` where the store counts siblings
  (memory, SQLite, Riak); about ``W * fold_at`` with ``W`` writing processes
  where it cannot (Cassandra).
* Records per feed key: ``capacity`` (default 10,000). A period of one bucket
  therefore holds ``shards * capacity`` writes (40,000 per 10 seconds by
  default, 4,000 writes a second) before anything is dropped. The writes
  dropped are the oldest of an overfull shard, and a poll that needed them
  warns with ``FeedOverflowWarning`` and counts them in ``stats.overflows``.
  Size for your peak: raise ``shards`` (each poll reads ``shards`` keys per
  period) or lower ``partition_seconds``. A full key is about
  ``capacity * (len(key) + 30)`` bytes before compression.
* Tombstones on Cassandra: folds delete whole ranges of one writer's
  siblings (see ``timak.backends.cassandra``), so a feed key gathers a few
  range markers per writer process, not one per write; ``prune`` leaves one
  partition tombstone per feed key it deletes.

Every ``Feed`` on one feed bucket must use the same ``partition_seconds``
and ``shards``: a reader finds writes only where its own settings look.

Delivery
========
A poll reports every key written with ``arrived > floor``, where ``floor``
is the cursor's mark minus ``skew_us``; the mark is the reader's clock when
the previous poll began. So a write is reported if its writer's clock was
at most ``skew_us`` behind the reader's (``skew_us`` must also cover
replication delay). A writer that lags more may be missed. Delivery is at
least once: the cursor remembers up to ``max_cursor_seen`` writes it
already reported inside the window and skips them; beyond that (a busy
window: with the defaults, above about 600 writes a second) the oldest are
reported again. One poll never repeats a key. A poll decodes every write
in the periods its window overlaps, so its cost grows with the write rate.

The first poll without a cursor reports writes since the reader's clock
minus ``skew_us``. Cursors are plain strings: store one and poll with it
after a restart. Feed periods older than the retention are deleted by
``prune``, which computes their keys from the clock (see ``prune``); a poll
whose cursor reaches into pruned periods raises ``CursorExpiredError``
rather than skip what it can no longer see.

The feed reports keys, not changes: ``Timeline.changes`` reads what changed
in each, so a store must let a read see a write that completed before it
(quorum reads and writes); with weaker reads a key may be reported before
its timeline read shows the change.

This module is over 400 lines: a third of it is this contract, and the rest
is one class whose write, poll and prune paths share the key layout and
the fold policy; split apart, each half would need the other's internals.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import _encoding as encoding
from ._cursors import damaged, decode_cursor, encode_cursor
from ._engine import Engine
from ._options import checked_clock, int_option, number_option
from ._results import Counters, KeyFeed, now_us
from .backends import Backend, UsesBackend
from .backends.base import capabilities, scan_keys
from .errors import (
    ConfigError,
    CursorExpiredError,
    FeedOverflowWarning,
    InvalidCursorError,
    InvalidInputError,
    InvalidKeyError,
)
from .value import INT64_RANGE, Record, TimelineValue, check_key

__all__ = [
    "CursorExpiredError",
    "DEFAULT_BUCKET",
    "Feed",
    "FeedOverflowWarning",
    "FeedStats",
]

#: The bucket the feed keeps its periods in, beside the timelines.
DEFAULT_BUCKET = "timak.feed"
_PRUNED_KEY = "pruned"  # no "|": never a period key
_PRUNED_ID = "through"
#: Where ``prune`` notes how far it has deleted (``_PRUNED_KEY`` says how far
#: polls may reach; it moves first, before the deletes).
_DELETED_KEY = "deleted"
#: The timeline buckets the feed holds periods of: one record per bucket tag,
#: written blind by each Feed object the first time it notes that bucket,
#: scored ``-arrived`` so that merging keeps the earliest write.
_BUCKETS_KEY = "buckets"
#: How many timeline buckets ``_BUCKETS_KEY`` keeps, whatever ``capacity`` is.
_MAX_BUCKETS = 10_000
#: Feed keys ``prune`` reads at once to see which of its computed keys exist.
_PRUNE_BATCH = 256
# A bucket name longer than this is replaced by its digest in feed keys, so a
# feed key stays within the 1024 bytes every backend accepts.
_MAX_BUCKET_IN_KEY = 960
_COUNTED_KEYS = 4096
_log = logging.getLogger("timak")


@dataclass
class FeedStats(Counters):
    """Counters of one ``Feed`` object since it was made."""

    written: int = 0
    folds: int = 0
    fold_errors: int = 0
    polls: int = 0
    overflows: int = 0
    pruned: int = 0


class Feed(UsesBackend, KeyFeed):
    """A change feed on ``connection`` (a ``Backend`` or a store URL), kept in
    ``bucket``. See the module docstring for storage, bounds and delivery.

    >>> from timak import Timeline
    >>> from timak.backends import connect
    >>> store = connect("memory://")
    >>> feed = Feed(store)
    >>> tl = Timeline(store, feed=feed)
    >>> cursor = feed.poll()[1]
    >>> tl.add("alice:home", 1, 100)
    [1]
    >>> keys, cursor = feed.poll(cursor)
    >>> keys
    ['alice:home']
    >>> feed.poll(cursor)[0]
    []
    """

    def __init__(
        self,
        connection: Backend | str | os.PathLike[str],
        bucket: str = DEFAULT_BUCKET,
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
    ) -> None:
        # Every option is checked before the connection is opened.
        self.partition_us = int(number_option("partition_seconds", partition_seconds) * 1e6)
        if self.partition_us < 1000:
            raise ConfigError(
                f"partition_seconds must be at least 0.001, got {partition_seconds!r}"
            )
        self.shards = int_option("shards", shards, 1)
        self.capacity = int_option("capacity", capacity, 1)
        self.skew_us = int_option("skew_us", skew_us, 0)
        self.fold_at = int_option("fold_at", fold_at, 2)
        self.max_cursor_seen = int_option("max_cursor_seen", max_cursor_seen, 0)
        self.retention_us = int(number_option("retention_seconds", retention_seconds) * 1e6)
        if self.retention_us <= skew_us + self.partition_us:
            raise ConfigError("retention_seconds must exceed partition_seconds plus the skew")
        # A poll must at least cover its own window (floor .. now + skew).
        least_periods = (2 * skew_us) // self.partition_us + 2
        self.max_periods_per_poll = int_option(
            "max_periods_per_poll (for this skew_us and partition_seconds)",
            max_periods_per_poll, least_periods,
        )
        self.bucket = check_key(bucket, "bucket")
        self._clock = checked_clock(clock)
        self._use_backend(connection)
        self.stats = FeedStats()
        # The feed's values are timelines like any other: the engine reads,
        # merges and folds them. Only the current periods' keys take
        # writes, so few keys are counted for folding.
        self._engine = Engine(self.connection, self.bucket, capacity=self.capacity,
                              fold_at=self.fold_at, max_counted_keys=_COUNTED_KEYS,
                              partial_folds=False)
        self._marks = Engine(self.connection, self.bucket, capacity=1, fold_at=self.fold_at)
        #: Bucket tags this object has noted in ``_BUCKETS_KEY``.
        self._registered: set[str] = set()

    # -- writing ----------------------------------------------------------

    def written(self, bucket: str, keys: Sequence[str], arrived: int) -> None:
        """Note that ``keys`` of timeline bucket ``bucket`` were written at
        ``arrived`` (µs, the writer's clock): one blind write per shard.

        ``Timeline`` calls this after its own writes. Raises
        ``InvalidInputError`` for an ``arrived`` that is not an int of µs in
        ``[0, 2**63)`` (it would be stored and never read back) or ``keys``
        given as one str. A failed fold of a full feed key is logged and
        counted in ``stats.fold_errors``, never raised: the writes are stored.
        """
        if type(arrived) is not int or not 0 <= arrived <= INT64_RANGE[1]:
            raise InvalidInputError(f"arrived must be an int of µs since the epoch, got "
                                    f"{arrived!r:.40}")
        if isinstance(keys, str | bytes):
            raise InvalidKeyError(f"keys must be a sequence of keys, not one str: {keys!r:.60}")
        period = arrived // self.partition_us
        shards: dict[int, list[Record]] = {}
        for key in keys:
            record_id = f"{arrived} {key}"
            shard = zlib.crc32(record_id.encode("utf-8")) % self.shards
            shards.setdefault(shard, []).append(Record(record_id, arrived, arrived=arrived))
        entries = []
        for shard, records in shards.items():
            if len(records) > self.capacity:
                warnings.warn(
                    f"{len(records)} keys in one feed write overflow capacity={self.capacity}; "
                    "raise Feed(shards=...) or write in smaller chunks",
                    FeedOverflowWarning,
                    stacklevel=2,
                )
            value = TimelineValue.of(records, self.capacity)
            entries.append((self._key(bucket, period, shard), encoding.encode(value)))
        tag = self._bucket_tag(bucket)
        if tag not in self._registered:
            # Its value states _MAX_BUCKETS: folds keep that, whatever capacity is.
            record = Record(tag, -arrived, arrived=arrived)
            entries.append((_BUCKETS_KEY, encoding.encode(TimelineValue.of([record],
                                                                            _MAX_BUCKETS))))
        engine = self._engine.stats
        folds, errors = engine.folds, engine.fold_errors
        # Folding is housekeeping: the writes (and the timeline write that
        # called us) are stored first, and a failed fold is logged and
        # counted, never raised; the next write past fold_at tries again.
        self._engine.blind_many(entries, arrived)
        self._registered.add(tag)
        self.stats.add(written=len(keys), folds=engine.folds - folds,
                       fold_errors=engine.fold_errors - errors)

    # -- reading ----------------------------------------------------------

    def poll(
        self, cursor: str | None = None, *, bucket: str = "timelines"
    ) -> tuple[list[str], str]:
        """The keys of timeline bucket ``bucket`` written since ``cursor``, and
        the cursor to poll with next.

        Keys come once each, in the order of their first write since the
        cursor. Without a cursor: writes since now minus ``skew_us``. A cursor
        far behind is caught up ``max_periods_per_poll`` periods at a time.

        Raises ``CursorExpiredError`` if the cursor reaches into pruned
        periods, ``InvalidCursorError`` for a cursor of another bucket or not
        from a Feed, ``CorruptValueError`` for undecodable feed bytes.
        """
        tag = self._bucket_tag(check_key(bucket, "bucket"))
        now = self._clock()
        if cursor is None:
            mark, seen = now, frozenset[bytes]()
        else:
            mark, seen = self._decode_cursor(cursor, tag)
        floor = mark - self.skew_us
        first = (floor + 1) // self.partition_us
        last = min((now + self.skew_us) // self.partition_us,
                   first + self.max_periods_per_poll - 1)
        records = self._read_periods(tag, first, last, floor)
        # Checked after reading: prune marks before it deletes, so a period
        # that was gone when read is always seen as pruned here.
        self._check_not_pruned(floor)
        fresh = sorted(
            (r for r in records if r.score > floor and _digest(r) not in seen),
            key=lambda r: (r.score, r.id),
        )
        # Caught up to ``now``, the next poll starts at ``now - skew``. Behind,
        # it must start right after the last period read: its floor (mark -
        # skew) is the last microsecond of that period, because a poll
        # reports ``arrived > floor`` and a write at the first microsecond of
        # the next period must not fall between two polls.
        new_mark = max(mark, min(now, (last + 1) * self.partition_us - 1 + self.skew_us))
        window = sorted(
            (r for r in records if r.score > new_mark - self.skew_us),
            key=lambda r: (r.score, r.id),
            reverse=True,
        )
        keep = [_digest(r) for r in window[: self.max_cursor_seen]]
        self.stats.add(polls=1)
        keys = dict.fromkeys(_timeline_key(r) for r in fresh)
        return list(keys), self._encode_cursor(tag, new_mark, keep)

    def floor(self, cursor: str | None = None) -> int:
        """The arrival time (µs) after which ``poll(cursor)`` reports writes."""
        if cursor is None:
            return self._clock() - self.skew_us
        mark, _ = self._decode_cursor(cursor, None)
        return mark - self.skew_us

    def cursor_at(self, since_us: int, *, bucket: str = "timelines") -> str:
        """A cursor from which ``poll`` reports writes that arrived at or after
        ``since_us`` (µs since the epoch)."""
        tag = self._bucket_tag(check_key(bucket, "bucket"))
        return self._encode_cursor(tag, since_us - 1 + self.skew_us, [])

    def oldest_cursor(self, *, bucket: str = "timelines") -> str:
        """A cursor from the oldest period the feed still holds for ``bucket``
        (now, if none). Lists the feed bucket's keys: a full scan on
        Cassandra and Riak."""
        tag = self._bucket_tag(check_key(bucket, "bucket"))
        periods = [period for _, feed_tag, period in self._period_keys() if feed_tag == tag]
        since = self._pruned_through()
        if periods:
            since = max(since, min(periods) * self.partition_us)
        else:
            since = max(since, self._clock() - self.skew_us)
        return self.cursor_at(since, bucket=bucket)

    def _read_periods(self, tag: str, first: int, last: int, floor: int) -> list[Record]:
        feed_keys = [
            self._key_for_tag(tag, period, shard)
            for period in range(first, last + 1)
            for shard in range(self.shards)
        ]
        records: list[Record] = []
        for feed_key, fetched in zip(
            feed_keys, self.connection.fetch_many(self.bucket, feed_keys), strict=True
        ):
            if not fetched.siblings:
                continue
            value = self._engine.joined(feed_key, fetched)
            if len(value) >= self.capacity and min(r.score for r in value.values()) > floor:
                self.stats.add(overflows=1)
                warnings.warn(
                    f"feed key {feed_key!r} is full (capacity={self.capacity}): writes since "
                    "the cursor may have been dropped; raise Feed(shards=...)",
                    FeedOverflowWarning,
                    stacklevel=3,
                )
            records.extend(value.values())
        return records

    # -- retention --------------------------------------------------------

    def prune(self, older_than: float | None = None, *, scan: bool = False) -> int:
        """Delete the feed periods that ended more than ``older_than`` seconds
        ago (default: ``retention_seconds``); return how many feed keys went.
        Run it now and then (hourly, say). Polls whose cursor reaches into a
        deleted period raise ``CursorExpiredError`` from then on.

        The keys to delete follow from the clock: every period between where
        the previous prune stopped and the new horizon, for each timeline
        bucket the feed holds (which writers note once per ``Feed`` object),
        each of its ``shards``. They are read in batches, and those holding
        something are deleted; no key is listed, so it works on stores that
        cannot list keys, and costs no full scan on Cassandra and Riak.

        The feed bucket's keys are listed instead (a full scan on Cassandra
        and Riak; ``ConfigError`` on stores that cannot) at the first prune of
        a store that can list them, which may hold periods written before
        timak noted buckets, and with ``scan=True``: a writer whose clock lags
        the pruning one's by more than the retention writes into periods
        already pruned, which only a scan finds.
        """
        horizon = self.retention_us if older_than is None else int(older_than * 1_000_000)
        if horizon <= self.skew_us:
            raise ConfigError("older_than must exceed the feed's skew window")
        through = (self._clock() - horizon) // self.partition_us * self.partition_us
        self._mark_pruned(through)
        deleted_through = self._marks.read(_DELETED_KEY, repair=False).view.get(_PRUNED_ID)
        if scan or (deleted_through is None and capabilities(self.connection).keys):
            expired = [
                feed_key
                for feed_key, _, period in self._period_keys()
                if (period + 1) * self.partition_us <= through
            ]
        else:
            start = None if deleted_through is None else int(deleted_through.score)
            expired = self._expired_keys(start, through)
        for feed_key in expired:
            self.connection.delete(self.bucket, feed_key)
        self._marks.write(_DELETED_KEY, [Record(_PRUNED_ID, through)])
        self.stats.add(pruned=len(expired))
        return len(expired)

    def _expired_keys(self, start: int | None, through: int) -> list[str]:
        """The feed keys of the periods from ``start`` (µs; None: the
        earliest write noted) to ``through`` that hold something."""
        buckets = self._engine.read(_BUCKETS_KEY, repair=False).view
        if start is None:
            if not buckets:
                return []
            start = -max(int(r.score) for r in buckets.values())
        candidates = [
            self._key_for_tag(tag, period, shard)
            for tag in sorted(str(tag) for tag in buckets)
            for period in range(start // self.partition_us, through // self.partition_us)
            for shard in range(self.shards)
        ]
        expired = []
        for first in range(0, len(candidates), _PRUNE_BATCH):
            batch = candidates[first : first + _PRUNE_BATCH]
            fetched = self.connection.fetch_many(self.bucket, batch)
            expired += [key for key, f in zip(batch, fetched, strict=True) if f.siblings]
        return expired

    def _period_keys(self) -> list[tuple[str, str, int]]:
        """``(feed key, bucket tag, period)`` of every period key in the feed bucket."""
        found = []
        for feed_key in scan_keys(self.connection, self.bucket, "Feed.prune"):
            rest, _, shard = feed_key.rpartition("|")
            tag, _, period = rest.rpartition("|")
            if tag and shard.isdigit() and period.lstrip("-").isdigit():
                found.append((feed_key, tag, int(period)))
        return found

    def _mark_pruned(self, through: int) -> None:
        self._marks.write(_PRUNED_KEY, [Record(_PRUNED_ID, through)])

    def _pruned_through(self) -> int:
        record = self._marks.read(_PRUNED_KEY, repair=False).view.get(_PRUNED_ID)
        return int(record.score) if record is not None else 0

    def _check_not_pruned(self, floor: int) -> None:
        through = self._pruned_through()
        if floor + 1 < through:
            raise CursorExpiredError(
                f"feed cursor reaches back to arrival {floor + 1} µs, but feed periods before "
                f"{through} µs were pruned; poll without a cursor to start again from now",
                pruned_through=through,
            )

    # -- keys and cursors -------------------------------------------------

    def _key(self, bucket: str, period: int, shard: int) -> str:
        return self._key_for_tag(self._bucket_tag(bucket), period, shard)

    @staticmethod
    def _key_for_tag(tag: str, period: int, shard: int) -> str:
        return f"{tag}|{period}|{shard}"

    @staticmethod
    def _bucket_tag(bucket: str) -> str:
        if len(bucket.encode("utf-8")) <= _MAX_BUCKET_IN_KEY:
            return bucket
        return "#" + hashlib.blake2b(bucket.encode("utf-8"), digest_size=16).hexdigest()

    @staticmethod
    def _encode_cursor(tag: str, mark: int, seen: list[bytes]) -> str:
        check = hashlib.blake2b(tag.encode("utf-8"), digest_size=4).digest()
        return encode_cursor("f", [check, mark, seen])

    @staticmethod
    def _decode_cursor(cursor: object, tag: str | None) -> tuple[int, frozenset[bytes]]:
        body = decode_cursor(cursor, "f", "feed cursor")
        if not (
            len(body) == 4
            and isinstance(body[1], bytes)
            and type(body[2]) is int
            and isinstance(body[3], list)
            and all(isinstance(d, bytes) for d in body[3])
        ):
            raise damaged(cursor, "feed cursor")
        if tag is not None and body[1] != hashlib.blake2b(
            tag.encode("utf-8"), digest_size=4
        ).digest():
            raise InvalidCursorError("this feed cursor was made for another timeline bucket")
        return body[2], frozenset(body[3])



def _digest(record: Record) -> bytes:
    return hashlib.blake2b(str(record.id).encode("utf-8"), digest_size=8).digest()


def _timeline_key(record: Record) -> str:
    return str(record.id).partition(" ")[2]
