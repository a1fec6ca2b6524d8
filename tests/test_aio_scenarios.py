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

import asyncio
import inspect
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from stores import OnMemory, OnRiakDouble, OnSQLite

from timak import aio
from timak import testing_activity as activity_suite
from timak import testing_feed as feed_suite
from timak.activity import Feeds
from timak.backends import connect
from timak.feed import Feed
from timak.timelines import Timeline

_T = TypeVar("_T")


class LoopThread:
    """An event loop running in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the loop; block this thread until it is done."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class Blocking:
    """A ``timak.aio`` object seen from sync code: its coroutine methods
    block for their result, the aio objects they return come wrapped too,
    attributes read and write through."""

    def __init__(self, target: object, loop: LoopThread) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if inspect.iscoroutinefunction(attr):
                return self._wrap(self._loop.run(attr(*args, **kwargs)))
            return self._wrap(attr(*args, **kwargs))

        return call

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._target, name, value)

    def _wrap(self, result: Any) -> Any:
        if isinstance(result, aio.Timeline | aio.Feeds | aio.Feed):
            return Blocking(result, self._loop)
        if hasattr(result, "__anext__"):
            return BlockingIterator(result, self._loop)
        return result


class BlockingIterator:
    """An async iterator seen as an iterator (a generator's ``close`` too)."""

    def __init__(self, changes: Any, loop: LoopThread) -> None:
        self._changes, self._loop = changes, loop

    def __iter__(self) -> BlockingIterator:
        return self

    def __next__(self) -> Any:
        async def step() -> Any:
            return await anext(self._changes)

        try:
            return self._loop.run(step())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        self._loop.run(self._changes.aclose())


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
                          groups=activity_suite.groups(self.suffix, max_items))
        self._aio.append(feeds)
        blocking: Feeds = Blocking(feeds, self.loop)  # type: ignore[assignment]
        return blocking

    def close(self) -> None:
        for feeds in self._aio:
            self.loop.run(feeds.close())
        super().close()


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    running = LoopThread()
    yield running
    running.close()


class AioFeedScenarios(feed_suite.FeedScenarios):
    @pytest.fixture
    def env(self, connect: feed_suite.Connect, loop: LoopThread) -> Iterator[feed_suite.Env]:
        env = AioFeedEnv(connect, loop)
        yield env
        env.close()


class AioActivityScenarios(activity_suite.ActivityScenarios):
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


def test_the_scenarios_reach_the_async_api(loop: LoopThread) -> None:
    """A guard on the adapter: writers and feeds are aio objects, and a
    writer's call runs on the loop's worker threads, not in this thread."""
    env = AioFeedEnv(lambda: connect("memory://"), loop)
    writer = env.writer()
    assert isinstance(object.__getattribute__(writer, "_target"), aio.Timeline)
    seen: list[str] = []
    writer.fanout(["a", "b"], 1, 1, progress=lambda n: seen.append(
        threading.current_thread().name))
    assert seen and all(name.startswith("timak-aio-Timeline") for name in seen)
    env.close()
