"""Timeline on memory and SQLite: the timak 0.1 behaviour, and what is new."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from timak import Timeline
from timak._encoding import decode
from timak._engine import DELTA_ROWS
from timak._scores import from_datetime
from timak.backends import Backend, connect
from timak.backends.memory import MemoryBackend
from timak.backends.sqlite import SQLiteBackend
from timak.errors import (
    ConfigError,
    CorruptValueError,
    InvalidCursorError,
    InvalidKeyError,
    InvalidScoreError,
    UnavailableError,
    ValueTooLargeError,
)

Connect = Callable[[], Backend]


@pytest.fixture(params=["memory", "sqlite"])
def connect_store(request: pytest.FixtureRequest, tmp_path: Path) -> Connect:
    """Opens a new connection to one store shared by the test."""
    if request.param == "memory":
        url = f"memory://{uuid.uuid4().hex}"
    else:
        url = f"sqlite:///{tmp_path}/timak.db"
    return lambda: connect(url)


@pytest.fixture
def backend(connect_store: Connect) -> Iterator[Backend]:
    backend = connect_store()
    yield backend
    backend.close()


# -- the timak 0.1 README example and test cases ---------------------------


def test_timak_01_readme_example(backend: Backend) -> None:
    tl = Timeline(connection=backend, max_items=3)
    assert tl.add("brett:tweets", 1, datetime(2011, 1, 1)) == [1]
    assert tl.add("brett:tweets", 2, datetime(2011, 1, 2)) == [2, 1]
    assert tl.add("brett:tweets", 3, datetime(2011, 1, 3)) == [3, 2, 1]
    assert tl.add("brett:tweets", 4, datetime(2011, 1, 4)) == [4, 3, 2]
    assert tl.delete("brett:tweets", 2, datetime(2011, 1, 2)) == [4, 3]
    assert tl.add(
        "brett:tweets",
        5,
        datetime(2011, 1, 5),
        obj_data={"body": "Hello world, this is my first tweet"},
    ) == [{"body": "Hello world, this is my first tweet"}, 4, 3]


def test_the_returned_timeline_is_a_sequence_built_as_far_as_it_is_used() -> None:
    """``add`` returns the visible timeline as timak 0.1's list held it, but
    builds only what is looked at: a slice of the newest builds those items."""
    from timak import Visible

    tl = Timeline("memory://", max_items=1000)
    for n in range(1000):
        tl.fanout(["k"], n, n, obj_data={"n": n} if n % 2 else None)
    tl.get("k")  # fold the blind writes into one value
    result = tl.add("k", "new", 5000, obj_data="top")
    assert isinstance(result, Visible)
    assert result[:3] == ["top", {"n": 999}, 998] and result[0] == "top"
    assert len(result._done) == 3  # built only as far as it was used
    expected = ["top", *[{"n": n} if n % 2 else n for n in range(999, 0, -1)]]
    assert result == expected and list(result) == expected and len(result) == 1000
    assert result[-1] == {"n": 1} and result[10:12] == expected[10:12] and bool(result)
    assert repr(result) == repr(expected) and result + ["x"] == [*expected, "x"]  # noqa: RUF005 - the operator is the point
    asc = Timeline("memory://", max_items=3, order="asc")
    assert asc.add("a", 1, 1) == [1] and asc.add("a", 2, 2) == [1, 2]
    raw = tl.delete("k", "new", 5000, raw=True)
    assert raw[0].id == "new" and raw[0].deleted and len(raw) == 1000


def test_max_items(backend: Backend) -> None:
    timeline = Timeline(connection=backend, max_items=3)
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as 0.1 used it
    for item in (1, 2, 3):
        timeline.add("test-timak", item, now)
    assert len(timeline.get("test-timak")) == 3
    timeline.add("test-timak", 4, now)
    assert len(timeline.get("test-timak")) == 3


def test_delete(backend: Backend) -> None:
    timeline = Timeline(connection=backend, max_items=3)
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as 0.1 used it
    timeline.add("test-timak", 1, now)
    assert len(timeline.get("test-timak")) == 1
    timeline.delete("test-timak", 1, now)
    assert len(timeline.get("test-timak")) == 0


def test_two_writers_through_two_connections(connect_store: Connect) -> None:
    c1, c2 = connect_store(), connect_store()
    t1, t2 = Timeline(connection=c1, max_items=10), Timeline(connection=c2, max_items=10)
    # Two blind writes race: both land as siblings, the read merges them.
    t1.fanout(["k"], 1, 10)
    t2.fanout(["k"], 2, 20)
    assert len(c1.fetch("timelines", "k").siblings) == 2
    assert t1.get("k") == [2, 1]
    assert len(c2.fetch("timelines", "k").siblings) == 1  # read repair
    # Read-modify-write through both connections.
    t1.add("k", 3, 30)
    assert t2.add("k", 4, 40) == [4, 3, 2, 1]
    assert t1.get("k") == [4, 3, 2, 1]


def test_datetime_scores(backend: Backend) -> None:
    tl = Timeline(connection=backend)
    base = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    tl.add("k", "late", base + timedelta(microseconds=1))
    tl.add("k", "early", base)
    tl.add("k", "naive", datetime(2024, 5, 1, 11))  # naive means UTC
    tl.add("k", "iso", "2024-05-01T13:00:00+01:00")  # 12:00 UTC, same as base
    records = tl.get("k", raw=True)
    assert [r.id for r in records] == ["late", "iso", "early", "naive"]
    assert records[0].score == from_datetime(base) + 1


def test_numeric_scores(backend: Backend) -> None:
    tl = Timeline(connection=backend)
    tl.add("k", "a", 1)
    tl.add("k", "b", 2.5)
    tl.add("k", "c", -3)
    assert tl.get("k") == ["b", "a", "c"]
    assert Timeline(connection=backend, order="asc").get("k") == ["c", "a", "b"]


def test_score_scoping(backend: Backend) -> None:
    """A write only affects the item at scores it covers: a delete removes
    adds at or below its score; a later add brings the item back; an older
    write never undoes a newer one."""
    tl = Timeline(connection=backend)
    tl.add("k", "a", 10)
    assert tl.delete("k", "a", 5) == ["a"]  # older delete: the add stands
    assert tl.delete("k", "a", 10) == []  # equal score: the delete wins
    assert tl.add("k", "a", 9) == []  # older add: still deleted
    assert tl.add("k", "a", 11) == ["a"]  # newer add: back
    assert tl.add("k", "a", 3) == ["a"]
    assert tl.get("k", raw=True)[0].score == 11
    assert tl.get("other-key") == []


# -- what is new ----------------------------------------------------------


def test_delete_without_score_looks_the_item_up(backend: Backend) -> None:
    tl = Timeline(connection=backend)
    tl.add("k", "a", 7)
    tl.add("k", "b", 8)
    assert tl.delete("k", "a") == ["b"]
    assert tl.get("k", raw=True)[1].score == 7
    calls_before = len(backend.fetch("timelines", "k").siblings)
    assert tl.delete("k", "missing") == ["b"]  # nothing to delete, nothing written
    assert len(backend.fetch("timelines", "k").siblings) == calls_before


def test_fanout_is_one_blind_write_per_key_and_no_read() -> None:
    from timak.backends.memory import MemoryBackend

    backend = MemoryBackend()
    tl = Timeline(connection=backend)
    followers = [f"home:{i}" for i in range(500)]
    assert tl.fanout(followers, "post-1", 100, {"text": "hi"}) == 500
    assert backend.calls == {"store_many": 1}
    assert tl.get("home:321") == [{"text": "hi"}]


def test_fanout_reports_progress(backend: Backend) -> None:
    seen: list[int] = []
    Timeline(connection=backend).fanout(
        [f"k{i}" for i in range(25)], "x", 1, chunk=10, progress=seen.append
    )
    assert seen == [10, 20, 25]


def test_read_repair_collapses_siblings(backend: Backend) -> None:
    tl = Timeline(connection=backend, fold_at=1000)
    for i in range(5):
        tl.fanout(["k"], i, i)
    assert len(backend.fetch("timelines", "k").siblings) == 5
    assert tl.get("k") == [4, 3, 2, 1, 0]
    assert len(backend.fetch("timelines", "k").siblings) == 1
    assert tl.stats.repairs == 1 and tl.stats.siblings_merged == 5


def test_unread_blind_writes_stay_bounded(backend: Backend) -> None:
    """10,000 blind writes to one key that is never read: siblings stay at or
    below fold_at (the bound for stores that report sibling counts)."""
    tl = Timeline(connection=backend, max_items=100, fold_at=16)
    high_water = 0
    for i in range(10_000):
        tl.fanout(["hot"], i, i)
        if i % 97 == 0:
            high_water = max(high_water, len(backend.fetch("timelines", "hot").siblings))
    final = len(backend.fetch("timelines", "hot").siblings)
    assert final < 16 and high_water < 16
    # Memory and SQLite narrow contexts, so most folds are partial: they leave
    # the base and one delta (2 siblings), so folds come every 14 writes or
    # more; a full fold comes only once the delta would pass DELTA_ROWS.
    full = tl.stats.folds - tl.stats.partial_folds
    assert tl.stats.partial_folds > 0
    assert 1 + (10_000 - 16) // 15 < tl.stats.folds <= 1 + (10_000 - 16) // 14
    assert 0 < full <= 10_000 // (DELTA_ROWS - 16)
    assert tl.get("hot")[:3] == [9999, 9998, 9997]


@pytest.mark.parametrize("failing", [False, True], ids=["folds-stored", "folds-failing"])
def test_concurrent_writers_keep_siblings_under_twice_fold_at(
    tmp_path: Path, failing: bool
) -> None:
    """Four writer threads, each its own Timeline and connection, on one
    SQLite key: the write that reaches each multiple of fold_at folds, so
    the key holds fewer than fold_at siblings plus the writes and folds in
    flight, and fewer than 2 * fold_at (plus those) even while every other
    fold's store fails; and nothing acknowledged is lost."""
    url, fold_at, writers, each = f"sqlite:///{tmp_path}/w.db", 4, 4, 150
    high_water: list[int] = []
    errors: list[BaseException] = []

    class Flaky(SQLiteBackend):
        calls = 0

        def swap_many(self, bucket: str, entries: Any) -> Any:
            Flaky.calls += 1
            if failing and Flaky.calls % 2:
                raise UnavailableError("every other fold fails")
            return super().swap_many(bucket, entries)

    def write(me: int) -> None:
        try:
            backend = Flaky(f"{tmp_path}/w.db")
            tl = Timeline(backend, max_items=10_000, fold_at=fold_at)
            for i in range(each):
                tl.fanout(["k"], f"{me}-{i}", i)
                high_water.append(len(backend.fetch("timelines", "k").siblings))
            backend.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    # Each writer may have one write in flight and one fold under way (or
    # failed) beside the 2 * fold_at: 600 writes never pile up.
    assert max(high_water) < 2 * fold_at + 2 * writers
    assert len(Timeline(url, max_items=10_000).get("k")) == writers * each


class _CannotNarrow(Backend):
    """A memory store behind the plain contract, without ``narrow``, as Riak."""

    def __init__(self) -> None:
        self.inner = MemoryBackend()
        self.fetch = self.inner.fetch  # type: ignore[method-assign]
        self.store = self.inner.store  # type: ignore[method-assign]
        self.store_many = self.inner.store_many  # type: ignore[method-assign]
        self.delete = self.inner.delete  # type: ignore[method-assign]
        self.keys = self.inner.keys  # type: ignore[method-assign]
        self.close = self.inner.close  # type: ignore[method-assign]


def test_unread_blind_writes_stay_bounded_without_narrowing() -> None:
    """Where a store cannot narrow a context (Riak), every fold is full and
    leaves one sibling: a fold every fold_at - 1 writes after the first."""
    backend = _CannotNarrow()
    tl = Timeline(connection=backend, max_items=100, fold_at=16)
    for i in range(10_000):
        tl.fanout(["hot"], i, i)
        assert len(backend.fetch("timelines", "hot").siblings) < 16
    assert tl.stats.partial_folds == 0
    assert tl.stats.folds == 1 + (10_000 - 16) // 15
    assert tl.get("hot")[:3] == [9999, 9998, 9997]


def test_blind_writes_fold_without_sibling_counts() -> None:
    """A store that cannot report sibling counts (Cassandra, Riak): each
    process folds after fold_at of its own blind writes to a key."""
    from timak.backends.memory import MemoryBackend

    class NoCounts(MemoryBackend):
        def store_many(self, bucket: str, entries: object) -> list[int | None]:
            return [None for _ in super().store_many(bucket, entries)]  # type: ignore[arg-type]

    backend = NoCounts()
    tl = Timeline(connection=backend, fold_at=8)
    for i in range(1000):
        tl.fanout(["hot"], i, i)
        assert len(backend.fetch("timelines", "hot").siblings) <= 8


def test_page_cursors_are_stable_while_items_arrive(backend: Backend) -> None:
    tl = Timeline(connection=backend)
    for i in range(10):
        tl.add("k", i, i)
    first = tl.page("k", limit=4)
    assert first.items == [9, 8, 7, 6] and first.cursor
    tl.add("k", 100, 100)  # a new item arrives above the cursor
    second = tl.page("k", limit=4, cursor=first.cursor)
    assert second.items == [5, 4, 3, 2]
    assert second.cursor is not None
    third = tl.page("k", limit=4, cursor=second.cursor)
    assert third.items == [1, 0] and third.cursor is None


def test_paging_ascending_and_with_tied_scores(backend: Backend) -> None:
    tl = Timeline(connection=backend, order="asc")
    for item in ("a", "b", "c", "d", "e"):
        tl.add("k", item, 1)  # one score: the id breaks ties
    assert every_page(tl, "k", 2) == ["a", "b", "c", "d", "e"]


def every_page(tl: Timeline, key: str, limit: int) -> list[Any]:
    """The items of every page of ``key``, following cursors to the end."""
    seen: list[Any] = []
    cursor = None
    while True:
        page = tl.page(key, limit=limit, cursor=cursor)
        seen += page.items
        if page.cursor is None:
            return seen
        cursor = page.cursor


def test_bad_cursors_are_typed_errors(backend: Backend) -> None:
    tl = Timeline(connection=backend)
    tl.add("k", 1, 1)
    for bad in ("", "p1.!!!", "c1.AAAA", "p1." + "A" * 10, "garbage"):
        with pytest.raises(InvalidCursorError):
            tl.page("k", cursor=bad)


def test_range_by_score_and_datetime(backend: Backend) -> None:
    tl = Timeline(connection=backend)
    day = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for i in range(10):
        tl.add("k", i, day + timedelta(days=i))
    assert tl.range("k", day + timedelta(days=3), day + timedelta(days=5)) == [5, 4, 3]
    assert tl.range("k", start="2024-01-09T00:00:00Z") == [9, 8]
    assert tl.range("k", stop=day) == [0]
    with pytest.raises(InvalidScoreError, match="naive"):
        tl.range("k", datetime(2024, 1, 1), day)


def test_corrupt_sibling_never_erases_the_others(backend: Backend) -> None:
    tl = Timeline(connection=backend)
    tl.add("k", "good", 1)
    backend.store("timelines", "k", b"\x80\x04garbage")
    with pytest.raises(CorruptValueError, match="sibling"):
        tl.get("k")
    with pytest.raises(CorruptValueError):
        tl.add("k", "new", 2)
    assert tl.get("k", skip_corrupt=True) == ["good"]
    siblings = backend.fetch("timelines", "k").siblings
    assert b"\x80\x04garbage" in siblings and len(siblings) == 2
    assert tl.fanout(["k"], "blind", 3) == 1
    assert tl.get("k", skip_corrupt=True) == ["blind", "good"]


@pytest.mark.parametrize("key", ["", None, 5, b"bytes", "x" * 1025, "\ud800"])
def test_bad_keys_are_refused(backend: Backend, key: object) -> None:
    tl = Timeline(connection=backend)
    with pytest.raises(InvalidKeyError):
        tl.add(key, 1, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        tl.fanout(["ok", key], 1, 1)  # type: ignore[list-item]
    assert list(backend.keys("timelines")) == []


def test_oversized_items_are_refused_before_writing(backend: Backend) -> None:
    tl = Timeline(connection=backend, max_items=3, max_value_bytes=51 * 600, max_item_bytes=1000)
    assert tl.item_limit() == 600  # max_value_bytes / (capacity + 48)
    with pytest.raises(ValueTooLargeError, match="max_item_bytes"):
        tl.add("k", 1, 1, obj_data="x" * 2000)
    for i in range(3):
        tl.add("k", i, i, obj_data="y" * 500)
    with pytest.raises(ValueTooLargeError, match="max_value_bytes"):
        tl.add("k", 9, 9, obj_data="z" * 700)
    with pytest.raises(ValueTooLargeError, match="max_value_bytes"):
        tl.fanout(["k", "other"], 9, 9, obj_data="z" * 700)
    assert tl.get("k") == ["y" * 500] * 3
    assert list(backend.keys("timelines")) == ["k"]


def test_a_key_never_leaves_its_size_bound_and_deletes_always_work(backend: Backend) -> None:
    """Issue 10, defect 2: 60,000-byte items fanned out to a 1,000-item
    timeline used to pile up siblings nothing could fold, and the delete
    raised ValueTooLargeError. Items over the slot size are refused before
    anything is stored; merges are never refused for size."""
    tl = Timeline(connection=backend, max_items=1000, fold_at=4)
    for i in range(20):
        with pytest.raises(ValueTooLargeError):
            tl.fanout(["k"], i, i, {"b": os.urandom(60_000)})
    assert backend.fetch("timelines", "k").siblings == []
    assert tl.delete("k", 3, 3) == []
    # Items of the largest allowed size fill the timeline, through folds and
    # read repair, and the stored value stays under max_value_bytes.
    small = Timeline(connection=backend, max_items=20, fold_at=4, max_value_bytes=20_000)
    blob = b"x" * (small.item_limit() - 60)
    for i in range(60):
        small.fanout(["full"], i, i, {"b": blob})
        siblings = backend.fetch("timelines", "full").siblings
        assert len(siblings) <= 4 and all(len(v) <= 20_000 for v in siblings)
    assert len(small.get("full")) == 20
    (stored,) = backend.fetch("timelines", "full").siblings
    assert len(stored) <= 20_000
    for i in range(59, 39, -1):
        small.delete("full", i, i)
    assert small.get("full") == [] and len(backend.fetch("timelines", "full").siblings) == 1


def test_a_full_timeline_of_largest_items_fits_max_value_bytes() -> None:
    """The static bound: capacity + 48 slots of item_limit bytes hold any
    full timeline, whatever its chunks and trimmed tails."""
    from timak.backends.memory import MemoryBackend

    backend = MemoryBackend()
    for capacity in (1, 7, 60, 200):
        tl = Timeline(connection=backend, max_items=capacity, max_value_bytes=300_000)
        data = os.urandom(tl.item_limit())
        for i in range(capacity + 70):
            size = tl.item_limit() - 40 - (i % 7)
            tl.add(f"k{capacity}", i, i, obj_data=data[:size])
            (value,) = backend.fetch("timelines", f"k{capacity}").siblings
            assert len(value) <= tl.max_value_bytes


@pytest.mark.parametrize("max_items", [0, -1, True, 2.5])
def test_max_items_must_be_a_positive_int(max_items: object) -> None:
    with pytest.raises(ConfigError):
        Timeline(connection="memory://", max_items=max_items)  # type: ignore[arg-type]


def test_stored_value_is_the_versioned_encoding(backend: Backend) -> None:
    Timeline(connection=backend).add("k", "a", 1, {"x": 1})
    (raw,) = backend.fetch("timelines", "k").siblings
    assert raw[:2] == b"TK"
    assert decode(raw)["a"].data == {"x": 1}


def test_timeline_accepts_a_url_and_closes_what_it_opened(tmp_path: Path) -> None:
    with Timeline(connection=f"sqlite:///{tmp_path}/t.db") as tl:
        tl.add("k", 1, 1)
    assert Timeline(connection=f"sqlite:///{tmp_path}/t.db").get("k") == [1]


def test_default_connection_comes_from_timak_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMAK_URL", f"sqlite:///{tmp_path}/env.db")
    Timeline().add("k", 1, 1)
    assert (tmp_path / "env.db").exists()


def test_import_paths_of_timak_01() -> None:
    from timak import Timeline as A
    from timak.timelines import Timeline as B

    assert A is B


def test_failed_read_repair_still_returns_the_read() -> None:
    from timak.backends.memory import MemoryBackend
    from timak.errors import UnavailableError

    backend = MemoryBackend()
    tl = Timeline(connection=backend)
    tl.fanout(["k"], "a", 1)
    tl.fanout(["k"], "b", 2)
    backend.fail_next(UnavailableError("down"), ops=["store", "swap_many"])
    assert tl.get("k") == ["b", "a"]
    assert len(backend.fetch("timelines", "k").siblings) == 2  # nothing lost
    assert tl.get("k") == ["b", "a"]
    assert len(backend.fetch("timelines", "k").siblings) == 1  # repaired next time


def test_store_failures_surface_as_typed_errors_and_write_nothing() -> None:
    from timak.backends.memory import MemoryBackend
    from timak.errors import BackendTimeoutError, UnavailableError

    backend = MemoryBackend()
    tl = Timeline(connection=backend)
    backend.fail_next(UnavailableError("down"), ops=["fetch"])
    with pytest.raises(UnavailableError):
        tl.add("k", "a", 1)
    backend.fail_next(BackendTimeoutError("slow"), ops=["store_many"])
    with pytest.raises(BackendTimeoutError):
        tl.fanout(["k"], "a", 1)
    assert list(backend.keys("timelines")) == []


# -- stats count only what was stored (issue 10, defect 11) ---------------------------


def test_fold_of_one_sibling_counts_no_fold(backend: Backend) -> None:
    tl = Timeline(connection=backend)
    tl.add("k", 1, 1)
    assert tl.fold("k") == 0
    assert tl.fold("missing") == 0
    assert tl.stats.folds == 0
    tl.fanout(["k"], 2, 2)
    assert tl.fold("k") == 2
    assert tl.stats.folds == 1
    assert len(backend.fetch(tl.bucket, "k").siblings) == 1


def test_compact_counts_a_fold_only_when_the_merge_was_stored() -> None:
    backend = MemoryBackend()
    tl = Timeline(connection=backend)
    tl.fanout(["k", "j"], 1, 1)
    tl.fanout(["k", "j"], 2, 2)
    tl.add("single", 1, 1)
    backend.fail_next(UnavailableError("down"), ops=["store", "swap_many"])
    stats = tl.compact(keys=["k", "j", "single"])
    assert (stats.keys, stats.folded, stats.siblings_merged) == (3, 1, 2)
    assert len(backend.fetch(tl.bucket, "k").siblings) == 2  # its repair failed
    assert len(backend.fetch(tl.bucket, "j").siblings) == 1
    backend.fail_next(UnavailableError("down"), ops=["store", "swap_many"])
    assert tl.fold("k") == 0 and tl.stats.folds == 0
    stats = tl.compact()
    assert (stats.keys, stats.folded) == (3, 1)
    assert tl.stats.folds == 0  # compact counts in its own stats


@pytest.mark.parametrize("workers", [1, 3])
def test_compact_with_workers_folds_every_key_once(any_store: Backend, workers: int) -> None:
    tl = Timeline(connection=any_store, fold_at=100)
    keys = [f"k{i}" for i in range(23)]
    for i in range(3):
        tl.fanout(keys, i, i)
    tl.fanout(["corrupt"], 1, 1)
    any_store.store(tl.bucket, "corrupt", b"TK\x03 not a value")
    seen: list[int] = []
    stats = tl.compact(keys=[*keys, "corrupt"], progress=seen.append, workers=workers)
    assert (stats.keys, stats.folded, stats.siblings_merged, stats.corrupt) == (24, 23, 69, 1)
    assert seen == list(range(1, 25))  # every key swept, corrupt ones too, in order
    assert all(len(f.siblings) == 1 for f in any_store.fetch_many(tl.bucket, keys))
    assert len(any_store.fetch(tl.bucket, "corrupt").siblings) == 2  # left alone
    assert all(tl.get(k) == [2, 1, 0] for k in keys)


@pytest.mark.parametrize("workers", [0, -1, True, 1.5, "2"])
def test_compact_refuses_bad_workers(workers: object) -> None:
    tl = Timeline(connection=MemoryBackend())
    tl.fanout(["k"], 1, 1)
    tl.fanout(["k"], 2, 2)
    with pytest.raises(ConfigError):
        tl.compact(workers=workers)  # type: ignore[arg-type]
    assert len(tl.connection.fetch(tl.bucket, "k").siblings) == 2  # nothing done


def test_a_failing_store_stops_a_parallel_compact_with_its_error() -> None:
    backend = MemoryBackend()
    tl = Timeline(connection=backend, fold_at=100)
    keys = [f"k{i}" for i in range(10)]
    tl.fanout(keys, 1, 1)
    tl.fanout(keys, 2, 2)
    backend.fail_next(UnavailableError("down"), ops=["fetch"])
    with pytest.raises(UnavailableError):
        tl.compact(workers=4)
    left = [k for k in keys if len(backend.fetch(tl.bucket, k).siblings) == 2]
    assert 1 <= len(left) < len(keys)  # the key whose fetch failed, at least
    assert tl.compact(workers=4).folded == len(left)
    assert all(len(f.siblings) == 1 for f in backend.fetch_many(tl.bucket, keys))


@pytest.mark.parametrize("narrowing", [True, False], ids=["partial", "full"])
def test_folds_on_write_count_only_what_was_stored(narrowing: bool) -> None:
    backend = MemoryBackend() if narrowing else _CannotNarrow()
    inner = backend if isinstance(backend, MemoryBackend) else backend.inner
    tl = Timeline(connection=backend, fold_at=4)
    for i in range(3):
        tl.fanout(["k"], i, i)
    inner.fail_next(UnavailableError("down"), ops=["store", "replace_many", "swap_many"])
    tl.fanout(["k"], 3, 3)  # reaches fold_at; the fold's store fails
    assert tl.stats.folds == 0 and tl.stats.partial_folds == 0
    assert len(backend.fetch(tl.bucket, "k").siblings) == 4  # nothing lost
    for i in range(4, 7):  # past fold_at: another writer's fold may be under way
        tl.fanout(["k"], i, i)
    assert tl.stats.folds == 0
    tl.fanout(["k"], 7, 7)  # 2 * fold_at: the fold that failed is done now
    assert tl.stats.folds == 1
    assert tl.stats.partial_folds == (1 if narrowing else 0)
    assert tl.get("k") == [7, 6, 5, 4, 3, 2, 1, 0]


# -- capacity is stored with the value ----------------------------------------


@pytest.fixture(params=["memory", "sqlite", "riak"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Every store that runs here: memory, SQLite and the Riak test double."""
    if request.param == "riak":
        pytest.importorskip("urllib3")
        from riak_double import RiakTestDouble

        with RiakTestDouble() as riak:
            backend = connect(riak.url())
            yield backend
            backend.close()
        return
    url = f"memory://{uuid.uuid4().hex}" if request.param == "memory" else (
        f"sqlite:///{tmp_path}/timak.db")
    backend = connect(url)
    yield backend
    backend.close()


def test_a_larger_timeline_read_with_a_smaller_max_items_loses_nothing(backend: Backend) -> None:
    """Issue 11, capacity: a key written with max_items=5000 holding 1,501
    items, read by the CLI's default and by Timeline(max_items=1000)."""
    big = Timeline(connection=backend, max_items=5000, fold_at=1000)
    for i in range(1501):
        big.fanout(["k"], i, i)
    big.fanout(["k"], "x", 5000)  # leave siblings: the read below repairs
    small = Timeline(connection=backend, max_items=1000)
    assert len(small.get("k")) == 1502
    assert len(backend.fetch("timelines", "k").siblings) == 1
    assert decode(backend.fetch("timelines", "k").siblings[0]).capacity == 5000
    seen = every_page(small, "k", 400)
    assert len(seen) == 1502 and seen[0] == "x"
    before = backend.fetch("timelines", "k").siblings
    for write in (lambda: small.add("k", "new", 10**6), lambda: small.delete("k", 5, 5)):
        with pytest.raises(ConfigError, match="capacity 5000"):
            write()
    assert backend.fetch("timelines", "k").siblings == before  # nothing written
    adopt = Timeline(connection=backend, max_items=None)
    assert len(adopt.add("k", "new", 10**6)) == 1503
    assert small.fold("k") == 0  # one sibling: nothing to fold
    assert len(small.get("k")) == 1503


def test_max_items_none_adopts_the_stored_capacity_and_defaults_new_keys(
    backend: Backend,
) -> None:
    adopt = Timeline(connection=backend, max_items=None)
    adopt.add("new", 1, 1)
    assert decode(backend.fetch("timelines", "new").siblings[0]).capacity == 1000
    Timeline(connection=backend, max_items=2).add("two", "a", 1)
    assert adopt.add("two", "b", 2) == ["b", "a"]
    assert adopt.add("two", "c", 3) == ["c", "b"]  # the key's own capacity, 2


def test_a_small_capacity_writer_cannot_resurrect_a_deleted_item(backend: Backend) -> None:
    big = Timeline(connection=backend, max_items=10)
    for i in range(5):
        big.add("k", i, i)
    big.delete("k", 0, 0)
    with pytest.raises(ConfigError):
        Timeline(connection=backend, max_items=2).add("k", 0, 0)
    assert big.get("k") == [4, 3, 2, 1]


@pytest.mark.parametrize("compressed", [False, True])
def test_old_format_values_lose_nothing_and_are_rewritten_as_format_3(
    backend: Backend, compressed: bool
) -> None:
    import zlib

    import msgpack

    rows = [[i, 10_000 - i, 0, 0, {"n": i}] for i in range(1501)]
    body = msgpack.packb(rows)
    old = b"TK" + (b"\x02" + zlib.compress(body) if compressed else b"\x01" + body)
    backend.store("timelines", "old", old)
    backend.store("timelines", "old", old)  # two siblings: the read repairs
    tl = Timeline(connection=backend, max_items=1000)
    assert len(tl.get("old")) == 1501
    (stored,) = backend.fetch("timelines", "old").siblings
    assert stored[:3] == b"TK\x03" and decode(stored).capacity == 1501
    with pytest.raises(ConfigError):
        tl.add("old", "new", 1)
    assert len(Timeline(connection=backend, max_items=None).add("old", "new", 10**5)) == 1501


def test_two_writers_in_one_microsecond_converge_on_any_store(any_store: Backend) -> None:
    """Issue 10, defect 1, through Timeline: the same id and score with data
    1 and True written blind in either order reads back the same."""
    results = []
    for order in ((1, True), (True, 1)):
        key = f"k{len(results)}"
        tl = Timeline(connection=any_store, clock=lambda: 42, fold_at=1000)
        for data in order:
            tl.fanout([key], "x", 5, [data])
        results.append(tl.get(key, raw=True)[0])
    assert results[0] == results[1] and results[0].data == [True]


def test_the_size_bound_holds_and_deletes_work_on_every_store(any_store: Backend) -> None:
    """Issue 10, defect 2, on memory, SQLite and the Riak double."""
    tl = Timeline(connection=any_store, max_items=1000, fold_at=8)
    for i in range(20):
        with pytest.raises(ValueTooLargeError):
            tl.fanout(["k"], i, i, {"b": os.urandom(60_000)})
    tl.fanout(["k"], 99, 99)
    assert tl.delete("k", 3, 3) == [99] and tl.delete("k", 99, 99) == []
    small = Timeline(connection=any_store, max_items=30, fold_at=8, max_value_bytes=40_000)
    blob = os.urandom(small.item_limit() - 60)
    for i in range(100):
        small.fanout(["full"], i, i, {"b": blob})
        siblings = any_store.fetch("timelines", "full").siblings
        assert len(siblings) <= 8 and all(len(v) <= 40_000 for v in siblings)
    assert len(small.get("full")) == 30
    for i in range(99, 69, -1):
        small.delete("full", i, i)
    assert small.get("full") == []


def test_a_path_is_a_sqlite_file(tmp_path: Path) -> None:
    """Django settings hold paths (``BASE_DIR / "timak.db"``): a Timeline
    given one stores in that SQLite file, and closes what it opened."""
    with Timeline(tmp_path / "timak.db") as tl:
        tl.add("k", "a", 1)
    with Timeline(f"sqlite:///{tmp_path}/timak.db") as tl:
        assert tl.get("k") == ["a"]


@pytest.mark.parametrize("connection", [5, b"sqlite:///x.db", object(), ["memory://"]])
def test_a_connection_of_another_type_is_refused_at_construction(connection: Any) -> None:
    with pytest.raises(ConfigError, match="connection must be a store URL"):
        Timeline(connection)
