"""The value encoding: round trips, compression, chunking and the format byte.

Bad bytes given to the decoder (a fixed corpus and fuzzing) are in test_fuzz.py.
"""

from __future__ import annotations

import itertools
import zlib

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from timak._encoding import CHUNK_ROWS, COMPRESS_AT, HOT_ROWS, MAGIC, decode, encode
from timak._records import _UNSET
from timak.errors import CorruptValueError, InvalidDataError
from timak.value import Record, TimelineValue, merge

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def values(draw: st.DrawFn) -> TimelineValue:
    recs = []
    for i in range(draw(st.integers(0, 12))):
        deleted = draw(st.booleans())
        recs.append(
            Record(
                draw(st.one_of(st.just(i), st.just(f"id-{i}"))),
                draw(
                    st.one_of(
                        st.integers(-(2**63), 2**63 - 1),
                        st.floats(allow_nan=False, allow_infinity=False),
                    )
                ),
                deleted,
                None if deleted else draw(json_like),
                draw(st.integers(0, 2**63 - 1)),
            )
        )
    return merge([], 1000, extra=recs)


@settings(max_examples=examples(500), suppress_health_check=[HealthCheck.too_slow])
@given(values(), st.sampled_from([0, 2, 96]), st.sampled_from([1, 3, 48]))
def test_round_trip(value: TimelineValue, hot_rows: int, chunk_rows: int) -> None:
    data = encode(value, compress_at=0, hot_rows=hot_rows, chunk_rows=chunk_rows)
    for decoded in (decode(data), decode(data, lazy=True)):
        assert decoded == value and decoded.capacity == value.capacity
        assert decoded.newest_first() == value.newest_first()
        assert encode(decoded, compress_at=0, hot_rows=hot_rows, chunk_rows=chunk_rows) == data


def test_large_values_are_compressed_in_chunks_and_round_trip() -> None:
    value = merge(
        [], 1000, extra=[Record(i, i, False, {"body": "hello " * 20}) for i in range(200)]
    )
    data = encode(value)
    assert data[:3] == MAGIC + b"\x03"
    capacity, chunks = msgpack.unpackb(data[3:])
    assert capacity == 1000
    # The newest chunk is plain and at most HOT_ROWS long; the rest are
    # compressed chunks of CHUNK_ROWS records.
    assert chunks[0][1] == 0 and len(chunks[0][0]) <= HOT_ROWS
    assert [c[1] for c in chunks[1:]] == [1] * (len(chunks) - 1)
    assert all(len(c[0]) == CHUNK_ROWS for c in chunks[1:])
    assert sum(len(c[0]) for c in chunks) == 200
    assert len(data) < len(encode(value, compress_at=1 << 40)) / 3
    assert decode(data) == value


def test_small_values_are_one_plain_chunk() -> None:
    data = encode(merge([], 10, extra=[Record("a", 1)]))
    assert data[:3] == MAGIC + b"\x03" and len(data) < COMPRESS_AT
    assert msgpack.unpackb(data[3:]) == [10, [[["a"], 0, [msgpack.packb([1, 0, 0])]]]]


def test_blind_single_records_state_no_capacity() -> None:
    value = TimelineValue({"a": Record("a", 1, False, {"x": 1}, 7)})
    assert value.capacity is None
    data = encode(value)
    assert msgpack.unpackb(data[3:])[0] is None
    assert decode(data).capacity is None and decode(data) == value


def test_data_stays_encoded_until_read() -> None:
    value = merge([], 100, extra=[Record(i, i, False, {"n": i}) for i in range(100)])
    decoded = decode(encode(value), lazy=True)
    # Looking at the newest record decodes that one record, and not its data
    # until it is asked for.
    newest = decoded.newest()
    assert newest is not None and newest._data is _UNSET
    assert [len(c._records) for c in decoded.chunks] == [1] + [0] * (len(decoded.chunks) - 1)
    assert [r.id for r in itertools.islice(decoded.iter_newest(hint=3), 3)] == [99, 98, 97]
    assert [len(c._records) for c in decoded.chunks] == [3] + [0] * (len(decoded.chunks) - 1)
    assert newest.data == {"n": 99} and newest.encoded_data == msgpack.packb({"n": 99})


def test_unchanged_chunks_are_written_back_as_read() -> None:
    value = merge([], 300, extra=[Record(i, i, False, {"n": i}) for i in range(300)])
    data = encode(value)
    decoded = decode(data, lazy=True)
    grown = merge([decoded], 300, extra=[Record("new", 1000, False, "x")])
    again = encode(grown)
    old_chunks = msgpack.unpackb(data[3:])[1]
    new_chunks = msgpack.unpackb(again[3:])[1]
    # The compressed chunks are the same bytes; only the oldest lost a record
    # (its id), while its rows keep the trimmed one as an ignored tail.
    assert [c[2] for c in new_chunks[1:]] == [c[2] for c in old_chunks[1:]]
    assert new_chunks[-1][0] == old_chunks[-1][0][:-1]
    assert not any(c.loaded for c in decoded.chunks[1:])
    assert decode(again) == merge([value], 300, extra=[Record("new", 1000, False, "x")])


@pytest.mark.parametrize("compressed", [False, True])
def test_formats_1_and_2_still_decode(compressed: bool) -> None:
    rows = [["b", 2, 0, 5, {"x": [1, 2]}], ["a", 1, 1, 4], [3, 0.5, 0, 3]]
    body = msgpack.packb(rows)
    data = MAGIC + (b"\x02" + zlib.compress(body) if compressed else b"\x01" + body)
    value = decode(data)
    assert value.legacy and value.capacity is None
    assert value.newest_first() == [
        Record("b", 2, False, {"x": [1, 2]}, 5), Record("a", 1, True, None, 4),
        Record(3, 0.5, False, None, 3),
    ]
    assert encode(value)[:3] == MAGIC + b"\x03"


def test_a_newer_format_is_named() -> None:
    with pytest.raises(CorruptValueError, match="format 4"):
        decode(MAGIC + b"\x04" + msgpack.packb([None, []]))


def test_unencodable_data_raises_typed_error() -> None:
    with pytest.raises(InvalidDataError):
        encode(TimelineValue({"a": Record("a", 1, False, {1, 2})}))


def test_the_order_across_chunks_is_checked_whichever_is_decoded_first() -> None:
    """Two compressed chunks swapped: decoding the later one first, then the
    earlier, still finds the seam out of order (the check used to run only
    when the earlier chunk was decoded first)."""
    from timak.backends.memory import MemoryBackend
    from timak.testing_safety import damage, source_value

    bad = damage("chunks-out-of-order", source_value(MemoryBackend(), "b"))
    for first, second in ((0, 1), (1, 0)):
        value = decode(bad, lazy=True)
        blobs = [c for c in value.chunks if c.blob is not None]
        order = [blobs[first], blobs[second]]
        with pytest.raises(CorruptValueError, match="out of order"):
            for chunk in order:
                chunk.records()


def test_encode_twin_is_what_decoding_its_bytes_gives() -> None:
    """The engine keeps ``encode_twin``'s value in place of decoding the
    bytes it wrote: same bytes as ``encode``, and the same chunks, rows,
    blobs and records as ``decode(lazy=True)`` of them."""
    from timak._encoding import decode, encode, encode_twin, validate
    from timak.value import Record, merge

    for size in (0, 1, 97, 1000):
        value = merge([], 1000, extra=[
            Record(f"i{n}", n, n % 7 == 0, None if n % 7 == 0 else {"n": n, "t": "x" * 40}, n)
            for n in range(size)])
        data, twin = encode_twin(value)
        assert data == encode(value)
        read = decode(data, lazy=True)
        assert [(c.ids, c.rows, c.blob) for c in twin.chunks] == \
            [(c.ids, c.rows, c.blob) for c in read.chunks]
        assert twin.newest_first() == read.newest_first() and twin.capacity == read.capacity
        validate(twin)
