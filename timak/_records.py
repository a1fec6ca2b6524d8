"""Records and chunks of records: the parts of a timeline value. Pure, no I/O.

``timak.value`` re-exports what is public here (``Record``, ``order_key``)
and holds the rules that join values; this module holds what one record is
(with its data kept encoded until it is read, and compared by its encoding)
and what a run of records decoded on demand is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgpack

from .errors import CorruptValueError, InvalidDataError

__all__ = ["NIL", "Chunk", "ItemId", "Record", "Score", "order_key", "unpack_data"]

ItemId = int | str
Score = int | float

#: msgpack's encoding of ``None``: the encoded data of a record without data.
NIL = b"\xc0"
_UNSET: Any = object()


# The first bytes of msgpack's extension types (fixext 1-16, ext 8/16/32).
# Item data never holds one (``check_data`` refuses them), so a value whose
# data bytes contain none of these cannot hold one either; the bytes also
# occur inside text, where the slower exact check below decides.
_EXT_MARK = re.compile(rb"[\xc7-\xc9\xd4-\xd8]")


def _refuse_extension(code: int, _: bytes) -> object:
    raise ValueError(f"msgpack extension type {code} is not item data")


def unpack_data(raw: bytes) -> Any:
    """Decode one item's data: exactly one msgpack object without extension
    types, else ``CorruptValueError``.

    msgpack hands its Timestamp extension (-1) to no hook; decoded as a
    float it no longer packs to the stored bytes, which is how one is found
    (item data is always msgpack's own canonical encoding)."""
    try:
        data = msgpack.unpackb(raw, raw=False, strict_map_key=False,
                               ext_hook=_refuse_extension, timestamp=1)
        if _EXT_MARK.search(raw) is not None and msgpack.packb(data) != raw:
            raise ValueError("item data holds a msgpack extension type or is not canonical")
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise CorruptValueError(f"item data does not decode: {exc}") from None
    return data


def _pack_data(data: Any) -> bytes:
    try:
        packed: bytes = msgpack.packb(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidDataError(f"item data cannot be encoded: {exc}") from None
    return packed


class Record:
    """One item's state: its id, score, whether it is deleted, its data, and
    when it arrived (writer's clock, microseconds since the epoch; 0 if unknown).

    ``Record(id, score, deleted=False, data=None, arrived=0)``. A tombstone
    (``deleted=True``) never carries data. ``arrived`` never decides between
    records that differ in anything else. Treat records as immutable.

    A record read from storage holds its data encoded (``encoded_data``) and
    decodes it the first time ``data`` is read; data that does not decode
    raises ``CorruptValueError`` there. Two records are equal when their id,
    delete flag, arrival and encoded ``(score, data)`` are: ``1``, ``True``
    and ``1.0`` are different data here, as they are in storage.
    """

    __slots__ = ("_data", "_raw", "arrived", "deleted", "id", "score")
    __match_args__ = ("id", "score", "deleted", "data", "arrived")

    def __init__(
        self, id: ItemId, score: Score, deleted: bool = False, data: Any = None, arrived: int = 0
    ) -> None:
        self.id = id
        self.score = score
        self.deleted = deleted
        self.arrived = arrived
        self._data = data
        self._raw: bytes | None = NIL if data is None else None

    @classmethod
    def encoded(
        cls, id: ItemId, score: Score, deleted: bool, encoded_data: bytes, arrived: int
    ) -> Record:
        """A record whose data is given as its msgpack encoding (decoded lazily)."""
        record = cls.__new__(cls)
        record.id = id
        record.score = score
        record.deleted = deleted
        record.arrived = arrived
        record._raw = encoded_data
        record._data = None if encoded_data == NIL else _UNSET
        return record

    @classmethod
    def checked(
        cls, id: ItemId, score: Score, deleted: bool, data: Any, encoded_data: bytes,
        arrived: int,
    ) -> Record:
        """A record of ``data`` whose encoding, ``encoded_data``, was checked
        already (``timak.value.check_data``): it is never packed again."""
        record = cls(id, score, deleted, data, arrived)
        record._raw = encoded_data
        return record

    @property
    def data(self) -> Any:
        """The item's data (``None`` if it has none)."""
        data = self._data
        if data is _UNSET:
            assert self._raw is not None
            data = self._data = unpack_data(self._raw)
        return data

    @property
    def encoded_data(self) -> bytes:
        """The msgpack encoding of ``data``; ``InvalidDataError`` if it has none."""
        raw = self._raw
        if raw is None:
            raw = self._raw = _pack_data(self._data)
        return raw

    def tiebreak(self) -> bytes:
        """The bytes that decide between records of one id, score and delete
        flag: the msgpack encoding of ``[score, data]`` without its array tag."""
        packed: bytes = msgpack.packb(self.score)
        return packed + self.encoded_data

    def beats(self, other: Record) -> bool:
        """Whether this record wins over ``other``, a record for the same id."""
        if self.score != other.score:
            return bool(self.score > other.score)
        if self.deleted != other.deleted:
            return self.deleted
        mine, theirs = self.tiebreak(), other.tiebreak()
        if mine != theirs:
            return mine > theirs
        return self.arrived > other.arrived

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Record):
            return NotImplemented
        if not (
            self.id == other.id
            and type(self.id) is type(other.id)
            and self.score == other.score
            and self.deleted == other.deleted
            and self.arrived == other.arrived
        ):
            return False
        try:
            return self.tiebreak() == other.tiebreak()
        except InvalidDataError:  # data that cannot be stored: compare as Python does
            return bool(type(self.score) is type(other.score) and self.data == other.data)

    def __hash__(self) -> int:
        return hash((self.id, self.score, self.deleted, self.arrived))

    def __repr__(self) -> str:
        try:
            data = repr(self.data)
        except CorruptValueError:
            data = "<corrupt>"
        return (
            f"Record(id={self.id!r}, score={self.score!r}, deleted={self.deleted!r}, "
            f"data={data}, arrived={self.arrived!r})"
        )


def order_key(record: Record) -> tuple[Score, int, ItemId]:
    """The sort key that decides which records a timeline keeps: larger is newer.

    Ids of different types never compare directly: integers sort below strings.
    """
    return (record.score, 1 if isinstance(record.id, str) else 0, record.id)


class Chunk:
    """A run of a value's records, newest first, that may not be decoded yet.

    ``ids`` are the records' ids, known without decoding. Records are decoded
    on first use, only as far as they are asked for, by ``load(start, stop)``
    (the records at those positions). A chunk read from bytes also keeps
    them for the encoder, so a chunk that a merge did not change is written
    back as it was read: ``rows``, each record's own encoding (a plain
    chunk), or ``blob``, the compressed bytes of a run of rows that may go
    on past ``ids`` (a trimmed tail that is ignored).
    """

    __slots__ = ("_load", "_records", "blob", "ids", "rows")

    def __init__(
        self,
        ids: list[ItemId],
        records: list[Record] | None = None,
        load: Callable[[int, int], list[Record]] | None = None,
        *,
        rows: list[bytes] | None = None,
        blob: bytes | None = None,
    ) -> None:
        self.ids = ids
        self._records: list[Record] = [] if records is None else records
        self._load = load
        self.rows = rows
        self.blob = blob

    @property
    def decoded(self) -> bool:
        """Whether any record is decoded already."""
        return bool(self._records)

    @property
    def loaded(self) -> bool:
        """Whether every record is decoded already."""
        return len(self._records) == len(self.ids)

    def records(self) -> list[Record]:
        """The chunk's records, newest first (decoded on first use)."""
        if len(self._records) < len(self.ids):
            self._decode(len(self.ids))
        return self._records

    def prefix(self, count: int) -> list[Record]:
        """At least the newest ``count`` records (all of them if fewer)."""
        if len(self._records) < count and len(self._records) < len(self.ids):
            self._decode(min(count, len(self.ids)))
        return self._records

    def _decode(self, stop: int) -> None:
        assert self._load is not None
        self._records = self._records + self._load(len(self._records), stop)

    def head(self, count: int) -> Chunk:
        """The newest ``count`` records of this chunk."""
        rows = None if self.rows is None else self.rows[:count]
        return Chunk(self.ids[:count], self._records[:count], self._load, rows=rows,
                     blob=self.blob)

    def tail(self, start: int) -> Chunk:
        """The records of a plain chunk from position ``start`` on."""
        assert self.rows is not None and self._load is not None
        load = self._load
        return Chunk(self.ids[start:], self._records[start:],
                     lambda a, b: load(a + start, b + start), rows=self.rows[start:])
