"""The value encoding: round trips, compression, and typed errors for bad bytes."""

from __future__ import annotations

import contextlib
import zlib

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from timak.encoding import COMPRESS_AT, MAGIC, decode, encode
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
@given(values())
def test_round_trip(value: TimelineValue) -> None:
    assert decode(encode(value)) == value


def test_large_values_are_compressed_and_round_trip() -> None:
    value = merge(
        [], 1000, extra=[Record(i, i, False, {"body": "hello " * 20}) for i in range(200)]
    )
    data = encode(value)
    assert data[:3] == MAGIC + b"\x02"
    assert len(data) < len(encode(value, compress_at=1 << 40)) / 3
    assert decode(data) == value


def test_small_values_are_plain() -> None:
    data = encode(merge([], 10, extra=[Record("a", 1)]))
    assert data[:3] == MAGIC + b"\x01" and len(data) < COMPRESS_AT


def test_unencodable_data_raises_typed_error() -> None:
    with pytest.raises(InvalidDataError):
        encode(TimelineValue({"a": Record("a", 1, False, {1, 2})}))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"TK",
        b"\x80\x04pickle",  # a pickle header is never unpickled
        b"TK\x09" + msgpack.packb([]),  # unknown format
        b"TK\x01\xc1",  # invalid msgpack
        b"TK\x01" + msgpack.packb({"a": 1}),  # not a list
        b"TK\x01" + msgpack.packb([["a", 1]]),  # short record
        b"TK\x01" + msgpack.packb([["a", 1, 2, 0]]),  # bad flag
        b"TK\x01" + msgpack.packb([["a", 1, True, 0]]),  # bool flag
        b"TK\x01" + msgpack.packb([["a", "1", 0, 0]]),  # string score
        b"TK\x01" + msgpack.packb([["a", float("nan"), 0, 0]]),
        b"TK\x01" + msgpack.packb([[None, 1, 0, 0]]),
        b"TK\x01" + msgpack.packb([["", 1, 0, 0]]),
        b"TK\x01" + msgpack.packb([["a", 1, 0, -1]]),  # negative arrival
        b"TK\x01" + msgpack.packb([["a", 1, 1, 0, "data on a tombstone"]]),
        b"TK\x01" + msgpack.packb([["a", 1, 0, 0], ["a", 2, 0, 0]]),  # duplicate id
        b"TK\x02not zlib",
        b"TK\x02" + zlib.compress(msgpack.packb([]))[:-3],  # truncated
        b"TK\x02" + zlib.compress(msgpack.packb([])) + b"extra",
        b"TK\x02" + zlib.compress(b"\x00" * (65 * 1024 * 1024), 9),  # bomb
    ],
)
def test_corrupt_bytes_raise_corrupt_value_error(data: bytes) -> None:
    with pytest.raises(CorruptValueError):
        decode(data)


@settings(max_examples=examples(2000))
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_corrupt_value_error(data: bytes) -> None:
    with contextlib.suppress(CorruptValueError):
        decode(data)


@settings(max_examples=examples(1000), suppress_health_check=[HealthCheck.too_slow])
@given(values(), st.data())
def test_mutated_values_raise_only_corrupt_value_error(
    value: TimelineValue, draw: st.DataObject
) -> None:
    data = bytearray(encode(value))
    for _ in range(draw.draw(st.integers(1, 4))):
        pos = draw.draw(st.integers(0, len(data) - 1))
        data[pos] = draw.draw(st.integers(0, 255))
    with contextlib.suppress(CorruptValueError):
        decode(bytes(data))
