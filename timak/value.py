"""The timeline value: a bounded set of records and its merge. Pure, no I/O.

A *record* is ``(id, score, deleted, data, arrived)``; ``arrived`` is the
writer's clock at write time, in microseconds, kept only for the change
feed. A *value* maps each id to one record and states its *capacity*: how
many records the timeline keeps. Concurrent writers produce several values
(siblings) for one key; ``merge`` joins them:

1. take, per id, the largest record in the order
   ``(score, deleted, tiebreak, arrived)``: a higher score wins; at an equal
   score a delete wins; a remaining tie is broken by the encoded
   ``(score, data)`` bytes, so the winner never depends on read order, even
   between records that Python calls equal but that encode differently
   (``1``, ``True`` and ``1.0``; ``0.0`` and ``-0.0``), and a clock decides
   only between records that are otherwise identical (a retried write),
   where it picks the later arrival;
2. the capacity of the join is the smallest of the capacities the values
   state and the ``capacity`` the caller joins in (a value that states
   none, such as a blind write's single record, counts as unbounded);
3. keep the ``capacity`` records that are largest by ``(score, id)``.
   Tombstones count toward capacity.

================================================  ====================================
writes (any order, any replica)                   merged state
================================================  ====================================
add(a, 5)                                         a visible at 5
add(a, 5), add(a, 7)                              a visible at 7
add(a, 5), delete(a, 5)                           a deleted (delete wins the tie)
add(a, 7), delete(a, 5)                           a visible at 7 (later add wins)
delete(a, 7), add(a, 5)                           a deleted (the add is older)
capacity 2: add(a,1), add(b,2), add(c,3)          b, c; a fell off the end
capacity 2: add(a,1), add(b,2), del(b,2)          only a visible; b's tombstone
                                                  holds a slot, so a stale sibling
                                                  holding c(0) cannot come back
add(a, 5, data=1), add(a, 5, data=True)           a with data ``True``: its encoding
                                                  (0xc3) sorts above ``1`` (0x01)
capacity 5000 value, capacity-less blind record   capacity 5000: a blind write never
                                                  shrinks a timeline
capacity 3 value, capacity 5 value                capacity 3 (the smaller)
================================================  ====================================

Step 1 is a per-id maximum; step 2 is a minimum, so a value's capacity only
ever shrinks along a chain of merges; step 3 never drops a record that a
later merge would keep: a record dropped because ``k`` ids beat it is beaten
by at least as many ids in every later merge, whose capacity is at most
``k``. So ``merge`` is commutative, associative and idempotent: every
replica converges whatever the order. (A *larger* capacity winning would
break this: a record trimmed at 1,000 on one replica but kept at 5,000 on
another would come back or not depending on the merge order.) Because
tombstones hold slots, a value's records beyond capacity cannot be
resurrected by a stale sibling (Roshi's separate add/remove trimming could).
``timak.timelines`` keeps capacities from ever differing in practice: a
read-modify-write by a ``Timeline`` configured for another capacity is
refused (``ConfigError``), and reads and repairs use the stored capacity.

Laziness: a record decoded from storage keeps its data as the encoded bytes
until ``Record.data`` is read, and a value decoded from storage keeps each
run (chunk) of records undecoded until it is needed. The merge compares
records by their encoded bytes, so it never decodes or re-encodes data.
When the large values share a tail (the same stored chunks and rows:
siblings that concurrent writers made from one value, or a single large
value) and everything else adds few records, the result keeps the tail
undecoded and unchanged but for the leading chunks the new records reach
into (new posts on top reach none; a write that lost a race by a few
microseconds, or a delete, reaches one or a few), and only the rest is
decoded and merged; anything else takes the general path, which decodes
every record (never their data).

``Record`` and ``Chunk`` live in ``timak._records``; this module keeps the
join and the input checks that every entry point shares, which is why it
runs a little over 400 lines.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping

import msgpack

from ._records import Chunk, ItemId, Record, Score, order_key, unpack_data
from .errors import (
    CorruptValueError,
    InvalidDataError,
    InvalidInputError,
    InvalidItemError,
    InvalidKeyError,
    InvalidScoreError,
)

__all__ = [
    "ItemId",
    "MAX_ID_BYTES",
    "MAX_KEY_BYTES",
    "Record",
    "Score",
    "TimelineValue",
    "merge",
]

#: Longest string id, in UTF-8 bytes.
MAX_ID_BYTES = 1024
INT64_RANGE = (-(2**63), 2**63 - 1)
#: Longest key or bucket name, in UTF-8 bytes: every backend accepts this
#: much (``timak.backends.base`` re-exports it as part of the contract).
MAX_KEY_BYTES = 1024
# Values of more than this many records count as large: a merge keeps
# their encoded chunks where it can (``_merge_onto_largest``).
_SMALL = 64


class TimelineValue(Mapping[ItemId, Record]):
    """An immutable map of id -> ``Record``, at most ``capacity`` of them
    (nothing reassigns ``capacity`` or ``legacy`` after construction).

    ``TimelineValue(records, capacity=None)``: ``capacity`` is what the value
    states about its timeline (``None``: nothing, as for a blind write).
    Iteration yields ids newest first. ``legacy`` marks a value decoded from
    a format that had no capacity.
    """

    __slots__ = ("_chunks", "_dict", "_len", "_where", "capacity", "checked", "legacy")

    def __init__(
        self, records: Mapping[ItemId, Record] | None = None, *, capacity: int | None = None
    ) -> None:
        ordered = sorted((records or {}).values(), key=order_key, reverse=True)
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
        ):
            raise ValueError(f"capacity must be an int of at least 1, got {capacity!r}")
        if capacity is not None and len(ordered) > capacity:
            raise ValueError(f"{len(ordered)} records exceed capacity {capacity}")
        self._chunks = [Chunk([r.id for r in ordered], ordered)] if ordered else []
        self._len = len(ordered)
        self._dict: dict[ItemId, Record] | None = None
        self._where: dict[ItemId, tuple[int, int]] | None = None
        self.capacity = capacity
        self.legacy = False
        #: Whether every byte behind this value was checked in full
        #: (``timak._encoding.validate``): a cache, not part of the value.
        self.checked = True

    @classmethod
    def from_chunks(
        cls, chunks: list[Chunk], capacity: int | None, *, legacy: bool = False
    ) -> TimelineValue:
        """A value made of ``chunks`` (newest first, ids unique across them)."""
        value = cls.__new__(cls)
        value._chunks = [c for c in chunks if c.ids]
        value._len = sum(len(c.ids) for c in value._chunks)
        value._dict = None
        value._where = None
        value.capacity = capacity
        value.legacy = legacy
        value.checked = False
        return value

    @classmethod
    def of(cls, records: Iterable[Record], capacity: int | None) -> TimelineValue:
        """The value holding the winning record per id, trimmed to ``capacity``."""
        return merge([], capacity, extra=records)

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        """The value's runs of records, newest first (for the encoder)."""
        return tuple(self._chunks)

    def _index(self) -> dict[ItemId, tuple[int, int]]:
        where = self._where
        if where is None:
            where = self._where = {
                item_id: (n, pos)
                for n, chunk in enumerate(self._chunks)
                for pos, item_id in enumerate(chunk.ids)
            }
        return where

    def __getitem__(self, item_id: ItemId) -> Record:
        if self._dict is not None:
            return self._dict[item_id]
        n, pos = self._index()[item_id]
        return self._chunks[n].records()[pos]

    def __contains__(self, item_id: object) -> bool:
        try:
            return item_id in self._index()
        except TypeError:  # unhashable
            return False

    def __iter__(self) -> Iterator[ItemId]:
        return itertools.chain.from_iterable(c.ids for c in self._chunks)

    def __len__(self) -> int:
        return self._len

    def _as_dict(self) -> dict[ItemId, Record]:
        if self._dict is None:
            self._dict = {r.id: r for r in self.iter_newest()}
        return self._dict

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TimelineValue):
            return self._as_dict() == other._as_dict()
        return NotImplemented

    def __hash__(self) -> int:  # pragma: no cover - values are not meant as keys
        raise TypeError("TimelineValue is not hashable")

    def __repr__(self) -> str:
        return f"TimelineValue({self.newest_first()!r}, capacity={self.capacity!r})"

    def iter_newest(self, hint: int | None = None) -> Iterator[Record]:
        """Every record, tombstones included, newest first, decoding chunks
        only as the iteration reaches them; ``hint``: how many records the
        caller expects to take (it may take more), so that only those are
        decoded first."""
        for chunk in self._chunks:
            if hint is not None and 0 < hint < len(chunk.ids):
                first = chunk.prefix(hint)
                yield from first[:hint]
                yield from chunk.records()[hint:]
            else:
                yield from chunk.records()
            if hint is not None:
                hint -= len(chunk.ids)

    def newest_first(self) -> list[Record]:
        """Every record, tombstones included, largest ``order_key`` first."""
        return list(self.iter_newest())

    def visible(self) -> list[Record]:
        """The records that are not deleted, newest first."""
        return [r for r in self.iter_newest() if not r.deleted]

    def newest(self) -> Record | None:
        """The record with the largest ``order_key``, or ``None`` if empty."""
        return self._chunks[0].prefix(1)[0] if self._chunks else None

    def trimmed(self, capacity: int | None) -> TimelineValue:
        """This value stating ``capacity``, without records beyond it
        (``None``: stating none, and keeping every record)."""
        if self.capacity == capacity and (capacity is None or len(self) <= capacity):
            return self
        if capacity is None:
            return TimelineValue.from_chunks(list(self._chunks), None)
        return TimelineValue.from_chunks(_head(self._chunks, capacity), capacity)


def _head(chunks: Iterable[Chunk], count: int) -> list[Chunk]:
    out: list[Chunk] = []
    for chunk in chunks:
        if count <= 0:
            break
        out.append(chunk if len(chunk.ids) <= count else chunk.head(count))
        count -= len(chunk.ids)
    return out


def merge(
    values: Iterable[Mapping[ItemId, Record]],
    capacity: int | None = None,
    *,
    extra: Iterable[Record] = (),
) -> TimelineValue:
    """Join ``values`` (and ``extra`` records, as one more value) into one.

    The join states the smallest of the capacities that ``values`` state
    and ``capacity`` (``None``: the caller adds none), and keeps that many
    records; when nothing states a capacity, it states none and keeps every
    record (a join of blind writes is never trimmed by whoever joins them).
    See the module docstring for the rules and why they form a lattice.
    """
    return join(values, capacity, extra=extra)


def join(
    values: Iterable[Mapping[ItemId, Record]],
    capacity: int | None = None,
    *,
    extra: Iterable[Record] = (),
    reuse_above: int = _SMALL,
) -> TimelineValue:
    """``merge``, with the one speed knob the engine sets: values with more
    than ``reuse_above`` records keep their encoded chunks when everything
    else is newer (a partial fold passes the size of its second largest
    value, so the previous delta is kept as it is). It never changes the
    result."""
    big = reuse_above
    if capacity is not None and (
        isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
    ):
        raise ValueError("capacity must be at least 1")
    vals = [v if isinstance(v, TimelineValue) else TimelineValue(v) for v in values]
    records = list(extra)
    stated = [c for c in (capacity, *(v.capacity for v in vals)) if c is not None]
    cap = min(stated) if stated else None
    fast = _merge_onto_largest(vals, records, cap, big)
    if fast is not None:
        return fast
    winners: dict[ItemId, Record] = {}
    for value in vals:
        _absorb(winners, value.iter_newest())
    _absorb(winners, records)
    if cap is not None and len(winners) > cap:
        kept = heapq.nlargest(cap, winners.values(), key=order_key)
    else:
        kept = sorted(winners.values(), key=order_key, reverse=True)
    return TimelineValue.from_chunks([Chunk([r.id for r in kept], kept)], cap)


def _absorb(winners: dict[ItemId, Record], records: Iterable[Record]) -> None:
    for record in records:
        current = winners.get(record.id)
        if current is None or (current is not record and record.beats(current)):
            winners[record.id] = record


def _merge_onto_largest(
    vals: list[TimelineValue], extra: list[Record], cap: int | None, big: int
) -> TimelineValue | None:
    """The join when some values are large: the tail of records they share
    (the same stored bytes: siblings that concurrent writes made from one
    value) keeps its chunks as they are, except a leading run of them that
    the other records reach into (records older than the tail's newest, written by writers
    whose clocks or writes interleaved; an id the tail holds, replaced or
    deleted), which is decoded and merged with them. ``None`` when no
    value is large."""
    bigs: list[TimelineValue] = []
    small: list[TimelineValue] = []
    for value in vals:
        if any(value is seen for seen in bigs):
            continue
        (bigs if len(value) > big else small).append(value)
    if not bigs:
        return None
    if len(bigs) == 1 and not small and not extra:
        return bigs[0].trimmed(cap)
    # No bound on the rest: this path decodes at most what the general one
    # would (several writers' full folds, stored at once, leave several
    # bases whose heads differ: 8 of them took the general path, decoding
    # 8,000 records where 800 differ).
    heads, tail = _shared_tail(bigs)
    winners: dict[ItemId, Record] = {}
    _absorb(winners, heads)
    for value in small:
        _absorb(winners, value.iter_newest())
    _absorb(winners, extra)
    # Which ids the tail holds too: one pass in C over its ids, no index;
    # only the chunks holding them are decoded.
    opened = 0  # the leading tail chunks to decode and merge
    replaced: set[ItemId] = set()
    in_tail = winners.keys() & set(itertools.chain.from_iterable(c.ids for c in tail))
    if in_tail:
        for n, chunk in enumerate(tail):
            if in_tail.isdisjoint(chunk.ids):
                continue
            for held in chunk.records():
                record = winners.get(held.id)
                if record is None:
                    continue
                if record is not held and record.beats(held):
                    replaced.add(held.id)
                    opened = n + 1
                else:
                    del winners[held.id]
    fresh = sorted(winners.values(), key=order_key, reverse=True)
    if fresh:
        # Chunks are ordered and disjoint: open each one whose newest
        # record is not older than the oldest new record. The last opened
        # chunk's oldest record says whether the next can be reached at all
        # (so a compressed chunk is inflated only when it must be).
        lowest = order_key(fresh[-1])
        while opened < len(tail):
            if opened and order_key(tail[opened - 1].records()[-1]) < lowest:
                break
            if order_key(tail[opened].prefix(1)[0]) < lowest:
                break
            opened += 1
    if opened:
        kept = [r for c in tail[:opened] for r in c.records() if r.id not in replaced]
        fresh = sorted(fresh + kept, key=order_key, reverse=True)
        tail = tail[opened:]
    chunks = [Chunk([r.id for r in fresh], fresh), *tail] if fresh else tail
    return TimelineValue.from_chunks(chunks if cap is None else _head(chunks, cap), cap)


def _shared_tail(bigs: list[TimelineValue]) -> tuple[list[Record], list[Chunk]]:
    """The chunks that end every value in ``bigs`` alike (compressed chunks
    with the same bytes, then a common run of rows), and the records before."""
    runs = [v.chunks for v in bigs]
    if len(runs) == 1:
        return [], list(runs[0])
    shortest = min(map(len, runs))
    shared = 0
    while shared < shortest:
        ends = [run[len(run) - 1 - shared] for run in runs]
        if ends[0].blob is None or not all(
            c.blob == ends[0].blob and len(c.ids) == len(ends[0].ids) for c in ends[1:]
        ):
            break
        shared += 1
    tail = list(runs[0][len(runs[0]) - shared :])
    common = 0
    if shared < shortest:
        ends = [run[len(run) - 1 - shared] for run in runs]
        common = _common_rows(ends)
        if common:
            tail.insert(0, ends[0].tail(len(ends[0].ids) - common))
    heads: list[Record] = []
    for run in runs:
        stop = len(run) - shared
        for n, chunk in enumerate(run[:stop]):
            if n == stop - 1 and common:
                keep = len(chunk.ids) - common
                heads += chunk.prefix(keep)[:keep]
            else:
                heads += chunk.records()
    return heads, tail


def _common_rows(chunks: list[Chunk]) -> int:
    """How many rows the plain ``chunks`` end alike with (ids and bytes)."""
    if any(c.rows is None for c in chunks):
        return 0
    low, high = 0, min(len(c.ids) for c in chunks)
    first = chunks[0]
    while low < high:  # the longest common suffix, by bisection on its length
        mid = (low + high + 1) // 2
        ids, rows = first.ids[-mid:], first.rows[-mid:]  # type: ignore[index]
        if all(c.ids[-mid:] == ids and c.rows[-mid:] == rows for c in chunks[1:]):  # type: ignore[index]
            low = mid
        else:
            high = mid - 1
    return low


# -- validation -------------------------------------------------------------
# The checks live in the pure layer so every entry point (Timeline, CLI,
# Django adapter) rejects the same inputs with the same errors.


def check_key(key: object, what: str = "key") -> str:
    """Return ``key`` if it is a usable timeline key or bucket name, else raise
    ``InvalidKeyError`` naming the problem."""
    if type(key) is str and key.isascii() and 0 < len(key) <= MAX_KEY_BYTES:
        return key  # fast path for fan-out: ASCII length is its UTF-8 length
    if not isinstance(key, str):
        raise InvalidKeyError(f"{what} must be a str, got {type(key).__name__}: {key!r:.80}")
    if not key:
        raise InvalidKeyError(f"{what} must not be empty")
    size = _utf8_size(key, InvalidKeyError, what)
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(f"{what} is {size} bytes of UTF-8; the limit is {MAX_KEY_BYTES}")
    return key


def _utf8_size(text: str, error: type[InvalidInputError], what: str) -> int:
    """The UTF-8 length of ``text``; lone surrogates raise ``error``."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise error(f"{what} is not valid Unicode text: {exc}") from None


def check_id(item_id: object) -> ItemId:
    """Return ``item_id`` if it is a non-empty str or a 64-bit int, else raise."""
    if isinstance(item_id, bool) or not isinstance(item_id, int | str):
        raise InvalidItemError(
            f"item id must be an int or a str, got {type(item_id).__name__}: {item_id!r:.80}"
        )
    if isinstance(item_id, int):
        if not INT64_RANGE[0] <= item_id <= INT64_RANGE[1]:
            raise InvalidItemError(f"integer item id {item_id} does not fit in 64 bits")
    elif not item_id:
        raise InvalidItemError("item id must not be empty")
    else:
        size = _utf8_size(item_id, InvalidItemError, "item id")
        if size > MAX_ID_BYTES:
            raise InvalidItemError(f"item id is {size} bytes; the limit is {MAX_ID_BYTES}")
    return item_id


def check_score(score: object) -> Score:
    """Return ``score`` if it is a finite int or float in range, else raise."""
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise InvalidScoreError(
            f"score must be a number, datetime or ISO-8601 string, got "
            f"{type(score).__name__}: {score!r:.80}"
        )
    if isinstance(score, float) and not math.isfinite(score):
        raise InvalidScoreError(f"score must be finite, got {score}")
    if isinstance(score, int) and not INT64_RANGE[0] <= score <= INT64_RANGE[1]:
        raise InvalidScoreError(f"integer score {score} does not fit in 64 bits")
    return score


def check_data(data: object) -> bytes:
    """Return the encoding of ``data`` as item data, or raise
    ``InvalidDataError`` if it cannot be stored.

    Item data is what msgpack encodes without extension types: None, bool,
    int (64-bit), float, str, bytes, and lists/tuples and dicts of those.
    The check is the one a read makes (``timak._records``): whatever is
    stored decodes again, so a value that cannot decode never poisons its
    key (msgpack packs a tuple dict key that unpacks as an unhashable list).
    """
    try:
        packed: bytes = msgpack.packb(data)
        unpack_data(packed)
    except (TypeError, ValueError, OverflowError, CorruptValueError) as exc:
        reason = str(exc).removeprefix("item data does not decode: ")
        raise InvalidDataError(
            f"obj_data cannot be stored ({reason}); use JSON-like data: "
            "dict, list, str, int, float, bool, None or bytes"
        ) from None
    return packed
