"""Fuzzing what timak parses from a store: only timak's own errors may come out.

``timak._encoding.decode`` gets random bytes, mutated valid encodings (bit
flips, cuts, splices, insertions) of formats 1, 2 and 3, valid msgpack of the
wrong shape and zlib bombs: it must return a value or raise
``CorruptValueError``, and a value it returns must survive what read repair
does with it (merge, encode, decode). Format 3 is also decoded lazily, and
then every chunk and every item's data is read: the same rule holds there.
The Riak backend's multipart parser, boundary parser, key-listing parser and
``fetch`` (against made-up HTTP answers) may raise only ``TimakError``.
"""

from __future__ import annotations

import json
import string
import zlib
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from timak import Record, TimelineValue, merge
from timak._encoding import COMPRESS_AT, MAGIC, MAX_DECODED_BYTES, decode, encode
from timak.errors import CorruptValueError, TimakError

FUZZ = settings(max_examples=examples(1500), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: For tests whose inputs are costly to generate (whole valid values).
FUZZ_SLOW = settings(FUZZ, max_examples=examples(500))

INT64 = st.integers(-(2**63), 2**63 - 1)
item_ids = st.one_of(INT64, st.text(min_size=1, max_size=12))
scores = st.one_of(INT64, st.floats(allow_nan=False, allow_infinity=False))
item_data = st.none() | st.recursive(
    st.none() | st.booleans() | INT64 | st.floats() | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=6,
)


@st.composite
def values(draw: st.DrawFn) -> TimelineValue:
    rows = draw(st.lists(
        st.tuples(item_ids, scores, st.booleans(), item_data, st.integers(0, 2**63 - 1)),
        max_size=12, unique_by=lambda row: row[0],
    ))
    return TimelineValue({
        i: Record(i, s, d, None if d else data, a) for i, s, d, data, a in rows
    })


def legacy(value: TimelineValue, compressed: bool) -> bytes:
    """``value`` in format 1 (or 2, compressed), as timak wrote it before format 3."""
    rows = [
        [r.id, r.score, 1, r.arrived] if r.deleted
        else [r.id, r.score, 0, r.arrived] if r.data is None
        else [r.id, r.score, 0, r.arrived, r.data]
        for r in value.newest_first()
    ]
    body = msgpack.packb(rows)
    return MAGIC + (b"\x02" + zlib.compress(body) if compressed else b"\x01" + body)


@st.composite
def v3_encodings(draw: st.DrawFn) -> bytes:
    """A valid format-3 encoding: one plain chunk, or several, some compressed."""
    return encode(
        draw(values()),
        compress_at=draw(st.sampled_from([0, 64, COMPRESS_AT, 4096])),
        hot_rows=draw(st.sampled_from([0, 2, 96])),
        chunk_rows=draw(st.sampled_from([1, 3, 48])),
    )


@st.composite
def encodings(draw: st.DrawFn) -> bytes:
    """A valid encoding of any format: 3, or 1 and 2 as older timak wrote them."""
    kind = draw(st.sampled_from(["v3", "v3", "v1", "v2"]))
    if kind == "v3":
        return draw(v3_encodings())
    return legacy(draw(values()), compressed=kind == "v2")


# Anything msgpack packs, including extension types and unsigned 64-bit ints.
msgpack_objects = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=8) | st.binary(max_size=8)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=12))
    | st.builds(msgpack.Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 999_999_999)),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.one_of(st.text(max_size=3), st.integers(-5, 5)), inner, max_size=3),
    max_leaves=12,
)
# Lists of record-like rows: right length, wrong contents.
record_like = st.lists(st.lists(msgpack_objects, min_size=3, max_size=6), max_size=5)


def mutate(data: bytes, draw: st.DrawFn, other: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "splice", "insert", "delete", "byte"]))
        at = draw(st.integers(0, len(buf)))
        if kind == "flip" and buf:
            buf[min(at, len(buf) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del buf[at:]
        elif kind == "splice":
            buf = buf[:at] + other[draw(st.integers(0, len(other))):]
        elif kind == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=9))
        elif kind == "delete":
            del buf[at:at + draw(st.integers(1, 9))]
        else:
            # Any byte, drawn often from those that mean the most to msgpack.
            special = st.sampled_from([0x00, 0xC1, 0xDD, 0xDF, 0xFF])
            buf[at:at + 1] = bytes([draw(st.one_of(special, st.integers(0, 255)))])
    return bytes(buf)


def decodes_or_corrupt(blob: bytes) -> TimelineValue | None:
    """``decode(blob)``: a usable value or ``CorruptValueError``, nothing else."""
    try:
        lazy = decode(blob, lazy=True)
        # Everything a lazy value decodes later may raise only the same error.
        for record in lazy.iter_newest():
            record.data  # noqa: B018
    except CorruptValueError:
        lazy = None
    try:
        value = decode(blob)
    except CorruptValueError:
        assert lazy is None, "decode refused what decode(lazy=True) accepted"
        return None
    assert lazy == value
    # Read repair merges what it decoded and writes it back: that must work.
    merged = merge([value, value], 10**6)
    again = encode(merged)
    assert encode(decode(again)) == again
    return value


# -- decode --------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(blob: bytes) -> None:
    decodes_or_corrupt(blob)


@FUZZ
@given(st.sampled_from([b"", MAGIC, MAGIC + b"\x01", MAGIC + b"\x02", MAGIC + b"\x03"]),
       st.binary(max_size=256))
def test_random_bodies_behind_the_magic(prefix: bytes, body: bytes) -> None:
    decodes_or_corrupt(prefix + body)


@FUZZ_SLOW
@given(encodings(), encodings(), st.data())
def test_mutated_valid_encodings(blob: bytes, other: bytes, data: st.DataObject) -> None:
    decodes_or_corrupt(mutate(blob, data.draw, other))


@FUZZ_SLOW
@given(values(), st.data())
def test_mutated_compressed_bodies(value: TimelineValue, data: st.DataObject) -> None:
    # Damage the msgpack body, then compress it properly: the zlib layer is
    # sound and the damage reaches the record parser.
    blob = legacy(value, compressed=False)
    damaged = mutate(blob[3:], data.draw, blob)
    decodes_or_corrupt(MAGIC + b"\x02" + zlib.compress(damaged))


@FUZZ_SLOW
@given(values(), st.data())
def test_mutated_compressed_chunks(value: TimelineValue, data: st.DataObject) -> None:
    # The same for format 3: damage the rows of one compressed chunk, then
    # compress them properly again.
    assume(len(value) > 0)
    blob = encode(value, compress_at=0, hot_rows=0, chunk_rows=2)
    capacity, chunks = msgpack.unpackb(blob[3:])
    at = data.draw(st.integers(0, len(chunks) - 1))
    if chunks[at][1] == 1:
        rows = zlib.decompress(chunks[at][2])
        chunks[at][2] = zlib.compress(mutate(rows, data.draw, blob))
    else:
        chunks[at][2] = [mutate(row, data.draw, blob) for row in chunks[at][2]]
    decodes_or_corrupt(MAGIC + b"\x03" + msgpack.packb([capacity, chunks]))


@FUZZ_SLOW
@given(st.one_of(msgpack_objects, record_like), st.booleans())
def test_valid_msgpack_of_the_wrong_shape(obj: Any, compress: bool) -> None:
    body = msgpack.packb(obj)
    decodes_or_corrupt(MAGIC + (b"\x02" + zlib.compress(body) if compress else b"\x01" + body))


# Format-3 bodies of the right outline with wrong parts: chunks whose ids,
# codec or rows are anything msgpack packs.
v3_chunks = st.lists(
    st.tuples(
        st.one_of(st.lists(st.one_of(INT64, st.text(max_size=3)), max_size=4), msgpack_objects),
        st.sampled_from([0, 1, 2, -1, True]),
        st.one_of(
            st.lists(st.one_of(msgpack_objects, record_like.map(msgpack.packb)), max_size=4),
            st.one_of(msgpack_objects, record_like).map(
                lambda o: zlib.compress(msgpack.packb(o))
            ),
            msgpack_objects,
        ),
    ).map(list),
    max_size=3,
)


@FUZZ_SLOW
@given(st.one_of(st.none(), st.integers(-2, 2**32), msgpack_objects), v3_chunks)
def test_v3_bodies_of_the_wrong_shape(capacity: Any, chunks: list[Any]) -> None:
    decodes_or_corrupt(MAGIC + b"\x03" + msgpack.packb([capacity, chunks]))


@FUZZ_SLOW
@given(values())
def test_valid_encodings_round_trip(value: TimelineValue) -> None:
    blob = encode(value)
    decoded = decodes_or_corrupt(blob)
    assert decoded is not None
    assert encode(decoded) == blob
    for old in (legacy(value, False), legacy(value, True)):
        assert decodes_or_corrupt(old) == value  # formats 1 and 2 still decode


@pytest.mark.slow
@pytest.mark.parametrize(
    "body",
    [
        b"\x00" * (MAX_DECODED_BYTES + 1),  # inflates past the limit
        b"\xc0" * (4 * 1024 * 1024),  # four million nils: parses, then is not records
        b"\xdd\x00\x20\x00\x00" + b"\x90" * (2 * 1024 * 1024),  # array of 2M empty arrays
    ],
    ids=["past-the-limit", "nils", "empty-rows"],
)
def test_zlib_bombs_are_corrupt(body: bytes) -> None:
    with pytest.raises(CorruptValueError):
        decode(MAGIC + b"\x02" + zlib.compress(body, 9))


@pytest.mark.parametrize(
    "blob",
    [
        MAGIC + b"\x02" + zlib.compress(msgpack.packb([]))[:-3],  # truncated stream
        MAGIC + b"\x02" + zlib.compress(msgpack.packb([])) + b"junk",  # trailing bytes
        MAGIC + b"\x02" + zlib.compress(MAGIC + b"\x02" + zlib.compress(b"\x90")),  # nested
        MAGIC + b"\x01" + msgpack.packb([[1, 1, 0, 0], [1, 2, 0, 0]]),  # one id twice
        MAGIC + b"\x01" + msgpack.packb([[1, 1, 1, 0, "data"]]),  # tombstone with data
        MAGIC + b"\x01" + msgpack.packb([[1, 1, 0, -1]]),  # negative arrival
        MAGIC + b"\x01" + msgpack.packb([[2**64 - 1, 1, 0, 0]]),  # id past int64
        MAGIC + b"\x01" + msgpack.packb([[1, float("nan"), 0, 0]]),  # NaN score
        MAGIC + b"\x01" + msgpack.packb([[1, 1, True, 0]]),  # bool flag
        MAGIC + b"\x01" + msgpack.packb([[[1], 1, 0, 0]]),  # list id
        MAGIC + b"\x01" + msgpack.packb([[1, 1, 0, 0, {(1, 2): 3}]]),  # unhashable key
        MAGIC + b"\x01" + b"\x91" * 100_000 + b"\x90",  # nested 100k deep
        bytearray(MAGIC + b"\x01\x90\x90"),  # extra data
        memoryview(MAGIC + b"\x01\xc1"),  # reserved byte
        "TK\x01\x90",  # not bytes
        None,
        MAGIC + b"\x04" + msgpack.packb([None, []]),  # a newer format
        MAGIC + b"\x03" + msgpack.packb([0, []]),  # capacity 0
        MAGIC + b"\x03" + msgpack.packb([True, []]),  # bool capacity
        MAGIC + b"\x03" + msgpack.packb([1, [[[1, 2], 0, [b"\x93\x01\x00\x00"] * 2]]]),  # over
        MAGIC + b"\x03" + msgpack.packb([None, [[[1], 0, []]]]),  # an id without a row
        MAGIC + b"\x03" + msgpack.packb([None, [[[], 0, []]]]),  # an empty chunk
        MAGIC + b"\x03" + msgpack.packb([None, [[[1, 1], 0, [b"\x93\x02\x00\x00",
                                                       b"\x93\x01\x00\x00"]]]]),  # id twice
        MAGIC + b"\x03" + msgpack.packb([None, [[[1], 0, [b"\x93\x01\x00\x00"]],
                                               [[1], 0, [b"\x93\x00\x00\x00"]]]]),  # twice
        MAGIC + b"\x03" + msgpack.packb([None, [[[1, 2], 0, [b"\x93\x01\x00\x00",
                                                       b"\x93\x02\x00\x00"]]]]),  # order
        MAGIC + b"\x03" + msgpack.packb([None, [[[1], 0, [b"\x93\x01\x00\x00"]],
                                               [[2], 0, [b"\x93\x02\x00\x00"]]]]),  # order
        MAGIC + b"\x03" + msgpack.packb([None, [[[1], 0, [b"\x94\x01\x00\x00\xc4\x01\xc0"]]]]),
        MAGIC + b"\x03" + msgpack.packb([None, [[[1], 0, [b"\x94\x01\x01\x00\xc4\x01\x01"]]]]),
        MAGIC + b"\x03" + msgpack.packb([None, [[[1.5], 0, [b"\x93\x01\x00\x00"]]]]),
        MAGIC + b"\x03" + msgpack.packb([None, [[[True], 0, [b"\x93\x01\x00\x00"]]]]),
        MAGIC + b"\x03" + msgpack.packb([None, [[[""], 0, [b"\x93\x01\x00\x00"]]]]),
        MAGIC + b"\x03" + msgpack.packb([None, [[[1], 1, zlib.compress(b"\x90")]]]),  # no rows
        MAGIC + b"\x03" + msgpack.packb([None, [[[1], 1, b"not zlib"]]]),
        MAGIC + b"\x03" + msgpack.packb([None, [[[1], 1, zlib.compress(b"\xc0" * (70 << 20))]]]),
        MAGIC + b"\x03" + msgpack.packb([None, [[[1], 0, [b"\x94\x01\x00\x00\xc4\x02\x81\x90"]]]]),
        MAGIC + b"\x03" + msgpack.packb([None, [[[1], 0, [b"\x94\x01\x00\x00\xc4\x02\x01\x01"]]]]),
        b"",
        b"TK",
        b"\x80\x04pickle",  # a pickle header is never unpickled
        b"TK\x09" + msgpack.packb([]),  # unknown format
        b"TK\x01\xc1",  # invalid msgpack
        b"TK\x01" + msgpack.packb({"a": 1}),  # not a list
        b"TK\x01" + msgpack.packb([["a", 1]]),  # short record
        b"TK\x01" + msgpack.packb([["a", 1, 2, 0]]),  # bad flag
        b"TK\x01" + msgpack.packb([["a", "1", 0, 0]]),  # string score
        b"TK\x01" + msgpack.packb([[None, 1, 0, 0]]),  # no id
        b"TK\x01" + msgpack.packb([["", 1, 0, 0]]),  # empty id
        b"TK\x01" + msgpack.packb([["a", 1, 0, 0], ["a", 2, 0, 0]]),  # duplicate str id
        b"TK\x02not zlib",
        b"TK\x02" + zlib.compress(b"\x00" * (65 * 1024 * 1024), 9),  # bomb
    ],
)
def test_known_hostile_values_are_corrupt(blob: Any) -> None:
    with pytest.raises(CorruptValueError):
        decode(blob)


# -- the Riak backend's parsers ------------------------------------------------------


def riak_module() -> Any:
    """The Riak backend's class and parsers (skips without urllib3)."""
    pytest.importorskip("urllib3", reason="the Riak backend needs urllib3")
    from timak.backends.riak import RiakBackend
    from timak.backends.riak._keys import decode_objects, keys_of
    from timak.backends.riak._multipart import parse_multipart

    return SimpleNamespace(
        RiakBackend=RiakBackend, decode_objects=decode_objects, keys_of=keys_of,
        parse_multipart=parse_multipart,
    )


def only_timak_errors(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except TimakError:
        return None


def multipart(values: list[bytes], boundary: str, deleted: list[bool]) -> bytes:
    """A 300 body the way riak_kv_wm_object:produce_multipart_body writes it."""
    out = b""
    for value, gone in zip(values, deleted, strict=True):
        out += (b"\r\n--" + boundary.encode() + b"\r\nContent-Type: application/octet-stream"
                b"\r\nLink: </buckets/b>; rel=\"up\"\r\nEtag: 3x4mpl3\r\n"
                + (b"X-Riak-Deleted: true\r\n" if gone else b"")
                + b"Last-Modified: Mon, 23 Nov 2026 20:00:00 GMT\r\n\r\n" + value)
    return out + b"\r\n--" + boundary.encode() + b"--\r\n"


# Riak's boundaries are random base-62 strings (riak_core_util:unique_id_62).
boundaries = st.text(string.ascii_letters + string.digits, min_size=1, max_size=30)


@FUZZ
@given(st.binary(max_size=512), st.text(max_size=60))
def test_riak_multipart_random(body: bytes, content_type: str) -> None:
    riak = riak_module()
    only_timak_errors(riak.parse_multipart, body, content_type)
    only_timak_errors(riak.parse_multipart, body,
                      "multipart/mixed; boundary=" + content_type)


@FUZZ
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=4), boundaries, st.data())
def test_riak_multipart_mutated(values: list[bytes], boundary: str, data: st.DataObject) -> None:
    riak = riak_module()
    deleted = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    body = multipart(values, boundary, deleted)
    content_type = f"multipart/mixed; boundary={boundary}"
    assume(all(b"\r\n--" + boundary.encode() not in v for v in values))
    parts = riak.parse_multipart(body, content_type)
    assert [p.body for p in parts] == values  # the unmutated body parses exactly
    assert [p.deleted for p in parts] == deleted
    only_timak_errors(riak.parse_multipart, mutate(body, data.draw, body), content_type)


@FUZZ
@given(st.text(max_size=200), st.data())
def test_riak_key_listing(text: str, data: st.DataObject) -> None:
    riak = riak_module()
    listing = json.dumps({"keys": data.draw(st.lists(st.text(max_size=5), max_size=4))})
    for buffer in (text, listing + text, mutate(listing.encode(), data.draw, b"").decode(
            "utf-8", "replace")):
        rest, found = riak.decode_objects(json.JSONDecoder(), buffer)
        assert isinstance(rest, str)
        for obj in found:
            only_timak_errors(riak.keys_of, obj, "fuzz")


def test_riak_key_listing_deeply_nested() -> None:
    riak = riak_module()
    with pytest.raises(TimakError, match="nests too deeply"):
        riak.decode_objects(json.JSONDecoder(), '{"keys": ' + "[" * 100_000 + "]" * 100_000)


class FakeResponse:
    def __init__(self, status: int, headers: dict[str, str], data: bytes) -> None:
        import urllib3

        self.status, self.data = status, data
        self.headers = urllib3.HTTPHeaderDict(headers)


answers = st.tuples(
    st.sampled_from([200, 204, 300, 304, 400, 404, 412, 500, 503, 999]),
    st.fixed_dictionaries({}, optional={
        "X-Riak-Vclock": st.text(max_size=20),
        "Content-Type": st.one_of(st.text(max_size=40),
                                  st.just("multipart/mixed; boundary=B")),
        "X-Riak-Deleted": st.sampled_from(["true", "false", "TRUE", ""]),
    }),
    st.one_of(st.binary(max_size=200),
              st.lists(st.binary(max_size=30), min_size=1, max_size=3).map(
                  lambda vs: multipart(vs, "B", [False] * len(vs)))),
)


@settings(max_examples=examples(500), deadline=None)
@given(answers)
def test_riak_fetch_on_made_up_answers(answer: tuple[int, dict[str, str], bytes]) -> None:
    riak = riak_module()
    backend = riak.RiakBackend(check_props=False, retries=0)
    try:
        backend._request = lambda *args, **kwargs: FakeResponse(*answer)
        fetched = only_timak_errors(backend.fetch, "bucket", "key")
        if fetched is not None:
            assert all(isinstance(s, bytes) for s in fetched.siblings)
    finally:
        backend.close()
