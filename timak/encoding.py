"""Bytes <-> ``TimelineValue``. Pure, versioned, compact, and never pickle.

Layout: ``b"TK"``, one format byte, then the body.

======  =======================================================================
format  body
======  =======================================================================
``1``   msgpack array of records, newest first; a record is
        ``[id, score, 0, arrived]`` (add), ``[id, score, 0, arrived, data]``
        (add with data) or ``[id, score, 1, arrived]`` (tombstone)
``2``   zlib-compressed format-1 body; used when the body is at least
        ``COMPRESS_AT`` bytes and compression saves space
======  =======================================================================

Decoding checks everything it reads. Any bytes that are not a value this
module wrote raise ``CorruptValueError``, and nothing else.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import msgpack

from .errors import CorruptValueError, InvalidDataError
from .value import INT64_RANGE, Record, TimelineValue

__all__ = ["COMPRESS_AT", "MAGIC", "MAX_DECODED_BYTES", "decode", "encode"]

MAGIC = b"TK"
_PLAIN, _ZLIB = 1, 2
#: Bodies at least this large are compressed when that makes them smaller.
COMPRESS_AT = 4096
#: A compressed body may expand to at most this many bytes (zip-bomb guard).
MAX_DECODED_BYTES = 64 * 1024 * 1024


def encode(value: TimelineValue, *, compress_at: int = COMPRESS_AT) -> bytes:
    """Serialize ``value``. Raises ``InvalidDataError`` for unencodable data."""
    rows: list[list[Any]] = []
    for r in value.newest_first():
        if r.deleted:
            rows.append([r.id, r.score, 1, r.arrived])
        elif r.data is None:
            rows.append([r.id, r.score, 0, r.arrived])
        else:
            rows.append([r.id, r.score, 0, r.arrived, r.data])
    try:
        body: bytes = msgpack.packb(rows)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidDataError(f"item data cannot be encoded: {exc}") from None
    if len(body) >= compress_at:
        packed = zlib.compress(body, 1)
        if len(packed) < len(body):
            return MAGIC + bytes([_ZLIB]) + packed
    return MAGIC + bytes([_PLAIN]) + body


def decode(data: bytes) -> TimelineValue:
    """Parse bytes written by ``encode``. Raises ``CorruptValueError`` otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CorruptValueError(f"stored value is {type(data).__name__}, not bytes")
    data = bytes(data)
    if data[:2] != MAGIC or len(data) < 3:
        raise CorruptValueError(f"not a timak value (starts with {data[:8]!r})")
    fmt, body = data[2], data[3:]
    if fmt == _ZLIB:
        body = _inflate(body)
    elif fmt != _PLAIN:
        raise CorruptValueError(f"unknown timak value format {fmt}; a newer timak wrote it?")
    try:
        rows = msgpack.unpackb(body, use_list=True, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise CorruptValueError(f"timak value body does not decode: {exc}") from None
    if not isinstance(rows, list):
        raise CorruptValueError("timak value body is not a list of records")
    records: dict[int | str, Record] = {}
    for row in rows:
        record = _record(row)
        if record.id in records:
            raise CorruptValueError(f"timak value holds item {record.id!r} twice")
        records[record.id] = record
    return TimelineValue(records)


def _inflate(body: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, MAX_DECODED_BYTES)
    except zlib.error as exc:
        raise CorruptValueError(f"compressed timak value does not inflate: {exc}") from None
    if inflater.unconsumed_tail:
        raise CorruptValueError(f"timak value inflates past {MAX_DECODED_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise CorruptValueError("compressed timak value is truncated or has trailing bytes")
    return out


def _record(row: object) -> Record:
    if not isinstance(row, list) or len(row) not in (4, 5):
        raise CorruptValueError(f"malformed record {row!r:.80}")
    item_id, score, flag, arrived = row[0], row[1], row[2], row[3]
    if type(arrived) is not int or not 0 <= arrived <= INT64_RANGE[1]:
        raise CorruptValueError(f"malformed record arrival {arrived!r:.80}")
    if isinstance(item_id, bool) or not isinstance(item_id, int | str) or item_id == "":
        raise CorruptValueError(f"malformed record id {item_id!r:.80}")
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise CorruptValueError(f"malformed record score {score!r:.80}")
    if isinstance(score, float) and not math.isfinite(score):
        raise CorruptValueError(f"non-finite record score {score!r}")
    if isinstance(score, int) and not INT64_RANGE[0] <= score <= INT64_RANGE[1]:
        raise CorruptValueError(f"record score {score} out of range")
    if isinstance(item_id, int) and not INT64_RANGE[0] <= item_id <= INT64_RANGE[1]:
        raise CorruptValueError(f"record id {item_id} out of range")
    if type(flag) is int and flag == 1 and len(row) == 4:
        return Record(item_id, score, True, None, arrived)
    if type(flag) is int and flag == 0:
        return Record(item_id, score, False, row[4] if len(row) == 5 else None, arrived)
    raise CorruptValueError(f"malformed record flag in {row!r:.80}")
