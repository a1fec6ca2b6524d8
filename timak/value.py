"""The timeline value: a bounded set of records and its merge. Pure, no I/O.

A *record* is ``(id, score, deleted, data, arrived)``; ``arrived`` is the
writer's clock at write time, in microseconds, kept only for the change
feed. A *value* maps each id to one record. Concurrent writers produce
several values (siblings) for one key; ``merge`` joins them:

1. take, per id, the largest record in the order
   ``(score, deleted, tiebreak, arrived)``: a higher score wins; at an equal
   score a delete wins; a remaining tie is broken by the encoded
   ``(score, data)`` bytes, so the winner never depends on read order, and a
   clock decides only between records that are otherwise identical (a
   retried write), where it picks the later arrival;
2. keep the ``capacity`` records that are largest by ``(score, id)``.
   Tombstones count toward capacity.

=========================================  ====================================
writes (any order, any replica)            merged state
=========================================  ====================================
add(a, 5)                                  a visible at 5
add(a, 5), add(a, 7)                       a visible at 7
add(a, 5), delete(a, 5)                    a deleted (delete wins the tie)
add(a, 7), delete(a, 5)                    a visible at 7 (later add wins)
delete(a, 7), add(a, 5)                    a deleted (the add is older)
capacity 2: add(a,1), add(b,2), add(c,3)   b, c; a fell off the end
capacity 2: add(a,1), add(b,2), del(b,2)   only a visible; b's tombstone
                                           holds a slot, so a stale sibling
                                           holding c(0) cannot come back
=========================================  ====================================

Step 1 is a per-id maximum and step 2 never drops a record that a later
merge would keep (a record dropped because ``capacity`` ids beat it is beaten
by at least as many ids in every later merge), so ``merge`` is commutative,
associative and idempotent: every replica converges whatever the order.
Because tombstones hold slots, a value's records beyond capacity cannot be
resurrected by a stale sibling (Roshi's separate add/remove trimming could).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from .errors import (
    InvalidDataError,
    InvalidInputError,
    InvalidItemError,
    InvalidKeyError,
    InvalidScoreError,
)

__all__ = [
    "INT64_RANGE",
    "ItemId",
    "MAX_ID_BYTES",
    "Record",
    "Score",
    "TimelineValue",
    "check_data",
    "check_id",
    "check_key",
    "check_score",
    "merge",
    "order_key",
]

ItemId = int | str
Score = int | float

#: Longest string id, in UTF-8 bytes.
MAX_ID_BYTES = 1024
INT64_RANGE = (-(2**63), 2**63 - 1)
_MAX_KEY_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Record:
    """One item's state: its id, score, whether it is deleted, its data, and
    when it arrived (writer's clock, microseconds since the epoch; 0 if unknown).

    A tombstone (``deleted=True``) never carries data. ``arrived`` never
    decides between records that differ in anything else.
    """

    id: ItemId
    score: Score
    deleted: bool = False
    data: Any = None
    arrived: int = 0

    def beats(self, other: Record) -> bool:
        """Whether this record wins over ``other``, a record for the same id."""
        if self.score != other.score:
            return self.score > other.score
        if self.deleted != other.deleted:
            return self.deleted
        mine, theirs = _tiebreak(self), _tiebreak(other)
        if mine != theirs:
            return mine > theirs
        return self.arrived > other.arrived


def _tiebreak(record: Record) -> bytes:
    # Reached only for two records with equal score and delete flag: rare, so
    # the cost of packing is fine. Packing the score too separates 1 and 1.0.
    packed: bytes = msgpack.packb([record.score, record.data])
    return packed


def order_key(record: Record) -> tuple[Score, int, ItemId]:
    """The sort key that decides which records a timeline keeps: larger is newer.

    Ids of different types never compare directly: integers sort below strings.
    """
    return (record.score, 1 if isinstance(record.id, str) else 0, record.id)


class TimelineValue(Mapping[ItemId, Record]):
    """An immutable map of id -> ``Record``, at most ``capacity`` of them."""

    __slots__ = ("_records",)

    def __init__(self, records: Mapping[ItemId, Record] | None = None) -> None:
        self._records: dict[ItemId, Record] = dict(records or {})

    @classmethod
    def of(cls, records: Iterable[Record], capacity: int) -> TimelineValue:
        """The value holding the winning record per id, trimmed to ``capacity``."""
        return merge([], capacity, extra=records)

    def __getitem__(self, item_id: ItemId) -> Record:
        return self._records[item_id]

    def __iter__(self) -> Iterator[ItemId]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TimelineValue):
            return self._records == other._records
        return NotImplemented

    def __hash__(self) -> int:  # pragma: no cover - values are not meant as keys
        raise TypeError("TimelineValue is not hashable")

    def __repr__(self) -> str:
        return f"TimelineValue({self.newest_first()!r})"

    def newest_first(self) -> list[Record]:
        """Every record, tombstones included, largest ``order_key`` first."""
        return sorted(self._records.values(), key=order_key, reverse=True)

    def visible(self) -> list[Record]:
        """The records that are not deleted, newest first."""
        return [r for r in self.newest_first() if not r.deleted]


def merge(
    values: Iterable[Mapping[ItemId, Record]],
    capacity: int,
    *,
    extra: Iterable[Record] = (),
) -> TimelineValue:
    """Join ``values`` (and ``extra`` records) into one value of ``capacity``.

    See the module docstring for the rules and why they form a lattice.
    """
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    winners: dict[ItemId, Record] = {}
    for value in values:
        _absorb(winners, value.values())
    _absorb(winners, extra)
    if len(winners) > capacity:
        kept = heapq.nlargest(capacity, winners.values(), key=order_key)
        winners = {r.id: r for r in kept}
    return TimelineValue(winners)


def _absorb(winners: dict[ItemId, Record], records: Iterable[Record]) -> None:
    for record in records:
        current = winners.get(record.id)
        # Siblings mostly repeat each other's records; equal records need no
        # tie-break (which packs both), so compare them first.
        if current is None or (record != current and record.beats(current)):
            winners[record.id] = record


# -- validation -------------------------------------------------------------
# The checks live in the pure layer so every entry point (Timeline, CLI,
# Django adapter) rejects the same inputs with the same errors.


def check_key(key: object, what: str = "key") -> str:
    """Return ``key`` if it is a usable timeline key or bucket name, else raise
    ``InvalidKeyError`` naming the problem."""
    if type(key) is str and key.isascii() and 0 < len(key) <= _MAX_KEY_BYTES:
        return key  # fast path for fan-out: ASCII length is its UTF-8 length
    if not isinstance(key, str):
        raise InvalidKeyError(f"{what} must be a str, got {type(key).__name__}: {key!r:.80}")
    if not key:
        raise InvalidKeyError(f"{what} must not be empty")
    size = _utf8_size(key, InvalidKeyError, what)
    if size > _MAX_KEY_BYTES:
        raise InvalidKeyError(f"{what} is {size} bytes of UTF-8; the limit is {_MAX_KEY_BYTES}")
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


def check_data(data: object) -> None:
    """Raise ``InvalidDataError`` unless ``data`` can be stored as item data.

    Item data is what msgpack encodes without extension types: None, bool,
    int (64-bit), float, str, bytes, and lists/tuples and dicts of those.
    """
    def refuse_extension(code: int, _: bytes) -> object:
        raise ValueError(f"msgpack extension type {code} (ExtType) is not item data")

    try:
        # Unpack too: msgpack packs a tuple dict key that unpacks as an
        # unhashable list, and a value that cannot decode poisons its key.
        packed = msgpack.packb(data)
        unpacked = msgpack.unpackb(packed, raw=False, strict_map_key=False,
                                   ext_hook=refuse_extension, timestamp=1)
        # ext_hook never sees msgpack.Timestamp (extension -1); unpacked as a
        # float it no longer packs to the same bytes.
        if msgpack.packb(unpacked) != packed:
            raise ValueError("msgpack extension types (Timestamp) are not item data")
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidDataError(
            f"obj_data cannot be stored ({exc}); use JSON-like data: "
            "dict, list, str, int, float, bool, None or bytes"
        ) from None
