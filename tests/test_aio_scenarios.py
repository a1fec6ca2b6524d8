"""The change-feed and activity scenario suites (``timak.testing_feed``,
``timak.testing_activity``), run through ``timak.aio`` on memory, SQLite
and the Riak double.

The suites are sync code. Here their ``Env`` hands out ``timak.aio``
objects behind ``Blocking``, which runs each coroutine on an event loop in
another thread and waits for it, and turns ``watch``'s async iterator back
into an iterator. So every scenario's timeline writes, watches, feeds and
callbacks go through the async API: its coroutines, its worker threads,
its bridging of callbacks (the race scenarios' ``followers`` call back into
another ``Feeds`` from a worker thread). The suites' few direct
``Timeline(...)`` and ``Feed`` calls stay sync.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aio_blocking import Blocking, LoopThread
from stores import OnMemory, OnRiakDouble, OnSQLite

from timak import aio
from timak import testing_activity as activity_suite
from timak import testing_feed as feed_suite
from timak.activity import Feeds
from timak.backends import connect
from timak.feed import Feed
from timak.timelines import Timeline


class AioFeedEnv(feed_suite.Env):
    """The feed suite's ``Env``, whose writers are ``timak.aio.Timeline``s."""

    def __init__(self, connect: feed_suite.Connect, loop: LoopThread) -> None:
        super().__init__(connect)
        self.loop = loop
        self._aio: list[aio.Timeline] = []

    def writer(self, lag_s: float = 0, feed: Feed | None = None, **options: Any) -> Timeline:
        lag = int(lag_s * feed_suite.SECOND)
        timeline = aio.Timeline(
            self.backend(), self.bucket, feed=feed or self.feed(),
            clock=lambda: self.clock.now - lag, skew_us=feed_suite.SKEW, **options,
        )
        self._aio.append(timeline)
        blocking: Timeline = Blocking(timeline, self.loop)  # type: ignore[assignment]
        return blocking

    def close(self) -> None:
        for timeline in self._aio:
            self.loop.run(timeline.close())
        super().close()


class AioActivityEnv(activity_suite.Env):
    """The activity suite's ``Env``, whose feeds are ``timak.aio.Feeds``."""

    def __init__(self, connect: activity_suite.Connect, loop: LoopThread) -> None:
        super().__init__(connect)
        self.loop = loop
        self._aio: list[aio.Feeds] = []

    def feeds(self, max_items: int = 1000) -> Feeds:
        backend = self._connect()
        self._opened.append(backend)
        feeds = aio.Feeds(backend, followers=self.graph.followers,
                          groups=activity_suite.groups(self.suffix, max_items),
                          payload_bucket=f"activity.payloads.{self.suffix}")
        self._aio.append(feeds)
        blocking: Feeds = Blocking(feeds, self.loop)  # type: ignore[assignment]
        return blocking

    def close(self) -> None:
        for feeds in self._aio:
            self.loop.run(feeds.close())
        super().close()


class OnLoop:
    """A ``loop`` fixture: an event loop in a thread, for one test. A class
    of its own, so that the scenario classes carry it wherever they are
    subclassed (``integration/test_aio_cassandra.py``)."""

    @pytest.fixture
    def loop(self) -> Iterator[LoopThread]:
        running = LoopThread()
        yield running
        running.close()


class AioFeedScenarios(OnLoop, feed_suite.FeedScenarios):
    @pytest.fixture
    def env(self, connect: feed_suite.Connect, loop: LoopThread) -> Iterator[feed_suite.Env]:
        env = AioFeedEnv(connect, loop)
        yield env
        env.close()


class AioActivityScenarios(OnLoop, activity_suite.ActivityScenarios):
    @pytest.fixture
    def env(self, connect: activity_suite.Connect,
            loop: LoopThread) -> Iterator[activity_suite.Env]:
        env = AioActivityEnv(connect, loop)
        yield env
        env.close()


class TestMemoryAioFeed(OnMemory, AioFeedScenarios):
    pass


class TestSQLiteAioFeed(OnSQLite, AioFeedScenarios):
    pass


class TestRiakDoubleAioFeed(OnRiakDouble, AioFeedScenarios):
    pass


class TestMemoryAioActivity(OnMemory, AioActivityScenarios):
    pass


class TestSQLiteAioActivity(OnSQLite, AioActivityScenarios):
    pass


class TestRiakDoubleAioActivity(OnRiakDouble, AioActivityScenarios):
    pass


def test_the_scenarios_reach_the_async_api() -> None:
    """A guard on the adapter: writers and feeds are aio objects, and a
    writer's call runs on the loop's worker threads, not in this thread."""
    loop = LoopThread()
    env = AioFeedEnv(lambda: connect("memory://"), loop)
    writer = env.writer()
    assert isinstance(object.__getattribute__(writer, "_target"), aio.Timeline)
    seen: list[str] = []
    writer.fanout(["a", "b"], 1, 1, progress=lambda n: seen.append(
        threading.current_thread().name))
    assert seen and all(name.startswith("timak-aio-Timeline") for name in seen)
    env.close()
    loop.close()
