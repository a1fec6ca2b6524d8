"""Change feed scenarios every store must pass, as pytest tests.

A store's test module subclasses ``FeedScenarios`` and provides one fixture,
``connect``, that opens a new connection to one shared store (as
``BackendConformance`` in ``timak.testing`` does for the backend contract)::

    class TestMyStoreFeed(FeedScenarios):
        @pytest.fixture
        def connect(self, tmp_path):
            return lambda: MyBackend(tmp_path / "db")

Clocks are injected: each writer's ``Timeline(clock=...)`` is the reader's
clock minus that writer's lag, so skew is exact and nothing waits on wall
time (except the watch scenarios, which only bound their waits). Every
scenario uses fresh bucket names, so a real store can be reused.

This is a module of its own, not a section of ``timak.testing``, because the
scenarios drive ``timak.feed`` (layer 4) while ``timak.testing`` checks only
the backend contract and stays at layer 3. It imports pytest.

It is longer than 400 lines because it is one suite, ``FeedScenarios``, whose
scenarios share fixtures and helpers; splitting it would scatter one contract.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from typing import cast

import pytest

from .backends import Backend
from .backends.base import scan_keys
from .errors import ConfigError, CursorExpiredError, FeedOverflowWarning, InvalidCursorError
from .feed import Feed
from .timelines import Change, Timeline

__all__ = [
    "Clock",
    "Connect",
    "Env",
    "FeedScenarios",
    "SECOND",
    "SKEW",
    "T0",
    "drain",
    "until",
]

T0 = 1_700_000_000_000_000  # µs: 2023-11-14
SECOND = 1_000_000
SKEW = 5 * SECOND

Connect = Callable[[], Backend]


class Clock:
    """A settable clock in µs since the epoch."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * SECOND)


class Env:
    """One store, one reader clock, and helpers that open writers and readers
    on new connections (as separate app servers would)."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._opened: list[Backend] = []
        self.clock = Clock()
        suffix = uuid.uuid4().hex[:8]  # unique names: a real store outlives the test
        self.bucket = f"tl-{suffix}"
        self.feed_bucket = f"feed-{suffix}"

    def backend(self) -> Backend:
        backend = self._connect()
        self._opened.append(backend)
        return backend

    def feed(self, **options: object) -> Feed:
        return Feed(self.backend(), self.feed_bucket, clock=self.clock, **options)  # type: ignore[arg-type]

    def writer(self, lag_s: float = 0, feed: Feed | None = None, **options: object) -> Timeline:
        """A Timeline whose clock is ``lag_s`` seconds behind the reader's."""
        lag = int(lag_s * SECOND)
        return Timeline(
            self.backend(),
            self.bucket,
            feed=feed or self.feed(),
            clock=lambda: self.clock.now - lag,
            skew_us=SKEW,
            **options,  # type: ignore[arg-type]
        )

    def close(self) -> None:
        for backend in self._opened:
            backend.close()


def until(got: list[Change], n: int) -> Callable[[], bool]:
    """A watch ``stop``: true once ``got`` holds ``n`` changes, or after a
    bounded wait (then the test's assertions say what was missing)."""
    deadline = time.monotonic() + 10
    return lambda: len(got) >= n or time.monotonic() > deadline


def drain(feed: Feed, cursor: str, bucket: str, polls: int = 50) -> list[str]:
    """Poll until a poll starts from a cursor caught up with the reader's
    clock (so it reads the whole window); return every key reported."""
    reported: list[str] = []
    for _ in range(polls):
        caught_up = feed.floor(cursor) >= feed.floor(None)
        keys, cursor = feed.poll(cursor, bucket=bucket)
        reported.extend(keys)
        if caught_up:
            return reported
    raise AssertionError(f"feed cursor not caught up after {polls} polls")


class FeedScenarios:
    """Feed behaviour that must hold on every store."""

    @pytest.fixture
    def connect(self) -> Connect:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def env(self, connect: Connect) -> Iterator[Env]:
        env = Env(connect)
        yield env
        env.close()

    # -- basic delivery ----------------------------------------------------

    def test_poll_reports_each_written_key_once(self, env: Env) -> None:
        feed, tl = env.feed(), env.writer()
        _, cursor = feed.poll(bucket=env.bucket)
        tl.add("alice", 1, 10)
        tl.add("bob", 1, 10)
        tl.add("alice", 2, 20)  # same key again: one report
        keys, cursor = feed.poll(cursor, bucket=env.bucket)
        assert keys == ["alice", "bob"]
        env.clock.advance(1)
        assert feed.poll(cursor, bucket=env.bucket)[0] == []

    def test_first_poll_starts_at_now_minus_skew(self, env: Env) -> None:
        env.writer(lag_s=6).add("old", 1, 1)  # arrived 6 s before the reader's now
        env.writer(lag_s=4).add("recent", 1, 1)
        keys, _ = env.feed().poll(bucket=env.bucket)
        assert keys == ["recent"]

    def test_fanout_is_reported(self, env: Env) -> None:
        feed, tl = env.feed(), env.writer()
        _, cursor = feed.poll(bucket=env.bucket)
        followers = [f"home:{i}" for i in range(250)]
        assert tl.fanout(followers, "post-1", 100, chunk=100) == 250
        keys, _ = feed.poll(cursor, bucket=env.bucket)
        assert sorted(keys) == sorted(followers)

    def test_deletes_are_reported(self, env: Env) -> None:
        feed, tl = env.feed(), env.writer()
        tl.add("k", "a", 10)
        _, cursor = feed.poll(bucket=env.bucket)
        since = tl.changes("k").cursor
        env.clock.advance(1)
        tl.delete("k", "a", 10)
        assert feed.poll(cursor, bucket=env.bucket)[0] == ["k"]
        (change,) = tl.changes("k", since).changes
        assert (change.id, change.deleted, change.score) == ("a", True, 10)

    # -- clock skew ----------------------------------------------------------

    def test_writer_lagging_within_skew_is_not_missed(self, env: Env) -> None:
        feed = env.feed()
        punctual, laggard = env.writer(), env.writer(lag_s=4.9)
        _, cursor = feed.poll(bucket=env.bucket)
        env.clock.advance(2)
        keys, cursor = feed.poll(cursor, bucket=env.bucket)  # mark: reader's now
        assert keys == []
        punctual.add("p", 1, 1)
        laggard.add("l", 1, 1)  # arrived 4.9 s before the last poll's mark
        keys, _ = feed.poll(cursor, bucket=env.bucket)
        assert sorted(keys) == ["l", "p"]

    def test_writer_lagging_beyond_skew_may_be_missed(self, env: Env) -> None:
        """The documented limit: a writer more than ``skew_us`` behind the
        reader writes below the window of a reader that already moved on."""
        feed = env.feed()
        laggard = env.writer(lag_s=6)
        _, cursor = feed.poll(bucket=env.bucket)
        laggard.add("l", 1, 1)
        assert feed.poll(cursor, bucket=env.bucket)[0] == []
        # A reader that starts from an earlier cursor still sees it.
        early = feed.cursor_at(env.clock.now - 7 * SECOND, bucket=env.bucket)
        assert feed.poll(early, bucket=env.bucket)[0] == ["l"]

    def test_lagging_write_to_a_key_already_reported_is_reported_again(self, env: Env) -> None:
        feed = env.feed()
        fast, laggard = env.writer(), env.writer(lag_s=3)
        _, cursor = feed.poll(bucket=env.bucket)
        fast.add("k", "from-fast", 1)
        keys, cursor = feed.poll(cursor, bucket=env.bucket)
        assert keys == ["k"]
        laggard.add("k", "from-laggard", 2)  # older arrival than the write reported
        assert feed.poll(cursor, bucket=env.bucket)[0] == ["k"]

    def test_writer_ahead_of_the_reader_is_reported_once(self, env: Env) -> None:
        feed = env.feed()
        ahead = env.writer(lag_s=-4)  # 4 s fast
        _, cursor = feed.poll(bucket=env.bucket)
        ahead.add("k", 1, 1)
        keys, cursor = feed.poll(cursor, bucket=env.bucket)
        assert keys == ["k"]
        for _ in range(8):  # polls while that arrival stays inside the window
            env.clock.advance(1)
            keys, cursor = feed.poll(cursor, bucket=env.bucket)
            assert keys == []

    # -- dedup, duplicates, restarts -----------------------------------------

    def test_repolling_the_window_repeats_nothing(self, env: Env) -> None:
        feed, tl = env.feed(), env.writer()
        _, cursor = feed.poll(bucket=env.bucket)
        reported = []
        for i in range(12):
            env.clock.advance(0.5)
            tl.add(f"k{i}", 1, 1)
            keys, cursor = feed.poll(cursor, bucket=env.bucket)
            reported.extend(keys)
        assert reported == [f"k{i}" for i in range(12)]

    def test_a_full_cursor_repeats_rather_than_loses(self, env: Env) -> None:
        feed, tl = env.feed(max_cursor_seen=2), env.writer()
        _, cursor = feed.poll(bucket=env.bucket)
        for i in range(5):
            env.clock.advance(0.1)
            tl.add(f"k{i}", 1, 1)
        keys, cursor = feed.poll(cursor, bucket=env.bucket)
        assert keys == [f"k{i}" for i in range(5)]
        # The cursor remembered the 2 newest; the 3 older ones come again.
        assert feed.poll(cursor, bucket=env.bucket)[0] == ["k0", "k1", "k2"]

    def test_resume_after_restart(self, env: Env) -> None:
        feed, tl = env.feed(), env.writer()
        _, cursor = feed.poll(bucket=env.bucket)
        tl.add("a", 1, 1)
        tl.add("b", 1, 1)
        keys, cursor = feed.poll(cursor, bucket=env.bucket)
        assert keys == ["a", "b"]
        saved = str(cursor)
        del feed, tl
        # New processes: new connections, new objects; one writer lags.
        env.clock.advance(1)
        env.writer().add("c", 1, 1)
        env.writer(lag_s=3).add("d", 1, 1)
        keys, _ = env.feed().poll(saved, bucket=env.bucket)
        assert sorted(keys) == ["c", "d"]

    def test_cursor_is_checked(self, env: Env) -> None:
        feed = env.feed()
        _, cursor = feed.poll(bucket=env.bucket)
        with pytest.raises(InvalidCursorError, match="another timeline bucket"):
            feed.poll(cursor, bucket="other")
        for bad in ("", "f1.", "f1.!!!", "c1.kQ", cursor[:-4]):
            with pytest.raises(InvalidCursorError):
                feed.poll(bad, bucket=env.bucket)

    def test_far_behind_cursor_catches_up_in_steps(self, env: Env) -> None:
        feed = env.feed(partition_seconds=60, max_periods_per_poll=10)
        tl = env.writer(feed=feed)
        cursor = feed.cursor_at(env.clock.now, bucket=env.bucket)
        for minute in range(30):
            tl.add(f"m{minute}", 1, 1)
            env.clock.advance(60)
        first, cursor = feed.poll(cursor, bucket=env.bucket)
        assert 0 < len(first) < 30  # max_periods_per_poll=10: 10 minutes at a time
        rest = drain(feed, cursor, env.bucket)
        assert first + rest == [f"m{minute}" for minute in range(30)]

    def test_catching_up_loses_no_write_on_a_period_boundary(self, env: Env) -> None:
        """Issue 10, defect 3: a reader far behind catches up a few periods
        per poll; a write at the first microsecond of the period after one
        poll's last must be reported by the next."""
        period = 10 * SECOND
        feed = env.feed(partition_seconds=10, max_periods_per_poll=3)
        env.clock.now = 1000 * period
        _, cursor = feed.poll(bucket=env.bucket)
        written = [f"at{p}" for p in range(1000, 1040)]
        for p in range(1000, 1040):
            feed.written(env.bucket, [f"at{p}"], p * period)  # each period's first µs
        env.clock.now = 1100 * period
        reported = drain(feed, cursor, env.bucket)
        assert sorted(reported) == sorted(written)

    # -- bounds ----------------------------------------------------------------

    def test_feed_keys_are_folded(self, env: Env) -> None:
        feed = env.feed(shards=1, fold_at=4)
        tl = env.writer(feed=feed)
        _, cursor = feed.poll(bucket=env.bucket)
        most = 0
        for i in range(40):
            tl.add(f"k{i}", 1, 1)
            for feed_key in scan_keys(feed.connection, env.feed_bucket, "this scenario"):
                siblings = feed.connection.fetch(env.feed_bucket, feed_key).siblings
                most = max(most, len(siblings))
        assert 1 < most <= 4  # fold_at: a fold follows the write that reaches it
        assert feed.stats.folds >= 9
        keys, _ = feed.poll(cursor, bucket=env.bucket)
        assert sorted(keys) == sorted(f"k{i}" for i in range(40))  # one arrival: key order

    def test_overflow_warns_and_keeps_the_newest(self, env: Env) -> None:
        feed = env.feed(shards=1, capacity=3)
        tl = env.writer(feed=feed)
        _, cursor = feed.poll(bucket=env.bucket)
        for i in range(5):
            env.clock.advance(0.1)
            tl.add(f"k{i}", 1, 1)
        with pytest.warns(FeedOverflowWarning, match="may have been dropped"):
            keys, _ = feed.poll(cursor, bucket=env.bucket)
        assert keys == ["k2", "k3", "k4"]
        assert feed.stats.overflows == 1

    def test_a_full_key_before_the_cursor_does_not_warn(self, env: Env) -> None:
        feed = env.feed(shards=1, capacity=3)
        tl = env.writer(feed=feed)
        for i in range(5):
            env.clock.advance(0.1)
            tl.add(f"k{i}", 1, 1)
        cursor = feed.cursor_at(env.clock.now + 1, bucket=env.bucket)
        assert feed.poll(cursor, bucket=env.bucket)[0] == []  # would raise if it warned
        assert feed.stats.overflows == 0

    # -- retention -------------------------------------------------------------

    def test_prune_and_expired_cursors(self, env: Env) -> None:
        feed = env.feed(retention_seconds=86_400, shards=1)  # one shard: fewer keys per step
        old = feed.cursor_at(env.clock.now, bucket=env.bucket)
        env.writer(feed=feed).add("two-days-ago", 1, 1)
        env.clock.advance(2 * 86_400 - 3600)
        recent = feed.cursor_at(env.clock.now - 60, bucket=env.bucket)
        env.writer(feed=feed).add("an-hour-ago", 1, 1)
        env.clock.advance(3600)
        env.writer(feed=feed).add("now", 1, 1)
        assert feed.prune() == 1
        with pytest.raises(CursorExpiredError) as raised:
            feed.poll(old, bucket=env.bucket)
        assert isinstance(raised.value, InvalidCursorError)
        assert raised.value.pruned_through > T0
        # A cursor inside the retention still works (caught up in steps).
        assert drain(feed, recent, env.bucket) == ["an-hour-ago", "now"]
        # The oldest cursor starts where the feed still has data.
        oldest = feed.oldest_cursor(bucket=env.bucket)
        assert drain(feed, oldest, env.bucket) == ["an-hour-ago", "now"]
        assert feed.prune() == 0

    # -- watch -----------------------------------------------------------------

    def test_watch_starts_new_keys_at_its_start(self, env: Env) -> None:
        tl = env.writer()
        tl.add("k", "history", 1)
        env.clock.advance(60)
        got: list[Change] = []
        watch = tl.watch(interval=0.01, stop=until(got, 2))
        tl.add("k", "new", 2)
        env.clock.advance(0.1)
        tl.add("j", "other", 3)
        for change in watch:
            got.append(change)
        assert [(c.key, c.id) for c in got] == [("k", "new"), ("j", "other")]

    def test_watch_with_keys_starts_at_its_start_too(self, env: Env) -> None:
        tl = env.writer()
        tl.add("k", "history", 1)
        env.clock.advance(60)
        got: list[Change] = []
        watch = tl.watch(["k"], interval=0.01, stop=until(got, 1))
        tl.add("k", "new", 2)
        for change in watch:
            got.append(change)
        assert [c.id for c in got] == ["new"]

    def test_watch_resumes_from_saved_cursors(self, env: Env) -> None:
        tl = env.writer()
        cursors: dict[str, str] = {}
        got: list[Change] = []
        first = tl.watch(interval=0.01, cursors=cursors, stop=until(got, 2))
        tl.add("a", 1, 1)
        tl.add("b", 1, 1)
        for change in first:
            got.append(change)
        saved = dict(cursors)
        assert "" in saved  # the feed cursor
        env.clock.advance(1)
        tl.add("a", 2, 2)
        env.writer(lag_s=3).add("c", 1, 1)
        # A new process resumes from the saved cursors.
        resumed = env.writer().watch(interval=0.01, cursors=saved, stop=until(got, 4))
        for change in resumed:
            got.append(change)
        assert sorted((c.key, c.id) for c in got) == [("a", 1), ("a", 2), ("b", 1), ("c", 1)]

    def test_watch_abandoned_mid_key_repeats_rather_than_loses(self, env: Env) -> None:
        tl = env.writer()
        cursors: dict[str, str] = {}
        watch = tl.watch(["k"], interval=0.01, cursors=cursors)
        tl.add("k", 1, 1)
        env.clock.advance(0.1)
        tl.add("k", 2, 2)
        assert next(watch).id == 1
        # The consumer stops before taking change 2 (watch is a generator).
        cast("Generator[Change, None, None]", watch).close()
        got: list[Change] = []
        for change in tl.watch(["k"], interval=0.01, cursors=cursors, stop=until(got, 2)):
            got.append(change)
        assert [c.id for c in got] == [1, 2]

    def test_watch_forgets_idle_keys(self, env: Env) -> None:
        tl = env.writer()
        cursors: dict[str, str] = {}
        rounds = 0

        def stop() -> bool:
            nonlocal rounds
            rounds += 1
            env.clock.advance(1)  # one second of feed time per check
            return rounds > 60

        for i in range(5):
            tl.add(f"k{i}", 1, 1)
        got = list(tl.watch(interval=0, cursors=cursors, stop=stop))
        assert len(got) == 5
        assert list(cursors) == [""]  # every key's cursor fell behind the window

    def test_watch_stops_promptly_while_waiting(self, env: Env) -> None:
        tl = env.writer()
        stopping = threading.Event()
        polled = threading.Event()

        def stop() -> bool:
            polled.set()
            return stopping.is_set()

        thread = threading.Thread(
            target=lambda: list(tl.watch(interval=3600, stop=stop)), daemon=True
        )
        thread.start()
        assert polled.wait(10)
        stopping.set()
        thread.join(10)  # a bounded wait, far below the 1-hour interval
        assert not thread.is_alive()

    def test_watch_follows_a_concurrent_writer(self, env: Env) -> None:
        """Real clocks: a thread writes while the watch runs."""
        backend = env.backend()
        feed = Feed(backend, env.feed_bucket)
        reader = Timeline(backend, env.bucket, feed=feed)
        writer = Timeline(env.backend(), env.bucket, feed=Feed(env.backend(), env.feed_bucket))
        got: list[Change] = []
        deadline = time.monotonic() + 30
        watch = reader.watch(
            interval=0.01, stop=lambda: len(got) >= 20 or time.monotonic() > deadline
        )

        def write() -> None:
            for i in range(20):
                writer.add(f"user:{i % 3}", i, i)
                time.sleep(0.005)

        thread = threading.Thread(target=write)
        thread.start()
        for change in watch:
            got.append(change)
        thread.join()
        assert sorted(c.id for c in got) == list(range(20))

    def test_watch_without_keys_needs_a_feed(self, env: Env) -> None:
        tl = Timeline(env.backend(), env.bucket)
        with pytest.raises(ConfigError, match="feed"):
            next(tl.watch())
