"""Hostile input through ``Timeline`` on memory and SQLite.

Any valid key is stored intact; invalid keys, ids, scores, data and sizes are
refused with a typed error *before anything is written*; a corrupt sibling
never takes the other siblings down with it.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from timak import Timeline
from timak.backends.base import MAX_KEY_BYTES, Backend, capabilities
from timak.backends.memory import MemoryBackend
from timak.backends.sqlite import SQLiteBackend
from timak.errors import (
    ConfigError,
    CorruptValueError,
    InvalidCursorError,
    InvalidDataError,
    InvalidItemError,
    InvalidKeyError,
    InvalidScoreError,
    ValueTooLargeError,
)
from timak.testing import HOSTILE_KEYS

Snapshot = dict[str, list[bytes]]


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Backend]]:
    made: dict[str, Backend] = {
        "memory": MemoryBackend(),
        "sqlite": SQLiteBackend(tmp_path_factory.mktemp("hostile") / "hostile.db"),
    }
    yield made
    for backend in made.values():
        backend.close()


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, backends: dict[str, Backend]) -> Backend:
    chosen: Backend = backends[request.param]
    return chosen


@pytest.fixture
def make(backend: Backend) -> Callable[..., Timeline]:
    """Timelines on ``backend``, each test in a bucket of its own."""
    bucket = f"hostile-{uuid.uuid4().hex[:10]}"
    return lambda **options: Timeline(backend, bucket=bucket, **{"max_items": 5, **options})


def snapshot(tl: Timeline) -> Snapshot:
    """Every key of the timeline's bucket and its siblings, byte for byte."""
    conn, bucket = tl.connection, tl.bucket
    return {key: sorted(conn.fetch(bucket, key).siblings) for key in conn.keys(bucket)}


# -- keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=range(len(HOSTILE_KEYS)))
def test_hostile_keys_round_trip(make: Callable[..., Timeline], key: str) -> None:
    tl = make()
    assert tl.add(key, 1, 5) == [1]
    assert tl.fanout([key], 2, 6) == 1
    assert tl.get(key) == [2, 1]
    assert list(tl.connection.keys(tl.bucket)) == [key]
    assert tl.delete(key, 1) == [2]


valid_keys = st.text(min_size=1, max_size=MAX_KEY_BYTES).filter(
    lambda k: len(k.encode("utf-8")) <= MAX_KEY_BYTES
)


@pytest.mark.parametrize("name", ["memory", "sqlite"])
@settings(max_examples=examples(150), deadline=None)
@given(key=valid_keys)
def test_any_valid_key_round_trips(backends: dict[str, Backend], name: str, key: str) -> None:
    tl = Timeline(backends[name], bucket="generated-keys", max_items=5)
    tl.add(key, "item", 7, {"key": key})
    assert tl.get(key) == [{"key": key}]
    assert key in set(tl.connection.keys(tl.bucket))


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "must not be empty"),
        ("x" * (MAX_KEY_BYTES + 1), f"{MAX_KEY_BYTES + 1} bytes"),
        ("é" * (MAX_KEY_BYTES // 2 + 1), f"{MAX_KEY_BYTES + 2} bytes"),
        ("🙂" * (MAX_KEY_BYTES // 4) + "a", f"{MAX_KEY_BYTES + 1} bytes"),
        ("lone \ud800 surrogate", "not valid Unicode"),
        ("\udfff", "not valid Unicode"),
        (123, "must be a str, got int"),
        (None, "must be a str, got NoneType"),
        (b"bytes", "must be a str, got bytes"),
        (["list"], "must be a str, got list"),
    ],
    ids=["empty", "long-ascii", "long-2-byte", "long-4-byte", "surrogate", "lone-low",
         "int", "none", "bytes", "list"],
)
def test_bad_keys_are_refused_by_name(
    make: Callable[..., Timeline], key: Any, problem: str
) -> None:
    tl = make()
    tl.add("good", 1, 1)
    before = snapshot(tl)
    calls: list[Callable[[], Any]] = [
        lambda: tl.add(key, 1, 5),
        lambda: tl.delete(key, 1, 5),
        lambda: tl.delete(key, 1),
        lambda: tl.get(key),
        lambda: tl.fanout([key], 1, 5),
        lambda: tl.fanout(["good", key, "also-good"], 2, 5),
        lambda: tl.range(key),
        lambda: tl.page(key),
    ]
    for call in calls:
        with pytest.raises(InvalidKeyError, match=problem):
            call()
    assert snapshot(tl) == before


def test_fanout_with_a_bad_key_in_a_later_chunk_writes_nothing(
    make: Callable[..., Timeline]
) -> None:
    tl = make()
    with pytest.raises(InvalidKeyError):
        tl.fanout(["a", "b", ""], 1, 5, chunk=2)
    assert snapshot(tl) == {}


# -- ids, scores and data -----------------------------------------------------------


@pytest.mark.parametrize(
    "item_id",
    [True, False, 1.5, None, "", "x" * 1025, 2**63, -(2**63) - 1, b"bytes", (1,),
     "\ud800"],
    ids=["true", "false", "float", "none", "empty", "long", "big", "small", "bytes",
         "tuple", "surrogate"],
)
def test_bad_ids_are_refused(make: Callable[..., Timeline], item_id: Any) -> None:
    tl = make()
    tl.add("k", 1, 1)
    before = snapshot(tl)
    for call in (
        lambda: tl.add("k", item_id, 5),
        lambda: tl.delete("k", item_id, 5),
        lambda: tl.delete("k", item_id),
        lambda: tl.fanout(["k", "j"], item_id, 5),
    ):
        with pytest.raises(InvalidItemError):
            call()
    assert snapshot(tl) == before


@pytest.mark.parametrize(
    "score",
    [float("nan"), float("inf"), float("-inf"), True, 2**63, -(2**63) - 1, "garbage",
     "2011-13-45", "", "2011-01-01T25:00", "5", None, object(), 1j, [1]],
    ids=["nan", "inf", "-inf", "bool", "big", "small", "garbage", "bad-date", "empty",
         "bad-hour", "digits", "none", "object", "complex", "list"],
)
def test_bad_scores_are_refused(make: Callable[..., Timeline], score: Any) -> None:
    tl = make()
    tl.add("k", 1, 1)
    before = snapshot(tl)
    calls: list[Callable[[], Any]] = [
        lambda: tl.add("k", 2, score),
        lambda: tl.fanout(["k", "j"], 2, score),
    ]
    if score is not None:  # delete(score=None) means "look the score up"
        calls.append(lambda: tl.delete("k", 1, score))
    for call in calls:
        with pytest.raises(InvalidScoreError):
            call()
    assert snapshot(tl) == before


@pytest.mark.parametrize(
    ("start", "stop"),
    [
        (dt.datetime(2011, 1, 1), dt.datetime(2012, 1, 1, tzinfo=dt.timezone.utc)),
        ("2011-01-01T00:00:00", "2012-01-01T00:00:00+02:00"),
        ("garbage", None),
        (None, float("nan")),
    ],
    ids=["naive-aware", "naive-aware-iso", "garbage", "nan"],
)
def test_bad_ranges_are_refused(make: Callable[..., Timeline], start: Any, stop: Any) -> None:
    tl = make()
    tl.add("k", 1, 1)
    with pytest.raises(InvalidScoreError):
        tl.range("k", start, stop)


@pytest.mark.parametrize(
    "data",
    [{1, 2}, frozenset([1]), object(), dt.datetime(2011, 1, 1), {"nested": {1, 2}},
     2**64, "\ud800", {"k": "\udfff"}, {(1, 2): "tuple key"}, {"a": [{(3,): 4}]},
     Exception("x"), type, {"when": dt.date(2020, 1, 1)}],
    ids=["set", "frozenset", "object", "datetime", "nested-set", "huge-int", "surrogate",
         "nested-surrogate", "tuple-key", "nested-tuple-key", "exception", "class",
         "nested-date"],
)
def test_unencodable_data_is_refused(make: Callable[..., Timeline], data: Any) -> None:
    tl = make()
    tl.add("k", 1, 1)
    before = snapshot(tl)
    for call in (
        lambda: tl.add("k", 2, 5, data),
        lambda: tl.fanout(["k", "j"], 2, 5, data),
    ):
        with pytest.raises(InvalidDataError):
            call()
    assert snapshot(tl) == before
    assert tl.get("k") == [1]  # and the key still reads


# -- sizes -------------------------------------------------------------------------


def test_oversized_item_is_refused_before_writing(make: Callable[..., Timeline]) -> None:
    tl = make(max_item_bytes=1000)
    tl.add("k", 1, 1)
    before = snapshot(tl)
    for call in (
        lambda: tl.add("k", 2, 5, "x" * 1000),
        lambda: tl.add("k", "y" * 990, 5),
        lambda: tl.fanout(["k", "j"], 2, 5, {"blob": b"\0" * 2000}),
    ):
        with pytest.raises(ValueTooLargeError, match="max_item_bytes is 1000"):
            call()
    assert snapshot(tl) == before
    tl.add("k", 3, 5, "x" * 900)  # just under the limit is fine
    assert tl.get("k") == ["x" * 900, 1]


def test_oversized_value_is_refused_before_writing(make: Callable[..., Timeline]) -> None:
    # Each item may take max_value_bytes / (max_items + 48) bytes, so that a
    # full timeline always fits: items that grow are refused from 80 bytes.
    tl = make(max_items=100, max_value_bytes=148 * 80)
    added = 0
    with pytest.raises(ValueTooLargeError, match="max_value_bytes is 11840"):
        for n in range(100):
            before = snapshot(tl)
            # Random-looking data, so compression cannot keep it small.
            tl.add("k", n, n, (uuid.uuid4().hex * 8)[: 4 * n])
            added += 1
    assert 3 <= added < 20
    assert snapshot(tl) == before
    assert len(tl.get("k")) == added


# -- corrupt siblings -----------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [b"garbage", b"", b"TK\x01\xc1", b"TK\x09future", b"TK\x02not zlib"],
    ids=["text", "empty", "bad-msgpack", "future-format", "bad-zlib"],
)
def test_a_corrupt_sibling_never_erases_the_others(
    make: Callable[..., Timeline], garbage: bytes
) -> None:
    tl = make(fold_at=3)
    tl.add("k", 1, 1)
    tl.connection.store(tl.bucket, "k", garbage)
    tl.fanout(["k"], 2, 2)
    before = snapshot(tl)
    # The fan-out's fold merged the good siblings where the store can
    # replace exactly those (memory, SQLite), and left the corrupt one.
    narrows = capabilities(tl.connection).narrow
    assert len(before["k"]) == (2 if narrows else 3)
    assert garbage in before["k"]

    with pytest.raises(CorruptValueError) as raised:
        tl.get("k")
    assert raised.value.key == "k"
    for refused in (
        lambda: tl.add("k", 3, 3),
        lambda: tl.delete("k", 1),
        lambda: tl.delete("k", 1, 1),
        lambda: tl.page("k"),
        lambda: tl.range("k"),
        lambda: tl.changes("k"),
    ):
        with pytest.raises(CorruptValueError):
            refused()
    assert snapshot(tl) == before  # nothing was written back over it

    assert tl.get("k", skip_corrupt=True) == [2, 1]
    assert snapshot(tl) == before  # skipping does not repair either

    # Blind writes still land beside it, folding leaves the key alone, and a
    # sweep counts it rather than failing.
    assert tl.fanout(["k", "other"], 4, 4) == 2
    assert tl.fanout(["k"], 5, 5) == 1
    assert tl.fold("k") == 0
    assert tl.compact().corrupt == 1
    assert tl.get("k", skip_corrupt=True) == [5, 4, 2, 1]
    assert tl.get("other") == [4]
    assert garbage in tl.connection.fetch(tl.bucket, "k").siblings


# -- fanout and compact arguments (issue 10, defects 6 and 7) -------------------------


@pytest.mark.parametrize("keys", ["alice:home", b"alice:home"])
def test_fanout_refuses_one_str_of_keys(make: Callable[..., Timeline], keys: Any) -> None:
    tl = make()
    before = snapshot(tl)
    with pytest.raises(InvalidKeyError, match="not one"):
        tl.fanout(keys, "p", 1)
    assert snapshot(tl) == before  # not ten one-letter keys


@pytest.mark.parametrize("chunk", [0, -1, 1.5, "10", True, None])
def test_fanout_chunk_must_be_a_positive_int(make: Callable[..., Timeline], chunk: Any) -> None:
    tl = make()
    with pytest.raises(ConfigError, match="chunk"):
        tl.fanout(["a", "b"], "p", 1, chunk=chunk)
    assert snapshot(tl) == {}


@pytest.mark.parametrize("keys", [[5], [None], ["ok", b"bytes"], ["ok", ""], "abc"])
def test_compact_checks_its_keys(make: Callable[..., Timeline], keys: Any) -> None:
    tl = make()
    tl.fanout(["ok"], 1, 1)
    tl.fanout(["ok"], 2, 2)
    before = snapshot(tl)
    with pytest.raises(InvalidKeyError):
        tl.compact(keys=keys)
    assert snapshot(tl) == before  # "ok" was not folded either: checked first


# -- clocks and options (issue 10, defects 4 and 8) -----------------------------------


@pytest.mark.parametrize(
    "clock",
    [time.time, lambda: -5, lambda: 1.5e15, lambda: True, lambda: 2**63, lambda: None,
     lambda: "1700000000000000", "now"],
    ids=["time.time", "negative", "float", "bool", "too-large", "none", "str", "uncallable"],
)
def test_a_clock_timak_cannot_store_is_refused_up_front(
    backend: Backend, clock: Any
) -> None:
    with pytest.raises(ConfigError, match="clock"):
        Timeline(backend, clock=clock)


def test_a_clock_that_goes_bad_later_writes_nothing(make: Callable[..., Timeline]) -> None:
    readings = iter([1_700_000_000_000_000, 1_700_000_000_000_001, -5, 1.5])
    tl = make(clock=lambda: next(readings))
    tl.add("k", 1, 1)
    before = snapshot(tl)
    with pytest.raises(ConfigError, match="clock"):
        tl.add("k", 2, 2)
    with pytest.raises(ConfigError, match="clock"):
        tl.fanout(["k", "j"], 3, 3)
    assert snapshot(tl) == before
    assert tl.get("k") == [1]  # what was acknowledged still reads back


@pytest.mark.parametrize(
    "options",
    [
        {"skew_us": -1},
        {"skew_us": 1.5},
        {"fold_at": "x"},
        {"fold_at": 1},
        {"max_item_bytes": "x"},
        {"max_item_bytes": 0},
        {"max_items": True},
        {"max_items": 2.0},
        {"order": "newest"},
        {"feed": object()},
    ],
    ids=repr,
)
def test_bad_timeline_options_are_config_errors(
    make: Callable[..., Timeline], options: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError):
        make(**options)


# -- item data (issue 10, defect 9) ---------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [msgpack.ExtType(5, b"x"), msgpack.Timestamp(1, 0), {"when": msgpack.Timestamp(0, 5)},
     [1, [msgpack.ExtType(3, b"")]]],
    ids=["ext", "timestamp", "nested-timestamp", "nested-ext"],
)
def test_msgpack_extension_types_are_refused(
    make: Callable[..., Timeline], data: Any
) -> None:
    tl = make()
    with pytest.raises(InvalidDataError, match="extension"):
        tl.add("k", 1, 1, obj_data=data)
    with pytest.raises(InvalidDataError, match="extension"):
        tl.fanout(["k"], 1, 1, obj_data=data)
    assert snapshot(tl) == {}


# -- cursors (issue 10, defect 5) -----------------------------------------------------


def _crafted(kind: str, *body: Any) -> str:
    packed = msgpack.packb([kind, *body])
    return kind + "1." + base64.urlsafe_b64encode(packed).decode().rstrip("=")


@pytest.mark.parametrize(
    "body",
    [
        (5, 0, "x"),  # an int id's flag with a str id: compared at an equal score
        (5, 1, 7),  # and the other way round
        (math.nan, 0, 1),  # compares false with everything: an empty page
        (math.inf, 0, 1),
        (5, 2, 1),
        (True, 0, 1),
        (5, 0, 2**64 - 1),
        (5, 1, ""),
        (5, 0),
        ([5], 0, 1),
    ],
    ids=repr,
)
def test_crafted_page_cursors_are_refused(make: Callable[..., Timeline], body: Any) -> None:
    tl = make()
    for i in range(6):
        tl.add("k", i, 5)  # int ids at the cursor's score
        tl.add("k", f"s{i}", 5)
    with pytest.raises(InvalidCursorError, match="page cursor"):
        tl.page("k", limit=2, cursor=_crafted("p", *body))


def test_cursor_errors_say_what_is_wrong(make: Callable[..., Timeline]) -> None:
    tl = make()
    for i in range(4):
        tl.add("k", i, i)
    cursor = tl.page("k", limit=2).cursor
    change_cursor = tl.changes("k").cursor
    assert cursor is not None
    cases = {
        cursor + "AAAA": "cut short or altered",  # msgpack: "received extra data"
        cursor[:-6]: "cut short or altered",
        cursor[:3] + "!!" + cursor[5:]: "cut short or altered",
        change_cursor: "got a change cursor",
        _crafted("p", 1.0, 0): "cut short or altered",
        "x" * 20: "not a timak page cursor",
    }
    for bad, said in cases.items():
        with pytest.raises(InvalidCursorError, match=said) as raised:
            tl.page("k", cursor=bad)
        assert "unpack" not in str(raised.value)
    with pytest.raises(InvalidCursorError, match="is a str"):
        tl.page("k", cursor=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidCursorError, match="got a page cursor"):
        tl.changes("k", cursor)
    for body in [(1.5, []), (5, [b"short"]), (-2, []), (5, "x")]:
        with pytest.raises(InvalidCursorError, match="change cursor"):
            tl.changes("k", _crafted("c", *body))
