"""The global change feed and ``Timeline.watch``, on every store CI runs.

Clocks are injected: each writer's ``Timeline(clock=...)`` is the reader's
clock minus that writer's lag, so skew is exact and nothing here waits on
wall time (except the watch tests, which only bound their waits).

``FeedScenarios`` (in ``timak.testing_feed``) runs on memory and SQLite here,
on a Riak test double when ``tests/riak_double.py`` is importable, and on
Cassandra in ``integration/test_feed_cassandra.py``.
"""

from __future__ import annotations

import time

import pytest
from stores import OnMemory, OnRiakDouble, OnSQLite

from timak import Timeline
from timak.backends.memory import MemoryBackend
from timak.errors import (
    ConfigError,
    InvalidInputError,
    InvalidKeyError,
    UnavailableError,
)
from timak.feed import Feed, FeedOverflowWarning
from timak.testing_feed import T0, Clock, FeedScenarios


class TestMemoryFeed(OnMemory, FeedScenarios):
    pass


class TestSQLiteFeed(OnSQLite, FeedScenarios):
    pass


class TestRiakDoubleFeed(OnRiakDouble, FeedScenarios):
    pass


# -- behaviour that does not depend on the store ---------------------------------


class _Uncounted(MemoryBackend):
    """A store that cannot report sibling counts (like Cassandra)."""

    def store_many(self, bucket: str, entries: object) -> list[int | None]:  # type: ignore[override]
        return [None for _ in super().store_many(bucket, entries)]  # type: ignore[arg-type]


def test_uncounted_stores_fold_after_fold_at_local_writes() -> None:
    store = _Uncounted()
    feed = Feed(store, shards=1, fold_at=3)
    tl = Timeline(store, feed=feed)
    for i in range(7):
        tl.add(f"k{i}", 1, 1)
        (feed_key,) = [k for k in store.keys(feed.bucket) if "|" in k]  # the period key
        assert len(store.fetch(feed.bucket, feed_key).siblings) < 3
    assert feed.stats.folds == 3  # at writes 3, 5 and 7


def test_one_write_over_capacity_warns() -> None:
    feed = Feed(MemoryBackend(), shards=1, capacity=10)
    with pytest.warns(FeedOverflowWarning, match="smaller chunks"):
        feed.written("timelines", [f"k{i}" for i in range(11)], T0)


def test_long_bucket_names_fit_in_a_key() -> None:
    store = MemoryBackend()
    feed = Feed(store, clock=Clock())
    bucket = "b" * 1024
    _, cursor = feed.poll(bucket=bucket)
    feed.written(bucket, ["k"], T0)
    assert feed.poll(cursor, bucket=bucket)[0] == ["k"]
    assert all(len(k.encode()) <= 1024 for k in store.keys(feed.bucket))


def test_feed_from_url_owns_its_connection() -> None:
    with Feed("memory://") as feed:
        assert feed.poll()[0] == []
    with pytest.raises(Exception, match="closed"):
        feed.poll()


@pytest.mark.parametrize(
    "options",
    [
        {"shards": 0},
        {"capacity": 0},
        {"fold_at": 1},
        {"partition_seconds": 0},
        {"retention_seconds": 10},
        {"max_periods_per_poll": 1},
        {"skew_us": -1},
        {"skew_us": 1.5},
        {"shards": "4"},
        {"capacity": 2.5},
        {"fold_at": "x"},
        {"max_cursor_seen": None},
        {"max_periods_per_poll": "x"},
        {"partition_seconds": "10"},
        {"partition_seconds": float("nan")},
        {"retention_seconds": float("inf")},
        {"retention_seconds": None},
        {"clock": time.time},
        {"clock": lambda: -5},
        {"clock": lambda: 1.7e15},
        {"bucket": ""},
    ],
    ids=repr,
)
def test_bad_options_are_config_errors(options: dict[str, object]) -> None:
    with pytest.raises((ConfigError, InvalidKeyError)):
        Feed(MemoryBackend(), **options)  # type: ignore[arg-type]


def test_a_clock_that_goes_bad_later_raises_config_error_not_type_error() -> None:
    readings = iter([T0, T0 + 1, 1.5e15, 2.5e15])
    feed = Feed(MemoryBackend(), clock=lambda: next(readings))
    _, cursor = feed.poll()
    with pytest.raises(ConfigError, match="clock"):
        feed.poll(cursor)


def test_written_refuses_what_it_could_not_read_back() -> None:
    store = MemoryBackend()
    feed = Feed(store)
    for arrived in (1.5e15, -1, 2**63, True):
        with pytest.raises(InvalidInputError):
            feed.written("timelines", ["k"], arrived)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        feed.written("timelines", "abc", T0)
    assert list(store.keys(feed.bucket)) == []


def test_a_failed_feed_fold_does_not_fail_an_acknowledged_add(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 10, defect 11: the add is stored, and so is the feed write; a
    failed fold of the feed key is housekeeping, logged and counted."""
    feed_store = MemoryBackend()
    feed = Feed(feed_store, shards=1, fold_at=2, clock=Clock())
    tl = Timeline(MemoryBackend(), feed=feed, clock=Clock())
    _, cursor = feed.poll()
    tl.add("a", 1, 1)
    feed_store.fail_next(UnavailableError("feed store down"), ops=["fetch"])
    with caplog.at_level("WARNING", logger="timak"):
        assert tl.add("b", 1, 1) == [1]  # the second feed write reaches fold_at
    assert feed.stats.fold_errors == 1 and feed.stats.folds == 0
    assert "feed store down" in caplog.text
    assert tl.get("b") == [1]
    assert sorted(feed.poll(cursor)[0]) == ["a", "b"]
    tl.add("c", 1, 1)  # the next write past fold_at folds
    assert feed.stats.folds == 1


# -- prune computes the keys it deletes (issue 22) -------------------------------


class _CountingScans(MemoryBackend):
    """A memory store that counts how often its keys are listed."""

    scans = 0

    def keys(self, bucket: str):  # type: ignore[no-untyped-def]
        self.scans += 1
        return super().keys(bucket)


def _periods(store: MemoryBackend, feed: Feed) -> list[str]:
    return sorted(k for k in store.keys(feed.bucket) if "|" in k)


def test_prune_computes_the_expired_keys_rather_than_listing_every_key() -> None:
    """Feed periods follow from the clock and the retention: after the first
    prune (which lists keys once, for periods an older timak wrote), prunes
    list nothing, and still delete exactly the expired periods of every
    timeline bucket the feed holds."""
    clock = Clock()
    store = _CountingScans()
    feed = Feed(store, shards=2, partition_seconds=10, retention_seconds=3600, clock=clock)
    for bucket in ("timelines", "other"):
        feed.written(bucket, [f"k{n}" for n in range(20)], clock.now)
    first = _periods(store, feed)
    assert len(first) == 4  # 2 buckets x 2 shards, one period
    clock.advance(3600 + 20)
    store.scans = 0
    assert feed.prune() == 4
    assert store.scans == 1
    for hour in range(3):
        for step in range(0, 3600, 600):
            feed.written("timelines", [f"k{hour}-{step}"], clock.now + step * 1_000_000)
            feed.written("other", ["x", "y"], clock.now + step * 1_000_000)
        clock.advance(3600)
    kept = _periods(store, feed)
    expired = [k for k in kept if (int(k.split("|")[1]) + 1) * 10_000_000
               <= (clock.now - 3600 * 1_000_000) // 10_000_000 * 10_000_000]
    assert expired and len(expired) < len(kept)
    store.scans = 0
    assert feed.prune() == len(expired)
    assert store.scans == 0
    assert _periods(store, feed) == sorted(set(kept) - set(expired))
    store.scans = 0
    assert feed.prune() == 0 and store.scans == 0


def test_prune_works_on_a_store_that_cannot_list_keys() -> None:
    from test_contract import NoScanBackend

    clock = Clock()
    store = NoScanBackend()
    feed = Feed(store, shards=1, retention_seconds=3600, clock=clock)
    feed.written("timelines", ["old"], clock.now)
    clock.advance(1800)
    feed.written("timelines", ["recent"], clock.now)
    clock.advance(1800 + 20)
    assert feed.prune() == 1
    cursor = feed.cursor_at(clock.now - 1900 * 1_000_000)
    assert feed.poll(cursor)[0] == ["recent"]


def test_a_scan_also_finds_what_a_lagging_writer_left_behind() -> None:
    """A writer whose clock lags by more than the retention writes into a
    period already pruned: only prune(scan=True) finds it."""
    clock = Clock()
    store = MemoryBackend()
    feed = Feed(store, shards=1, retention_seconds=3600, clock=clock)
    feed.written("timelines", ["a"], clock.now)
    clock.advance(7200)
    assert feed.prune() == 1
    feed.written("timelines", ["late"], clock.now - 7000 * 1_000_000)  # 2 h behind
    assert feed.prune() == 0
    assert len(_periods(store, feed)) == 1
    assert feed.prune(scan=True) == 1
    assert _periods(store, feed) == []


def test_prune_finds_every_bucket_whatever_the_feed_capacity() -> None:
    """The list of timeline buckets is not trimmed to the feed's capacity."""
    clock = Clock()
    store = MemoryBackend()
    feed = Feed(store, shards=1, capacity=2, retention_seconds=3600, clock=clock)
    feed.prune()  # the first prune lists keys; this test is about the next ones
    for n in range(5):
        feed.written(f"bucket{n}", ["k"], clock.now + n)
    clock.advance(3600 + 20)
    assert feed.prune() == 5
    assert _periods(store, feed) == []
