"""Bytes <-> ``TimelineValue``. Pure, versioned, compact, and never pickle.

Layout: ``b"TK"``, one format byte, then the body.

======  =======================================================================
format  body
======  =======================================================================
``1``   msgpack array of records, newest first; a record is
        ``[id, score, 0, arrived]`` (add), ``[id, score, 0, arrived, data]``
        (add with data) or ``[id, score, 1, arrived]`` (tombstone). Read only.
``2``   zlib-compressed format-1 body. Read only.
``3``   msgpack ``[capacity, chunks]``; ``capacity`` is the timeline's
        capacity (``nil`` for a blind write's single record). ``chunks`` are
        runs of records, newest first; a chunk is ``[ids, codec, rows]``:
        ``ids`` the ids of its records, ``rows`` a msgpack array of ``bin``,
        one per record, each the msgpack ``[score, flag, arrived]`` or
        ``[score, 0, arrived, data]`` where ``data`` is a ``bin`` holding the
        item data's own msgpack encoding. Codec ``0``: ``rows`` is that
        array; codec ``1``: ``rows`` is a ``bin``, that array compressed
        with zlib. A compressed chunk may hold more rows than ``ids``: rows
        past the ids were trimmed off and are ignored.
======  =======================================================================

Why format 3 looks like this (measured with 1,000 records of ~200-byte
JSON-like data): reading the newest page decodes only the first chunk, which
is never compressed (the newest ``HOT_ROWS`` at most), and only the data of
the records returned; adding items on top re-encodes only that first chunk
and compresses ``CHUNK_ROWS`` records every ``CHUNK_ROWS`` adds, while the
older chunks are copied as bytes; the ids outside compression let a merge
check which ids a value holds without inflating anything. Whole-value zlib
(format 2) cost ~1 ms to inflate and ~2 ms to deflate per read or write.

Canonical bytes. Records of one id, score and delete flag are told apart
by their *tie-break bytes* (``Record.tiebreak``): the score as msgpack
packs it (the shortest int form for an int, float 64 for a float), then
the item data's own encoding exactly as stored. Item data and rows are
msgpack's canonical encoding of their objects, as msgpack-python 1.x
writes it: the shortest form of every int, length and header, float 64
for floats, ``bin`` for bytes and UTF-8 ``str`` for text, map keys in the
order given, no extension types. Reads check this where it matters: a
row must be exactly the canonical packing of the record it decodes to,
and item data holding extension bytes must pack back to itself; so a
second implementation that writes canonical msgpack agrees with this one
on every tie.

Values written now are format 3; formats 1 and 2 are still read (and written
back as 3 by the next write). Decoding checks everything it reads: bytes
that are not a value this module wrote raise ``CorruptValueError``, and
nothing else. ``decode(data)`` checks every record and every item's data;
``decode(data, lazy=True)`` checks the framing and the ids at once and each
chunk, and each item's data, when it is first used.

This module is over 400 lines because it is the one place that knows the
byte layout of all three formats; the encoder and the lazy decoder must
change together, so they stay in one file.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from ._records import NIL, Chunk, order_key
from .errors import CorruptValueError
from .value import INT64_RANGE, MAX_ID_BYTES, Record, TimelineValue

__all__ = [
    "CHUNK_ROWS",
    "COMPRESS_AT",
    "FORMAT",
    "HOT_ROWS",
    "KnownChunks",
    "MAGIC",
    "MAX_CAPACITY",
    "MAX_DECODED_BYTES",
    "decode",
    "decode_siblings",
    "encode",
    "encode_twin",
    "validate",
]

MAGIC = b"TK"
_PLAIN, _ZLIB, FORMAT = 1, 2, 3
#: The first chunk holds at most this many records, uncompressed.
HOT_ROWS = 96
#: Records per compressed chunk.
CHUNK_ROWS = 48
#: A chunk is compressed when its rows take at least this many bytes and
#: compression saves space.
COMPRESS_AT = 512
_LEVEL = 1
#: Everything compressed in one value may expand to at most this many bytes,
#: or 16 times the value's own size where that is more (zip-bomb guard).
MAX_DECODED_BYTES = 64 * 1024 * 1024
#: The largest capacity a value may state.
MAX_CAPACITY = 2**31


class _Rows:
    """How to decode a chunk read from bytes: its codec and payload (the list
    of row bytes, or the zlib bytes), and its rows once inflated."""

    __slots__ = ("budget", "codec", "following", "ids", "payload", "previous", "rows")

    def __init__(
        self, ids: list[Any], codec: int, payload: Any, previous: Chunk | None, budget: list[int]
    ) -> None:
        self.ids = ids
        self.codec = codec
        self.payload = payload
        self.rows: list[Any] | None = payload if codec == 0 else None
        self.previous = previous
        #: The next chunk, once made: the seam with it is checked by
        #: whichever of the two is decoded second.
        self.following: Chunk | None = None
        self.budget = budget

    def load(self, start: int, stop: int) -> list[Record]:
        """Decode the records at positions ``start:stop``."""
        rows = self.rows
        if rows is None:
            rows = _unpack(_inflate(self.payload, self.budget), "chunk")
            if type(rows) is not list or len(rows) < len(self.ids):
                raise CorruptValueError("compressed chunk holds fewer rows than ids")
            self.rows = rows
        records = _records(self.ids[start:stop], rows[start:stop])
        if start:
            # The caller extends a decoded prefix: check the seam. (Chunks cut
            # by ``head`` share this loader, so decode that record again
            # rather than track whose prefix it was.)
            _check_order(_records(self.ids[start - 1 : start], rows[start - 1 : start])[0],
                         records[0])
        elif self.previous is not None and self.previous.loaded:
            _check_order(self.previous.records()[-1], records[0])
        following = self.following
        if stop == len(self.ids) and following is not None and following.decoded:
            _check_order(records[-1], following.prefix(1)[0])
        return records


def encode(
    value: TimelineValue,
    *,
    compress_at: int = COMPRESS_AT,
    hot_rows: int = HOT_ROWS,
    chunk_rows: int = CHUNK_ROWS,
) -> bytes:
    """Serialize ``value`` as format 3. Raises ``InvalidDataError`` for data
    that cannot be encoded. Chunks read from bytes and left unchanged are
    written back as they were."""
    return _encode(value, compress_at, hot_rows, chunk_rows, [], None)


def encode_twin(value: TimelineValue) -> tuple[bytes, TimelineValue]:
    """``encode(value)``, and the value that ``decode(data, lazy=True)``
    would give for those bytes (the same chunks, rows and blobs), made from
    the encoder's own pieces instead of parsing them: what a reader of
    these bytes in this process can use in place of decoding them again."""
    out: list[list[Any]] = []
    plain: list[list[bytes] | None] = []
    data = _encode(value, COMPRESS_AT, HOT_ROWS, CHUNK_ROWS, out, plain)
    budget = [max(MAX_DECODED_BYTES, 16 * (len(data) - 3))]
    return data, TimelineValue.from_chunks(_chunks(out, budget, plain), value.capacity)


def _encode(value: TimelineValue, compress_at: int, hot_rows: int, chunk_rows: int,
            out: list[list[Any]], plain: list[list[bytes] | None] | None) -> bytes:
    """Encode ``value`` into ``out``'s chunks; with ``plain``, also note
    each chunk's uncompressed rows (``None`` for a blob copied as it was)."""
    if not isinstance(value, TimelineValue):
        value = TimelineValue(value)
    ids: list[Any] = []
    rows: list[bytes] = []
    for chunk in value.chunks:
        if chunk.blob is not None:
            _flush(out, ids, rows, compress_at, hot_rows, chunk_rows, plain)
            ids, rows = [], []
            out.append([chunk.ids, 1, chunk.blob])
            if plain is not None:
                plain.append(None)
            continue
        ids.extend(chunk.ids)
        if chunk.rows is not None:
            rows.extend(chunk.rows)
        else:
            rows.extend(map(_row, chunk.records()))
    _flush(out, ids, rows, compress_at, hot_rows, chunk_rows, plain)
    body: bytes = msgpack.packb([value.capacity, out])
    return MAGIC + bytes([FORMAT]) + body


def _row(r: Record) -> bytes:
    if r.deleted:
        packed: bytes = msgpack.packb([r.score, 1, r.arrived])
    elif r.encoded_data == NIL:
        packed = msgpack.packb([r.score, 0, r.arrived])
    else:
        packed = msgpack.packb([r.score, 0, r.arrived, r.encoded_data])
    return packed


def _flush(
    out: list[list[Any]],
    ids: list[Any],
    rows: list[bytes],
    compress_at: int,
    hot_rows: int,
    chunk_rows: int,
    plain: list[list[bytes] | None] | None = None,
) -> None:
    """Append chunks for a run of rows: the first chunk of a value plain and
    at most ``hot_rows`` long, the rest ``chunk_rows`` long and compressed
    (and, to ``plain``, each chunk's rows)."""
    start = 0
    if not out:
        # The newest rows stay plain. Cut the rest into whole chunks, so the
        # adds that follow move one full chunk at a time out of the plain one.
        cold = max(0, len(rows) - hot_rows)
        start = max(0, len(rows) - -(-cold // chunk_rows) * chunk_rows)
        if start:
            out.append([ids[:start], 0, rows[:start]])
            if plain is not None:
                plain.append(rows[:start])
    for at in range(start, len(rows), chunk_rows):
        part = rows[at : at + chunk_rows]
        if plain is not None:
            plain.append(part)
        packed: bytes = msgpack.packb(part)
        if len(packed) >= compress_at:
            deflated = zlib.compress(packed, _LEVEL)
            if len(deflated) < len(packed):
                out.append([ids[at : at + chunk_rows], 1, deflated])
                continue
        out.append([ids[at : at + chunk_rows], 0, part])


def decode(data: bytes, *, lazy: bool = False) -> TimelineValue:
    """Parse bytes written by ``encode`` (any format). Raises
    ``CorruptValueError`` otherwise; with ``lazy=True``, checks the parts it
    decodes later when they are first used (see the module docstring)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CorruptValueError(f"stored value is {type(data).__name__}, not bytes")
    data = bytes(data)
    if data[:2] != MAGIC or len(data) < 3:
        raise CorruptValueError(f"not a timak value (starts with {data[:8]!r})")
    fmt, body = data[2], data[3:]
    if fmt == FORMAT:
        value = _decode_v3(body)
        if not lazy:
            for record in value.iter_newest():
                record.data  # noqa: B018 - decoding it is the check
        return value
    if fmt == _ZLIB:
        body = _inflate(body, [MAX_DECODED_BYTES])
    elif fmt != _PLAIN:
        raise CorruptValueError(
            f"unknown timak value format {fmt}; a newer timak wrote it? (this one reads "
            f"formats 1 to {FORMAT})"
        )
    return _decode_legacy(body)


def _inflate(body: bytes, budget: list[int]) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, budget[0])
    except zlib.error as exc:
        raise CorruptValueError(f"compressed timak value does not inflate: {exc}") from None
    if inflater.unconsumed_tail:
        raise CorruptValueError(f"timak value inflates past {MAX_DECODED_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise CorruptValueError("compressed timak value is truncated or has trailing bytes")
    budget[0] -= len(out)
    return out


def _unpack(body: bytes, what: str) -> Any:
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise CorruptValueError(f"timak {what} does not decode: {exc}") from None


# -- format 3 -----------------------------------------------------------------


def _decode_v3(body: bytes) -> TimelineValue:
    top = _unpack(body, "value body")
    if type(top) is not list or len(top) != 2 or type(top[1]) is not list:
        raise CorruptValueError("timak value body is not [capacity, chunks]")
    capacity, raw_chunks = top
    if capacity is not None and (
        type(capacity) is not int or not 1 <= capacity <= MAX_CAPACITY
    ):
        raise CorruptValueError(f"timak value has a bad capacity {capacity!r:.40}")
    budget = [max(MAX_DECODED_BYTES, 16 * len(body))]
    all_ids: list[Any] = []
    for raw in raw_chunks:
        if type(raw) is not list or len(raw) != 3 or type(raw[0]) is not list or not raw[0]:
            raise CorruptValueError(f"malformed chunk {raw!r:.80}")
        ids, codec, payload = raw
        if type(codec) is not int:
            raise CorruptValueError(f"chunk codec {codec!r:.20} is unknown")
        if codec == 0:
            if type(payload) is not list or len(payload) != len(ids):
                raise CorruptValueError("plain chunk does not hold one row per id")
        elif codec != 1 or type(payload) is not bytes:
            raise CorruptValueError(f"chunk codec {codec!r:.20} is unknown or has no bytes")
        all_ids += ids
    chunks = _chunks(raw_chunks, budget)
    if all_ids:
        _check_ids(all_ids)
    if capacity is not None and len(all_ids) > capacity:
        raise CorruptValueError(
            f"timak value holds {len(all_ids)} records, over its capacity {capacity}"
        )
    return TimelineValue.from_chunks(chunks, capacity)


def _chunks(pieces: list[list[Any]], budget: list[int],
            inflated: list[list[bytes] | None] | None = None) -> list[Chunk]:
    """The lazy chunks of a value's ``[ids, codec, payload]`` pieces
    (checked by the caller), each decoding its rows on first use and
    checking the seams with its neighbours; ``inflated``: the rows each
    compressed chunk was made from, where known (not inflated again)."""
    chunks: list[Chunk] = []
    loaders: list[_Rows] = []
    for n, (ids, codec, payload) in enumerate(pieces):
        rows = _Rows(ids, codec, payload, chunks[-1] if chunks else None, budget)
        if inflated is not None and inflated[n] is not None:
            rows.rows = inflated[n]
        if codec == 0:
            chunk = Chunk(ids, None, rows.load, rows=payload)
        else:
            chunk = Chunk(ids, None, rows.load, blob=payload)
        if loaders:
            loaders[-1].following = chunk
        loaders.append(rows)
        chunks.append(chunk)
    return chunks


def _check_ids(ids: list[Any]) -> None:
    # Whole-list checks run in C; a per-id Python loop cost more than the rest
    # of a page read.
    kinds = set(map(type, ids))
    if not kinds <= {int, str}:
        raise CorruptValueError(f"timak value has ids of type {sorted(k.__name__ for k in kinds)}")
    if int in kinds:
        # msgpack decodes no int below int64's minimum; above its maximum,
        # uint64 can.
        ints = ids if len(kinds) == 1 else [i for i in ids if type(i) is int]
        if max(ints) > INT64_RANGE[1]:
            raise CorruptValueError("timak value has an id out of range")
    if str in kinds:
        strs = ids if len(kinds) == 1 else [i for i in ids if type(i) is str]
        lengths = list(map(len, strs))
        if min(lengths) == 0 or max(lengths) > MAX_ID_BYTES:
            raise CorruptValueError("timak value has an empty or overlong id")
    if len(set(ids)) != len(ids):
        raise CorruptValueError("timak value holds an id twice")


def _records(ids: list[Any], rows: list[Any]) -> list[Record]:
    count = len(ids)
    rows = rows[:count]
    if not all(type(row) is bytes for row in rows):
        raise CorruptValueError("chunk rows are not byte strings")
    # One C call decodes all rows: prefix an array header to the rows' bytes.
    decoded = _unpack(b"\xdd" + count.to_bytes(4, "big") + b"".join(rows), "chunk rows")
    # Joined, rows whose bytes were shifted across a boundary still decode:
    # each must be exactly its own record, as ``_row`` packs it (canonical).
    if list(map(_packb, decoded)) != rows:
        raise CorruptValueError("a chunk row is not exactly one record")
    records = []
    encoded = Record.encoded
    last_score: Any = None
    last_id: Any = None
    for item_id, row in zip(ids, decoded, strict=True):
        # One loop with the checks inline: this is the per-record cost of a read.
        if type(row) is not list or not 3 <= len(row) <= 4:
            raise CorruptValueError(f"malformed row {row!r:.80}")
        score, flag, arrived = row[0], row[1], row[2]
        kind = type(score)
        if not (
            (kind is int and INT64_RANGE[0] <= score <= INT64_RANGE[1])
            or (kind is float and math.isfinite(score))
        ):
            raise CorruptValueError(f"malformed record score {score!r:.80}")
        if type(arrived) is not int or not 0 <= arrived <= INT64_RANGE[1]:
            raise CorruptValueError(f"malformed record arrival {arrived!r:.80}")
        if len(row) == 3:
            if type(flag) is not int or flag not in (0, 1):
                raise CorruptValueError(f"malformed record flag in {row!r:.80}")
            data = NIL
        else:
            data = row[3]
            if type(flag) is not int or flag != 0 or type(data) is not bytes or data == NIL:
                raise CorruptValueError(f"malformed record in {row!r:.80}")
        if last_score is not None and not (
            last_score > score
            or (last_score == score and _id_key(last_id) > _id_key(item_id))
        ):
            raise CorruptValueError(f"timak value records are out of order at {item_id!r:.40}")
        last_score, last_id = score, item_id
        records.append(encoded(item_id, score, flag == 1, data, arrived))
    return records


def _packb(obj: Any) -> bytes:
    try:
        packed: bytes = msgpack.packb(obj)
    except Exception:  # decoded rows that do not pack are not timak's
        return b""
    return packed


def _check_order(newer: Record, older: Record) -> None:
    a, b = newer.score, older.score
    if a > b or (a == b and _id_key(newer.id) > _id_key(older.id)):
        return
    raise CorruptValueError(f"timak value records are out of order at {older.id!r:.40}")


def _id_key(item_id: Any) -> tuple[int, Any]:
    return (1 if isinstance(item_id, str) else 0, item_id)


# -- formats 1 and 2 ------------------------------------------------------------


def _decode_legacy(body: bytes) -> TimelineValue:
    rows = _unpack(body, "value body")
    if not isinstance(rows, list):
        raise CorruptValueError("timak value body is not a list of records")
    records: dict[int | str, Record] = {}
    for row in rows:
        record = _record_v1(row)
        if record.id in records:
            raise CorruptValueError(f"timak value holds item {record.id!r} twice")
        records[record.id] = record
    plain = TimelineValue(records)
    return TimelineValue.from_chunks(list(plain.chunks), None, legacy=True)


def _record_v1(row: object) -> Record:
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


class KnownChunks:
    """Chunks already checked in full, by their bytes and ids: ``validate``
    skips decoding them again. Bounded (the oldest entries go first);
    thread-safe enough for its use (a lost entry only costs
    a check again). The value is each chunk's first and last order key, so
    the order across chunks is still checked."""

    def __init__(self, max_chunks: int = 8192) -> None:
        self._max = max_chunks
        self._seen: dict[tuple[bytes, int], tuple[Any, Any]] = {}

    @staticmethod
    def tag(chunk: Chunk) -> tuple[bytes, int] | None:
        """What identifies a chunk read from bytes: a digest of its bytes
        (compressed, or its rows) and its ids; ``None`` for records made here."""
        if chunk.blob is not None:
            return KnownChunks.tag_of(chunk.blob, chunk.ids)
        if chunk.rows is not None:
            return KnownChunks.tag_of(b"".join(chunk.rows), chunk.ids)
        return None

    @staticmethod
    def tag_of(data: bytes, ids: list[Any]) -> tuple[bytes, int]:
        """The tag of a chunk of ``ids`` read from ``data`` (its compressed
        bytes, or its rows joined)."""
        return hashlib.blake2b(data, digest_size=16).digest(), hash(tuple(ids))

    def get(self, tag: tuple[bytes, int]) -> tuple[Any, Any] | None:
        return self._seen.get(tag)

    def put(self, tag: tuple[bytes, int], bounds: tuple[Any, Any]) -> None:
        if len(self._seen) >= self._max:
            # Another thread may have got there first: then there is room.
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del self._seen[next(iter(self._seen))]
        self._seen[tag] = bounds


def validate(value: TimelineValue, known: KnownChunks | None = None) -> TimelineValue:
    """Check every byte of a (lazily) decoded ``value`` that a merge could
    copy into a stored value: every chunk inflates and holds one exact row
    per id, every record is well formed and in order (within and across
    chunks), and every item's data decodes as item data. Returns ``value``;
    raises ``CorruptValueError``. This is what a lazy read leaves for
    later, and what must hold before bytes are written anywhere.

    Chunks found in ``known`` were checked before (same bytes, same ids)
    and are not decoded again; a value checked once remembers it."""
    if value.legacy or value.checked:
        return value  # formats 1 and 2 are decoded and checked in full
    last: Any = None
    for chunk in value.chunks:
        tag = KnownChunks.tag(chunk) if known is not None and len(chunk.ids) > 8 else None
        bounds = None if tag is None or known is None else known.get(tag)
        if bounds is None and tag is not None and known is not None and chunk.blob is None:
            bounds = _new_rows_on_known(chunk, known)
            if bounds is not None:
                known.put(tag, bounds)
        if bounds is None:
            records = chunk.records()
            for record in records:
                record.data  # noqa: B018 - decoding it is the check
            bounds = (order_key(records[0]), order_key(records[-1]))
            if tag is not None and known is not None:
                known.put(tag, bounds)
        if last is not None and not last > bounds[0]:
            raise CorruptValueError("timak value records are out of order between chunks")
        last = bounds[1]
    value.checked = True
    return value


#: How many new rows on top of a known plain chunk ``validate`` looks for.
_NEW_ROWS = 4


def _new_rows_on_known(chunk: Chunk, known: KnownChunks) -> tuple[Any, Any] | None:
    """The bounds of a plain chunk that is a known chunk with up to
    ``_NEW_ROWS`` new rows on top (the first chunk after an ``add``: the
    previous first chunk, one row longer), checking only the new rows and
    the seam; ``None`` if it is not. The known rows' bytes and ids are
    identical to a chunk checked before, so they hold the same records."""
    rows = chunk.rows
    assert rows is not None
    for new in range(1, min(_NEW_ROWS, len(chunk.ids) - 9) + 1):
        bounds = known.get(KnownChunks.tag_of(b"".join(rows[new:]), chunk.ids[new:]))
        if bounds is None:
            continue
        records = chunk.prefix(new)[:new]
        for record in records:
            record.data  # noqa: B018 - decoding it is the check
        if not order_key(records[-1]) > bounds[0]:
            raise CorruptValueError("timak value records are out of order in a chunk")
        return order_key(records[0]), bounds[1]
    return None


def decode_siblings(
    siblings: Iterable[bytes],
    where: str,
    *,
    key: str | None = None,
    decode_one: Callable[[bytes], TimelineValue] | None = None,
) -> tuple[list[TimelineValue], list[CorruptValueError]]:
    """Decode every sibling of one key (lazily, or with ``decode_one``): the
    values that decode, and a ``CorruptValueError`` naming ``where`` and the
    sibling's position for each that does not. One corrupt sibling never
    hides the others: callers decide whether to raise or to go on without it.
    """
    values: list[TimelineValue] = []
    corrupt: list[CorruptValueError] = []
    for i, sibling in enumerate(siblings):
        try:
            values.append(
                decode(sibling, lazy=True) if decode_one is None else decode_one(sibling)
            )
        except CorruptValueError as exc:
            corrupt.append(CorruptValueError(f"{where}, sibling {i}: {exc}", key=key))
    return values, corrupt
