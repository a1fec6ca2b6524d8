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

Over 400 lines on purpose: ``Timeline`` is the API most users touch, and
each public method carries its contract in its docstring. The machinery
lives beside it: folding after blind writes in ``timak._folds``, polling in
``timak._changes``, result types in ``timak._results``.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from . import _changes, _folds
from . import _encoding as encoding
from ._cursors import decode_page_cursor, encode_cursor
from ._folding import FoldPolicy
from ._options import checked_clock, int_option
from ._records import order_key
from ._results import (
    Change,
    Changes,
    CompactStats,
    KeyFeed,
    Page,
    TimelineStats,
    now_us,
)
from ._scores import ScoreLike, to_score, to_scores
from .backends import MAX_KEY_BYTES, Backend, Fetched, UsesBackend
from .backends.base import scan_keys
from .errors import (
    ConfigError,
    CorruptValueError,
    InvalidKeyError,
    InvalidScoreError,
    ValueTooLargeError,
)
from .value import (
    ItemId,
    Record,
    TimelineValue,
    check_data,
    check_id,
    check_key,
    merge,
)

__all__ = [
    "Change",
    "Changes",
    "CompactStats",
    "FOLD_AT",
    "MAX_ITEM_BYTES",
    "MAX_VALUE_BYTES",
    "Page",
    "Timeline",
    "TimelineStats",
]


#: Default largest encoded value: Riak is at its best under 1 MB.
MAX_VALUE_BYTES = 1024 * 1024
#: Default largest single item (its encoded record, data included); the
#: capacity lowers it further (see ``Timeline.item_limit``).
MAX_ITEM_BYTES = 64 * 1024
#: The capacity of a new key written by ``Timeline(max_items=None)``.
DEFAULT_CAPACITY = 1000
#: Blind writes fold a key once it holds this many siblings.
FOLD_AT = 16
# Decoded small siblings kept by their bytes. Fan-out writes the same bytes
# to every key, so the siblings a fold meets are mostly the same few dozen
# values: decoding each once per process halved the cost of a fold.
_SMALL_CACHE_BYTES = 2048
_SMALL_CACHE_MAX = 512


@dataclass
class _Read:
    value: TimelineValue
    fetched: Fetched
    corrupt: list[CorruptValueError]
    #: Whether the key's capacity was fixed before this read (a sibling
    #: stated it, or an old-format value held more than the default).
    fixed: bool = False
    #: Whether this read stored the merge of several siblings (read repair).
    repaired: bool = False


class Timeline(UsesBackend):
    """Timelines of at most ``max_items`` items each, stored one value per key.

    ``connection`` is a ``Backend`` or a store URL (``sqlite:///timak.db``,
    ``cassandra://...``); a Timeline closes only a backend it opened itself.
    ``order`` is ``"desc"`` (newest first) or ``"asc"``; it changes only the
    order results come back in: the newest ``max_items`` are always kept.

    Capacity: each key stores its capacity, set by the write that created
    it (``max_items``, or ``DEFAULT_CAPACITY`` when ``max_items`` is
    ``None``). Reads, read repair, ``fold`` and ``compact`` always use the
    stored capacity, so reading a key with another ``max_items`` loses
    nothing; ``add`` and ``delete`` on a key whose stored capacity differs
    from ``max_items`` raise ``ConfigError`` before writing, and
    ``max_items=None`` adopts whatever the key stores. A key written only
    by an older timak (no stored capacity) is read with
    ``max(max_items, items it holds)``.

    Size: an item (its encoded record) may take at most ``item_limit``
    bytes: ``max_item_bytes``, and at most ``max_value_bytes / (capacity +
    48)``, so that a full timeline, whatever it holds, stays under
    ``max_value_bytes``. Items over it are refused before anything is
    written; merged values are never refused for size, so read repair,
    folds and deletes always work.

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
        max_items: int | None = 1000,
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
        self.max_items = None if max_items is None else int_option("max_items", max_items, 1)
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
        self._folds = FoldPolicy(self.fold_at)
        self._blind_lock = threading.Lock()
        self._small: dict[bytes, TimelineValue] = {}

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

    def item_limit(self, capacity: int | None = None) -> int:
        """The largest encoded item, in bytes, on a timeline of ``capacity``
        (default: ``max_items``, else ``DEFAULT_CAPACITY``)."""
        slots = (capacity or self.max_items or DEFAULT_CAPACITY) + encoding.CHUNK_ROWS
        return min(self.max_item_bytes, self.max_value_bytes // slots)

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
        collect ``fold_at`` siblings are folded (read, merged, written back):
        partially (the small siblings into one delta beside the untouched
        base) where the store can narrow a context, else fully.

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
        value = self._sized(record, None)
        self._remember(value, TimelineValue({record.id: record}))
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
        (data ignored). The items are one sibling, merged like any other.

        Every item is checked first, as ``add`` checks one (each within
        ``item_limit()``). Of the items, the newest ``max_items`` (or the
        default capacity) are written, so that the sibling stays within
        ``max_value_bytes``. Like every blind write the sibling states no
        capacity: it never shrinks the timeline it joins.
        """
        key = check_key(key)
        records = [
            self._record(i, score, None if deleted else data, deleted=deleted)
            for i, score, data in items
        ]
        for record in records:
            self._sized(record, None)
        if records:
            winners = merge([], self.max_items or DEFAULT_CAPACITY, extra=records)
            value = encoding.encode(TimelineValue(dict(winners.items())))
            self._blind([key], value, max(r.arrived for r in records))
        return len(records)

    def count(self, key: str) -> int:
        """How many visible (not deleted) items ``key`` holds; reads like ``get``.
        Counts by the records' deleted flags, never by decoding their data."""
        return sum(1 for r in self._read(check_key(key)).value.values() if not r.deleted)

    def _blind(self, keys: list[str], value: bytes, arrived: int) -> int:
        written: int = _folds.blind(self, keys, value, arrived)
        return written

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
        self,
        keys: Iterable[str] | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        workers: int = 1,
    ) -> CompactStats:
        """Fold every key of the bucket (or ``keys``): the sweep for keys that
        get blind writes and are rarely read. Listing every key is a full scan
        on Cassandra and Riak: run it off-peak.

        ``keys`` are checked before the first read, as ``fanout`` checks them
        (``InvalidKeyError``). ``folded`` counts keys whose merge was stored,
        not keys whose repair failed or was skipped.

        ``workers`` threads fold keys at once (default 1). On Cassandra and
        Riak each key costs round trips, so a sweep is bound by latency and
        runs about ``workers`` times faster up to what the cluster serves;
        folds of different keys never conflict. SQLite gains little: its
        writes take turns. ``progress(n)`` gets the number of keys swept.
        """
        if isinstance(keys, str | bytes):
            raise InvalidKeyError(f"compact takes an iterable of keys, not one "
                                  f"{type(keys).__name__} ({keys!r:.60}): pass [key]")
        workers = int_option("workers", workers, 1)
        stats = CompactStats()
        todo = (
            scan_keys(self.connection, self.bucket, "compact() without keys=")
            if keys is None else [check_key(k) for k in keys]
        )
        if workers == 1:
            results: Iterable[tuple[bool, int]] = map(self._compact_one, todo)
            self._tally(results, stats, progress)
            return stats
        with concurrent.futures.ThreadPoolExecutor(workers, "timak-compact") as pool:
            # A few batches in flight, not every key at once: a listing of
            # millions of keys stays a stream.
            batches = _batched(todo, workers * 4)
            self._tally(
                (r for batch in batches for r in pool.map(self._compact_one, batch)),
                stats, progress,
            )
        return stats

    def _compact_one(self, key: str) -> tuple[bool, int]:
        """Fold one key for ``compact``: (corrupt, siblings merged if folded)."""
        try:
            read = self._read(key)
        except CorruptValueError:
            return True, 0
        return False, len(read.fetched.siblings) if read.repaired else 0

    @staticmethod
    def _tally(results: Iterable[tuple[bool, int]], stats: CompactStats,
               progress: Callable[[int], None] | None) -> None:
        for corrupt, merged in results:
            stats.keys += 1
            if corrupt:
                stats.corrupt += 1
            elif merged:
                stats.folded += 1
                stats.siblings_merged += merged
            if progress:
                progress(stats.keys)

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
        after = None if cursor is None else decode_page_cursor(cursor)
        value = self._read(check_key(key)).value
        records: Iterable[Record]
        if self.order == "desc":
            # Newest first is the stored order: decode only as far as the page.
            records = value.iter_newest(None if after is not None or raw else limit + 1)
            if after is not None:
                records = itertools.dropwhile(lambda r: order_key(r) >= after, records)
        else:
            records = value.newest_first()[::-1]
            if after is not None:
                records = [r for r in records if order_key(r) > after]
        taken = list(itertools.islice((r for r in records if raw or not r.deleted), limit + 1))
        next_cursor = None
        if len(taken) > limit:
            del taken[limit:]
            next_cursor = encode_cursor("p", list(order_key(taken[-1])))
        return Page(self._items(taken, raw), next_cursor)

    def scan(
        self,
        key: str,
        after: tuple[Any, int, ItemId] | None = None,
        *,
        hint: int | None = None,
        skip_corrupt: bool = False,
    ) -> Iterator[Record]:
        """Every record of ``key``, tombstones included, newest first (whatever
        ``order``), below the position ``after`` (an ``order_key``:
        ``(score, 0 for an int id or 1 for a str, id)``), lazily.

        The key is read (and repaired, as ``get`` does) when ``scan`` is
        called; records are decoded as the iteration reaches them, and each
        record's data only when it is read. ``hint``: how many records the
        caller expects to take, so that only those are decoded first. For
        readers that page by their own rule (``timak.activity``).
        """
        value = self._read(check_key(key), skip_corrupt=skip_corrupt).value
        records = value.iter_newest(hint if after is None else None)
        if after is not None:
            records = itertools.dropwhile(lambda r: order_key(r) >= after, records)
        return records

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
        return _changes.changes(self, check_key(key), since)

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
        return _changes.watch(
            self, keys, interval, {} if cursors is None else cursors, feed_cursor, stop
        )


    # -- internals --------------------------------------------------------

    def _record(self, id: ItemId, score: ScoreLike, data: Any, deleted: bool) -> Record:
        item_id = check_id(id)
        stored_score = to_score(score)
        if data is not None:
            check_data(data)
        return Record(item_id, stored_score, deleted, data, self._clock())

    def _sized(self, record: Record, capacity: int | None) -> bytes:
        """The record as a one-record value, if it fits ``item_limit``.

        Tombstones always fit: a delete is never refused for size."""
        single = encoding.encode(TimelineValue({record.id: record}))
        limit = self.item_limit(capacity)
        if len(single) > limit and not record.deleted:
            slots = (capacity or self.max_items or DEFAULT_CAPACITY) + encoding.CHUNK_ROWS
            raise ValueTooLargeError(
                f"item {record.id!r:.80} encodes to {len(single)} bytes, over {limit}: "
                f"max_item_bytes is {self.max_item_bytes}, and max_value_bytes is "
                f"{self.max_value_bytes} shared by {slots} slots (capacity + "
                f"{encoding.CHUNK_ROWS}), so that a full timeline always fits"
            )
        return single

    def _read(self, key: str, *, skip_corrupt: bool = False, repair: bool = True) -> _Read:
        fetched = self.connection.fetch(self.bucket, key)
        read = self._merged(key, fetched, skip_corrupt=skip_corrupt)
        if repair and len(fetched.siblings) > 1 and not read.corrupt:
            read.repaired = self._repair(key, read.value, fetched)
        return read

    def _merged(self, key: str, fetched: Fetched, *, skip_corrupt: bool) -> _Read:
        """Decode and merge the siblings of one fetch at the key's capacity."""
        values, corrupt = encoding.decode_siblings(
            fetched.siblings, f"key {key!r}", key=key, decode_one=self._decode
        )
        self.stats.add(reads=1)
        stated = [v.capacity for v in values if v.capacity is not None]
        capacity = min(stated) if stated else self.max_items or DEFAULT_CAPACITY
        fixed = bool(stated)
        if not fixed and any(v.legacy for v in values):
            # Written by an older timak, which stored no capacity: keep all
            # it holds, and at least the configured capacity.
            held = len(merge(values, encoding.MAX_CAPACITY))
            fixed = held > capacity
            capacity = max(capacity, held)
        merged = merge(values, capacity)
        if corrupt and not skip_corrupt:
            error = corrupt[0]
            error.partial = merged
            raise error
        return _Read(merged, fetched, corrupt, fixed)

    def _decode(self, sibling: bytes) -> TimelineValue:
        if len(sibling) > _SMALL_CACHE_BYTES:
            return encoding.decode(sibling, lazy=True)
        value = self._small.get(sibling)
        if value is None:
            value = encoding.decode(sibling, lazy=True)
            self._remember(sibling, value)
        return value

    def _remember(self, data: bytes, value: TimelineValue) -> None:
        if len(data) <= _SMALL_CACHE_BYTES:
            with self._blind_lock:
                if len(self._small) >= _SMALL_CACHE_MAX:
                    del self._small[next(iter(self._small))]
                self._small[data] = value

    def _repair(self, key: str, merged: TimelineValue, fetched: Fetched) -> bool:
        # The read itself succeeded; a failed repair loses nothing (the
        # siblings are still there), is logged, and the next read tries again.
        fold = _folds.Fold(key, encoding.encode(merged), fetched.context,
                           len(fetched.siblings), partial=False)
        if not _folds.store_fold(self, fold):
            return False
        self.stats.add(repairs=1, siblings_merged=fold.merged)
        return True

    def _write(self, key: str, record: Record, raw: bool) -> list[Any]:
        # Read, merge the new record in, store with the read's context: the
        # store replaces exactly the siblings merged here, and any sibling
        # written meanwhile survives beside it. A corrupt sibling raises
        # before anything is written.
        read = self._read(check_key(key), repair=False)
        capacity = read.value.capacity
        assert capacity is not None  # _merged always states one
        if self.max_items is not None and read.fixed and capacity != self.max_items:
            raise ConfigError(
                f"key {key!r} holds a timeline of capacity {capacity}, but this Timeline has "
                f"max_items={self.max_items}; writing would trim or resurrect items. Use "
                "Timeline(max_items=None) to adopt the stored capacity"
            )
        self._sized(record, capacity)
        merged = merge([read.value], capacity, extra=[record])
        data = encoding.encode(merged)
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


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """``items`` in lists of ``size`` (the last may be shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
