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
        (feed_key,) = store.keys(feed.bucket)
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
