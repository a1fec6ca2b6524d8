"""Safety scenarios every store must pass, as pytest tests: nothing
acknowledged is lost, and nothing stored becomes unreadable.

A store's test module subclasses ``SafetyScenarios`` and provides one
fixture, ``connect``, that opens a new connection to one shared store::

    class TestMyStoreSafety(SafetyScenarios):
        @pytest.fixture
        def connect(self, tmp_path):
            return lambda: MyBackend(tmp_path / "db")

What they check, on the store itself (each scenario uses a fresh bucket):

* a damaged sibling beside a good one (item data that is not UTF-8 or
  holds a msgpack extension type, a truncated or out-of-order or short
  compressed chunk, trailing bytes after item data, a row shifted by one
  byte, a zlib bomb) is never merged, repaired over or folded away: every
  read raises ``CorruptValueError`` or skips it with ``skip_corrupt=True``,
  fan-out and sweeps go on, and its bytes stay in the store;
* a key only ever written blind keeps every acknowledged item whatever
  ``max_items`` its readers have, and gets no capacity from a read;
* the default size limits take the items users write: 8 KiB at capacity
  1,000, id-only and ~50-byte items at capacity 100,000, and an item of
  exactly the limit (one byte more is refused, before anything is written).

This module imports pytest and the damaging helpers read the documented
byte layout of format 3 (``timak._encoding``).
"""

from __future__ import annotations

import contextlib
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from . import _encoding as encoding
from .backends import Backend
from .errors import ConfigError, CorruptValueError, ValueTooLargeError
from .timelines import Timeline

__all__ = ["DAMAGES", "SafetyScenarios", "damage"]


# -- damaging a stored value, by its documented layout ---------------------------


def _body(value: bytes) -> list[Any]:
    assert value[:3] == b"TK\x03", value[:8]
    body: list[Any] = msgpack.unpackb(value[3:], raw=False, strict_map_key=False)
    return body


def _value(body: list[Any]) -> bytes:
    packed: bytes = msgpack.packb(body)
    return b"TK\x03" + packed


def _plain_row(body: list[Any]) -> tuple[list[Any], int]:
    """The first plain chunk of ``body`` and the position of a row with data."""
    for chunk in body[1]:
        if chunk[1] == 0:
            for n, row in enumerate(chunk[2]):
                if len(msgpack.unpackb(row)) == 4:
                    return chunk, n
    raise AssertionError("no plain row with data")


def _set_data(value: bytes, data: bytes) -> bytes:
    body = _body(value)
    chunk, n = _plain_row(body)
    row = msgpack.unpackb(chunk[2][n])
    chunk[2][n] = msgpack.packb([row[0], row[1], row[2], data])
    return _value(body)


def _compressed(body: list[Any]) -> list[list[Any]]:
    found = [chunk for chunk in body[1] if chunk[1] == 1]
    assert len(found) >= 2, "the source value needs two compressed chunks"
    return found


def _not_utf8(value: bytes) -> bytes:
    return _set_data(value, b"\xa5h\xffllo")


def _ext_type(value: bytes) -> bytes:
    return _set_data(value, msgpack.packb({"a": msgpack.ExtType(5, b"xyz")}))


def _timestamp(value: bytes) -> bytes:
    return _set_data(value, msgpack.packb([msgpack.Timestamp(1, 0)]))


def _trailing(value: bytes) -> bytes:
    return _set_data(value, msgpack.packb({"text": "hello"}) + b"\x01")


def _truncated(value: bytes) -> bytes:
    body = _body(value)
    chunk = _compressed(body)[-1]
    chunk[2] = chunk[2][: len(chunk[2]) // 2]
    return _value(body)


def _out_of_order(value: bytes) -> bytes:
    body = _body(value)
    first, second = _compressed(body)[:2]
    at_first, at_second = body[1].index(first), body[1].index(second)
    body[1][at_first], body[1][at_second] = second, first
    return _value(body)


def _short(value: bytes) -> bytes:
    body = _body(value)
    chunk = _compressed(body)[-1]
    rows = msgpack.unpackb(zlib.decompress(chunk[2]))
    chunk[2] = zlib.compress(msgpack.packb(rows[: len(chunk[0]) - 1]))
    return _value(body)


def _shifted(value: bytes) -> bytes:
    body = _body(value)
    chunk, _ = _plain_row(body)
    rows = chunk[2]
    rows[0], rows[1] = rows[0][:-1], rows[0][-1:] + rows[1]
    return _value(body)


def _bomb(value: bytes) -> bytes:
    body = _body(value)
    chunk = _compressed(body)[-1]
    chunk[2] = zlib.compress(b"\x00" * (encoding.MAX_DECODED_BYTES + 1024), 1)
    return _value(body)


#: Damages that a reader written from the byte layout can do to a value.
DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "data-not-utf8": _not_utf8,
    "data-ext-type": _ext_type,
    "data-timestamp": _timestamp,
    "data-trailing-bytes": _trailing,
    "zlib-truncated": _truncated,
    "chunks-out-of-order": _out_of_order,
    "fewer-rows-than-ids": _short,
    "row-shifted-one-byte": _shifted,
    "zlib-bomb": _bomb,
}


def damage(name: str, value: bytes) -> bytes:
    """``value`` (format 3, with two compressed chunks and data in its
    plain chunk) damaged as ``DAMAGES[name]`` does; it differs from it."""
    damaged = DAMAGES[name](value)
    assert damaged != value
    return damaged


def source_value(store: Backend, bucket: str) -> bytes:
    """A good stored value with compressed chunks and data: 300 items."""
    tl = Timeline(store, bucket=bucket, max_items=300)
    tl.add_many("src", [(f"s{i}", i, {"text": f"hello {i}", "n": i}) for i in range(300)])
    tl.add("src", "top", 10_000, {"text": "hello"})
    (value,) = store.fetch(bucket, "src").siblings
    return value


class SafetyScenarios:
    """The scenarios; subclasses provide ``connect``."""

    @pytest.fixture
    def connect(self) -> Callable[[], Backend]:  # pragma: no cover - overridden
        raise NotImplementedError("subclass SafetyScenarios and provide a connect fixture")

    @pytest.fixture
    def store(self, connect: Callable[[], Backend]) -> Any:
        backend = connect()
        yield backend
        backend.close()

    @pytest.fixture
    def bucket(self) -> str:
        return f"safety-{uuid.uuid4().hex[:12]}"

    # -- a corrupt sibling beside a good one ---------------------------------

    @pytest.mark.parametrize("name", sorted(DAMAGES))
    def test_a_damaged_sibling_is_never_merged_or_repaired_over(
        self, store: Backend, bucket: str, name: str
    ) -> None:
        bad = damage(name, source_value(store, bucket))
        tl = Timeline(store, bucket=bucket, max_items=50, fold_at=4)
        tl.add("k", "other", 100_000, {"text": "good"})
        store.store(bucket, "k", bad)
        before = sorted(store.fetch(bucket, "k").siblings)

        # Writes check every sibling they merge: they refuse, writing nothing.
        writes: list[Callable[[], object]] = [lambda: tl.add("k", "new", 5),
                                              lambda: tl.delete("k", "other")]
        for write in writes:
            with pytest.raises(CorruptValueError):
                write()
            assert sorted(store.fetch(bucket, "k").siblings) == before
        # A read may stay lazy and miss damage outside what it returns (the
        # newest 50 here), but never stores a merge that holds the damage.
        reads: list[Callable[[], object]] = [lambda: tl.get("k"), lambda: tl.range("k"),
                                             lambda: tl.count("k"), lambda: tl.page("k", 5)]
        for read in reads:
            with contextlib.suppress(CorruptValueError):
                read()
            assert sorted(store.fetch(bucket, "k").siblings) == before
        if name.startswith("data-") or name == "row-shifted-one-byte":
            with pytest.raises(CorruptValueError):  # the damage is in what get returns
                tl.get("k")
        assert tl.fold("k") == 0
        assert tl.get("k", skip_corrupt=True) == [{"text": "good"}]
        assert sorted(store.fetch(bucket, "k").siblings) == before

        # Blind writes still land and fold; the damaged bytes stay as they were.
        for i in range(6):
            assert tl.fanout(["k"], f"f{i}", 200_000 + i) == 1
        assert bad in store.fetch(bucket, "k").siblings
        assert tl.get("k", skip_corrupt=True) == [*(f"f{i}" for i in range(5, -1, -1)),
                                                   {"text": "good"}]
        stats = tl.compact(["k"])
        assert (stats.corrupt, stats.folded) == (1, 0)
        assert bad in store.fetch(bucket, "k").siblings

    @pytest.mark.parametrize("name", ["data-ext-type", "data-timestamp", "row-shifted-one-byte"])
    def test_a_damaged_single_sibling_is_corrupt_not_returned(
        self, store: Backend, bucket: str, name: str
    ) -> None:
        store.store(bucket, "k", damage(name, source_value(store, bucket)))
        tl = Timeline(store, bucket=bucket, max_items=None)
        with pytest.raises(CorruptValueError):
            tl.get("k")
        assert tl.get("k", skip_corrupt=True) == []

    # -- keys only ever written blind ------------------------------------------

    def test_readers_of_any_capacity_never_trim_blind_only_keys(
        self, store: Backend, bucket: str
    ) -> None:
        writer = Timeline(store, bucket=bucket, max_items=50, fold_at=1000)
        for i in range(30):
            writer.fanout(["k"], f"i{i}", i)
        assert len(Timeline(store, bucket=bucket, max_items=10).get("k")) == 10
        assert Timeline(store, bucket=bucket, max_items=10).count("k") == 10
        assert Timeline(store, bucket=bucket, max_items=10).compact(["k"]).folded == 0
        assert len(writer.get("k")) == 30
        Timeline(store, bucket=bucket, max_items=None).get("k")
        writer.add("k", "late", 100)  # no capacity was fixed by a reader
        assert len(writer.get("k")) == 31
        for sibling in store.fetch(bucket, "k").siblings:
            assert encoding.decode(sibling).capacity in (None, 50)

    # -- size limits --------------------------------------------------------------

    def test_default_limits_take_what_users_write(self, store: Backend, bucket: str) -> None:
        home = Timeline(store, bucket=bucket)  # capacity 1,000
        assert home.item_limit() >= 8 * 1024
        home.add("k", "empty", 1, b"")
        home.add("k", "8k", 2, {"text": "x" * 8192})
        assert home.get("k") == [{"text": "x" * 8192}, b""]
        big = Timeline(store, bucket=bucket + "-big", max_items=100_000)
        assert big.add("k", 1, 1) == [1]  # the timak 0.1 test case
        assert big.add("k", "post-2", 2, {"text": "y" * 50}) == [{"text": "y" * 50}, 1]

    def test_an_item_of_exactly_the_limit_fits_and_one_byte_more_does_not(
        self, store: Backend, bucket: str
    ) -> None:
        tl = Timeline(store, bucket=bucket, max_items=2000)
        limit = tl.item_limit()

        def size(n: int) -> int:
            return len(encoding.encode(encoding.decode(_single(tl, n))))

        n = limit - 64
        while size(n) < limit:
            n += 1
        if size(n) > limit:  # a length tag grew: the exact size is not reachable
            n -= 1
        tl.add("k", "x", 1, b"\x00" * n)
        with pytest.raises(ValueTooLargeError, match="lower max_items"):
            tl.add("k", "y", 2, b"\x00" * (n + 1))
        assert tl.get("k") == [b"\x00" * n]

    def test_settings_without_room_for_an_item_are_refused(self, store: Backend) -> None:
        with pytest.raises(ConfigError, match="lower max_items"):
            Timeline(store, max_items=100_000, max_value_bytes=1_000_000)
        for too_big in (2**31 + 1, 2**70):
            with pytest.raises(ConfigError, match="max_items"):
                Timeline(store, max_items=too_big)


def _single(tl: Timeline, n: int) -> bytes:
    from .value import Record, TimelineValue

    record = Record("x", 1, data=b"\x00" * n, arrived=2**50)
    return encoding.encode(TimelineValue({"x": record}))
