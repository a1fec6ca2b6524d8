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
each public method carries its contract in its docstring. It checks
arguments and presents results; everything that fetches, checks, merges,
repairs or folds values is the engine's (``timak._engine``), polling is in
``timak._changes``, result types in ``timak._results``.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal

from . import _changes
from . import _encoding as encoding
from ._cursors import decode_page_cursor, encode_cursor
from ._engine import DEFAULT_CAPACITY, Engine, Read
from ._options import checked_clock, int_option
from ._records import Record, order_key
from ._results import (
    Change,
    Changes,
    CompactStats,
    KeyFeed,
    Page,
    TimelineStats,
    Visible,
    now_us,
    shown,
)
from ._scores import ScoreLike, to_score, to_scores
from .backends import MAX_KEY_BYTES, Backend, UsesBackend
from .backends.base import limits, scan_keys
from .errors import (
    ConfigError,
    InvalidKeyError,
    InvalidScoreError,
    ValueTooLargeError,
)
from .value import (
    ItemId,
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
    "Visible",
]


#: The bound on one encoded timeline value where a store declares none;
#: each store declares its own (``timak.backends.base.StoreLimits``,
#: the table in docs/scaling.md): 15 MiB on Cassandra, 16 MiB elsewhere.
MAX_VALUE_BYTES = 16 * 1024 * 1024
#: Default largest single item (its encoded record, data included); the
#: capacity may lower it (see ``Timeline.item_limit``).
MAX_ITEM_BYTES = 64 * 1024
#: Blind writes fold a key once it holds this many siblings.
FOLD_AT = 16
#: The room every slot must have: an id-only record with a 36-byte id (a
#: UUID's text) and a datetime score (a Timeline that leaves less is refused at construction).
MIN_ITEM_BYTES = len(encoding.encode(TimelineValue(
    {"x" * 36: Record("x" * 36, 2**62, arrived=2**62)})))


class Timeline(UsesBackend):
    """Timelines of at most ``max_items`` items each, stored one value per key.

    ``connection`` is a ``Backend``, a store URL (``sqlite:///timak.db``,
    ``cassandra://...``) or a path to a SQLite file (``BASE_DIR /
    "timak.db"``); anything else raises ``ConfigError``. A Timeline closes
    only a backend it opened itself.
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
    bytes: ``max_item_bytes`` (64 KiB), and at most ``max_value_bytes /
    (capacity + 48)``, so that a full timeline, whatever it holds, stays
    under ``max_value_bytes``. Items over it are refused before anything
    is written (``ValueTooLargeError``); merged values are never refused for
    size, so read repair, folds and deletes always work.
    ``max_value_bytes`` defaults to the store's own bound (its
    ``StoreLimits``: 15 MiB on Cassandra, 16 MiB on memory, SQLite and
    Riak), so that with the defaults capacity 1,000 takes items up to
    15 KiB and capacity 100,000 items of about 150 bytes. Settings that
    leave a slot less room than an id-only record (``MIN_ITEM_BYTES``)
    raise ``ConfigError`` here, saying what to change.

    Every option is checked here: a bad one raises ``ConfigError`` (a bad
    ``bucket``, ``InvalidKeyError``), and so does a ``connection`` that is
    neither a backend, a URL nor a path (``os.PathLike``: a SQLite file).
    ``max_items`` may be at most ``2**31``. ``clock``
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
        connection: Backend | str | os.PathLike[str] | None = None,
        bucket: str = "timelines",
        order: Literal["desc", "asc"] = "desc",
        max_items: int | None = 1000,
        *,
        max_value_bytes: int | None = None,
        max_item_bytes: int = MAX_ITEM_BYTES,
        fold_at: int = FOLD_AT,
        skew_us: int = 5_000_000,
        feed: KeyFeed | None = None,
        clock: Callable[[], int] = now_us,
    ) -> None:
        if order not in ("desc", "asc"):
            raise ConfigError(f"order must be 'desc' or 'asc', got {order!r}")
        self.max_items = (
            None if max_items is None
            else int_option("max_items", max_items, 1, encoding.MAX_CAPACITY)
        )
        if max_value_bytes is not None:
            int_option("max_value_bytes", max_value_bytes, 1)
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
        store_limits = limits(self.connection)
        self.max_value_bytes = (
            store_limits.value_bytes if max_value_bytes is None else max_value_bytes
        )
        try:
            hard = store_limits.hard_value_bytes
            if hard is not None and self.max_value_bytes > hard:
                raise ConfigError(
                    f"max_value_bytes={self.max_value_bytes} is over what the store accepts "
                    f"({hard} bytes): values that large would be refused when written"
                )
            self._check_room()
        except ConfigError:
            self.close()
            raise
        self.stats = TimelineStats()
        self._engine = Engine(
            self.connection, self.bucket, capacity=self.max_items, fold_at=self.fold_at,
            stats=self.stats, written=self._note_written if feed is not None else None,
        )

    def _check_room(self) -> None:
        """Refuse settings under which not even an id-only item fits."""
        capacity = self.max_items or DEFAULT_CAPACITY
        if self.item_limit() >= MIN_ITEM_BYTES:
            return
        most = self.max_value_bytes // MIN_ITEM_BYTES - encoding.CHUNK_ROWS
        fix = (f"lower max_items (at most {most} here) or raise max_value_bytes"
               if self.max_item_bytes >= MIN_ITEM_BYTES and most > 0
               else "raise max_value_bytes / max_item_bytes")
        raise ConfigError(
            f"max_items={capacity} leaves {self.item_limit()} bytes per item "
            f"(max_value_bytes {self.max_value_bytes} shared by {capacity} + "
            f"{encoding.CHUNK_ROWS} slots, max_item_bytes {self.max_item_bytes}), less than "
            f"an id-only item needs ({MIN_ITEM_BYTES}): {fix}"
        )

    def _note_written(self, keys: list[str], arrived: int) -> None:
        assert self.feed is not None
        self.feed.written(self.bucket, keys, arrived)

    # -- the timak 0.1 API ------------------------------------------------

    def get(self, key: str, raw: bool = False, *, skip_corrupt: bool = False) -> list[Any]:
        """The timeline under ``key``, in ``order``.

        Returns item ids, or each item's ``obj_data`` where it has some; with
        ``raw=True``, every ``Record`` including tombstones. Several siblings
        are checked in full, merged, and the merge is written back. A
        corrupt sibling raises ``CorruptValueError`` and nothing is written
        back; with ``skip_corrupt=True`` the other siblings are returned
        instead (still without writing back, so the corrupt bytes stay for
        inspection). A key only ever written blind states no capacity: it
        is shown trimmed to ``max_items`` but never stored trimmed, so a
        reader with a smaller ``max_items`` loses nothing.
        """
        read = self._engine.read(check_key(key), skip_corrupt=skip_corrupt)
        return self._present(read.view, raw)

    def add(
        self, key: str, id: ItemId, score: ScoreLike, obj_data: Any = None, raw: bool = False
    ) -> Visible:
        """Add (or move) item ``id`` at ``score``; return the visible timeline
        (a ``Visible``: a sequence built as far as it is used, equal to the
        list timak 0.1 returned).

        ``score`` is a number, a ``datetime`` (naive means UTC) or an ISO-8601
        string. An item already present with a higher score, or deleted at a
        score at least as high, stays as it is: writes are decided by score.
        """
        return self._write(key, self._record(id, score, obj_data, deleted=False), raw)

    def delete(
        self, key: str, id: ItemId, score: ScoreLike | None = None, raw: bool = False
    ) -> Visible:
        """Delete item ``id``; return the visible timeline (a ``Visible``).

        The delete wins over adds at ``score`` or lower. Without ``score`` the
        item's current score is looked up; if the item is not there, nothing
        is written. Pass the score when a concurrent add of the same item may
        be in flight, so the delete is decided against it rather than
        against whatever this read happened to see.
        """
        key = check_key(key)
        if score is None:
            read = self._engine.read(key)
            found = read.value.get(check_id(id))
            if found is None or found.deleted:
                return Visible(read.view, raw, self.order == "desc")
            score = found.score
        return self._write(key, self._record(id, score, None, deleted=True), raw)

    # -- blind writes -----------------------------------------------------

    def item_limit(self, capacity: int | None = None) -> int:
        """The largest encoded item, in bytes, on a timeline of ``capacity``
        (default: ``max_items``, else ``DEFAULT_CAPACITY``)."""
        return min(self.max_item_bytes, self.max_value_bytes // self._slots(capacity))

    def _slots(self, capacity: int | None) -> int:
        """What ``max_value_bytes`` is shared by: the capacity, plus room for
        a compressed chunk's trimmed tail."""
        return (capacity or self.max_items or DEFAULT_CAPACITY) + encoding.CHUNK_ROWS

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
            written += self._engine.blind(checked[start : start + chunk], value, record.arrived)
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
            value = encoding.encode(winners.trimmed(None))
            self._engine.blind([key], value, max(r.arrived for r in records))
        return len(records)

    def count(self, key: str) -> int:
        """How many visible (not deleted) items ``key`` holds; reads like ``get``.
        Counts by the records' deleted flags, never by decoding their data."""
        return sum(1 for r in self._engine.read(check_key(key)).view.values() if not r.deleted)

    def fold(self, key: str) -> int:
        """Merge the siblings under ``key`` into one; return how many were merged.

        Returns 0, and counts no fold in ``stats.folds``, when there was
        nothing to merge (one sibling or none) or the merge was not stored
        (a store error, logged; the siblings stay for the next read). A key
        with a corrupt sibling is left alone (nothing is lost). Like a read,
        a fold states no capacity that the key's writes did not.
        """
        return self._engine.fold(check_key(key))

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
            results: Iterable[tuple[bool, int]] = map(self._engine.sweep_one, todo)
            self._tally(results, stats, progress)
            return stats
        with concurrent.futures.ThreadPoolExecutor(workers, "timak-compact") as pool:
            # A few batches in flight, not every key at once: a listing of
            # millions of keys stays a stream.
            batches = _batched(todo, workers * 4)
            self._tally(
                (r for batch in batches for r in pool.map(self._engine.sweep_one, batch)),
                stats, progress,
            )
        return stats

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
        records: Iterable[Record]
        if self.order == "desc":
            # Newest first is the stored order: decode only as far as the page.
            records = self.scan(key, after, hint=None if raw else limit + 1)
        else:
            records = self._engine.read(check_key(key)).view.newest_first()[::-1]
            if after is not None:
                records = [r for r in records if order_key(r) > after]
        taken = list(itertools.islice((r for r in records if raw or not r.deleted), limit + 1))
        next_cursor = None
        if len(taken) > limit:
            del taken[limit:]
            next_cursor = encode_cursor("p", list(order_key(taken[-1])))
        return Page(shown(taken, raw), next_cursor)

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
        value = self._engine.read(check_key(key), skip_corrupt=skip_corrupt).view
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
            for r in self._ordered(self._engine.read(check_key(key)).view)
            if (raw or not r.deleted)
            and (low is None or r.score >= low)
            and (high is None or r.score <= high)
        ]
        return shown(records, raw)

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
        return _changes.changes(self._engine.read(key).view, key, since, self.skew_us)

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
            self.changes, self.feed, self.bucket, self._clock() - self.skew_us, self.skew_us,
            keys, interval, {} if cursors is None else cursors, feed_cursor, stop,
        )


    # -- internals --------------------------------------------------------

    def _record(self, id: ItemId, score: ScoreLike, data: Any, deleted: bool) -> Record:
        item_id = check_id(id)
        stored_score = to_score(score)
        if data is None:
            return Record(item_id, stored_score, deleted, None, self._clock())
        # The payload is packed once: the record keeps both the object and
        # its checked encoding, which the encoder copies as it is.
        return Record.checked(item_id, stored_score, deleted, data, check_data(data),
                              self._clock())

    def _sized(self, record: Record, capacity: int | None) -> bytes:
        """The record as a one-record value, if it fits ``item_limit``; the
        engine remembers its decoding (fan-out's folds meet it again).

        Tombstones always fit: a delete is never refused for size."""
        single = self._engine.encode(TimelineValue({record.id: record}))
        self._check_size(record, len(single), capacity)
        return single

    def _check_size(self, record: Record, size: int, capacity: int | None) -> None:
        limit = self.item_limit(capacity)
        if size <= limit or record.deleted:
            return
        slots = self._slots(capacity)
        # A smaller capacity helps only an item within max_item_bytes.
        most = self.max_value_bytes // size - encoding.CHUNK_ROWS
        hint = f"shrink the item, lower max_items (at most {most} for this item)" \
            if most > 0 and size <= self.max_item_bytes else "shrink the item"
        hard = limits(self.connection).hard_value_bytes
        store = f" (the store refuses values over {hard})" if hard else ""
        raise ValueTooLargeError(
            f"item {record.id!r:.80} encodes to {size} bytes, over {limit}: "
            f"max_item_bytes is {self.max_item_bytes}, and max_value_bytes is "
            f"{self.max_value_bytes} shared by {slots} slots (capacity + "
            f"{encoding.CHUNK_ROWS}), so that a full timeline always fits; {hint}, or "
            f"raise max_item_bytes, or max_value_bytes{store}"
        )

    def _read(self, key: str, *, skip_corrupt: bool = False, repair: bool = True) -> Read:
        """The engine's read (for tests and tools that inspect a key)."""
        return self._engine.read(key, skip_corrupt=skip_corrupt, repair=repair)

    def _write(self, key: str, record: Record, raw: bool) -> Visible:
        key = check_key(key)

        size = 0 if record.deleted else len(encoding.encode(TimelineValue({record.id: record})))

        def fits(capacity: int) -> None:
            self._check_size(record, size, capacity)

        merged = self._engine.write(key, [record], fits)
        return Visible(merged, raw, self.order == "desc")

    def _ordered(self, value: TimelineValue) -> list[Record]:
        records = value.newest_first()
        return records if self.order == "desc" else records[::-1]

    def _present(self, value: TimelineValue, raw: bool) -> list[Any]:
        records = self._ordered(value)
        return shown(records if raw else [r for r in records if not r.deleted], raw)


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """``items`` in lists of ``size`` (the last may be shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
