"""``timak.aio``: the sync API's names and answers as coroutines, on memory,
SQLite and the Riak double; the loop never blocks; cancellation, errors,
many coroutines on one key, closing. (The feed and activity scenario
suites run through ``timak.aio`` in ``test_aio_scenarios.py``.)"""

from __future__ import annotations

import asyncio
import contextlib
import doctest
import inspect
import itertools
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from timak import activity, aio, feed, timelines
from timak.activity import Activity
from timak.backends import Backend, connect
from timak.backends.memory import MemoryBackend
from timak.errors import (
    BackendError,
    ConfigError,
    CorruptValueError,
    UnavailableError,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "sqlite", "riak"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL, fresh for the test; every connect() reaches the same data."""
    if request.param == "memory":
        yield f"memory://{uuid.uuid4().hex}"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/aio.db"
    else:
        pytest.importorskip("urllib3", reason="the Riak backend needs urllib3 (timak[riak])")
        from riak_double import RiakTestDouble

        with RiakTestDouble() as riak:
            yield riak.url()


class SlowMemory(MemoryBackend):
    """The memory store, with every fetch taking ``delay`` seconds (a store
    that answers slowly, as a loaded server would)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def fetch(self, bucket: str, key: str) -> Any:
        time.sleep(self.delay)
        return super().fetch(bucket, key)


# -- the same names, arguments and answers ----------------------------------

TWINS = [(timelines.Timeline, aio.Timeline), (activity.Feeds, aio.Feeds), (feed.Feed, aio.Feed)]
#: Methods that do no I/O, and so stay plain functions.
PLAIN = {"item_limit", "watch", "group", "timeline", "floor", "cursor_at"}


#: Parameters whose types differ on purpose: callbacks may be ``async def``,
#: and a Timeline's feed may be a ``timak.aio.Feed``.
WIDER = {"progress", "feed"}


def _parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    """Each parameter's name, kind, default (a lambda by its name) and type."""
    return [
        (p.name, p.kind, p.default.__name__ if callable(p.default) else p.default,
         None if p.name in WIDER else p.annotation)
        for p in inspect.signature(function).parameters.values()
    ]


@pytest.mark.parametrize("sync_class, aio_class", TWINS, ids=lambda c: c.__name__)
def test_every_method_has_the_sync_name_and_arguments(sync_class: type, aio_class: type) -> None:
    methods = [n for n in dir(sync_class) if not n.startswith("_")
               and callable(getattr(sync_class, n))]
    assert methods
    for name in methods:
        mine = getattr(aio_class, name)
        assert _parameters(mine) == _parameters(getattr(sync_class, name)), name
        assert inspect.iscoroutinefunction(mine) == (name not in PLAIN), name
    # The constructor: the same, and one more option, threads.
    *same, extra = _parameters(aio_class.__init__)
    assert same == _parameters(sync_class.__init__)
    assert extra == ("threads", inspect.Parameter.KEYWORD_ONLY, 8, "int")


def test_every_attribute_of_a_timeline_and_feeds_is_there() -> None:
    sync_timeline = timelines.Timeline("memory://")
    sync_feeds = activity.Feeds("memory://", followers=lambda actor: [])
    for sync, mine in [(sync_timeline, aio.Timeline("memory://")),
                       (sync_feeds, aio.Feeds("memory://", followers=lambda actor: []))]:
        for name in (n for n in vars(sync) if not n.startswith("_")):
            assert getattr(mine, name) == getattr(sync, name) or name in ("stats", "connection",
                                                                          "followers"), name


def _clock() -> Callable[[], int]:
    """A clock that gives the same readings to every Timeline made with it."""
    ticks = itertools.count(1_714_564_800_000_000, 1000)
    return lambda: next(ticks)


#: (method, args, kwargs): answers and errors, compared between the APIs.
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("add", ("k", "a", 10), {"obj_data": {"x": 1}}),
    ("add", ("k", "b", datetime(2024, 1, 1)), {}),
    ("add", ("k", 2, "2024-05-01T12:00:00Z"), {"raw": True}),
    ("add", ("k", "a", 5), {}),  # loses to the higher score
    ("get", ("k",), {}),
    ("get", ("k",), {"raw": True}),
    ("delete", ("k", "b"), {}),
    ("delete", ("k", "absent"), {}),
    ("fanout", (["h1", "h2", "h3"], "p", 5), {"obj_data": "hi", "chunk": 2}),
    ("fanout", (["h1"], "p", 5), {"deleted": True}),
    ("add_many", ("m", [("x", 1, None), ("y", 2, {"d": 2})]), {}),
    ("count", ("m",), {}),
    ("page", ("k",), {"limit": 1}),
    ("page", ("k",), {"limit": 1, "cursor": "p1.nonsense"}),
    ("range", ("k", 0, 100), {}),
    ("range", ("k", 5, 1), {}),
    ("changes", ("k",), {}),
    ("changes", ("k",), {"since": "not a cursor"}),
    ("fold", ("h1",), {}),
    ("compact", (["h1", "h2"],), {}),
    ("compact", ("one key",), {}),
    ("add", ("", 1, 1), {}),
    ("add", ("k", 1, float("inf")), {}),
    ("add", ("k", 1.5, 1), {}),
    ("add", ("k", "big", 1), {"obj_data": "x" * 100_000}),
    ("page", ("k",), {"limit": 0}),
    ("fanout", ("one key", 1, 1), {}),
    ("get", ("k",), {}),
]


def _outcome(timeline: timelines.Timeline, method: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> tuple[Any, ...]:
    try:
        return ("returned", getattr(timeline, method)(*args, **kwargs))
    except Exception as exc:
        return ("raised", type(exc), str(exc))


async def _aio_outcome(timeline: aio.Timeline, method: str, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> tuple[Any, ...]:
    try:
        return ("returned", await getattr(timeline, method)(*args, **kwargs))
    except Exception as exc:
        return ("raised", type(exc), str(exc))


async def test_every_call_answers_and_fails_as_the_sync_one_does(url: str) -> None:
    sync = timelines.Timeline(connect(url), "sync", max_items=5, clock=_clock())
    outcomes = [_outcome(sync, *call) for call in CALLS]
    async with aio.Timeline(connect(url), "aio", max_items=5, clock=_clock()) as tl:
        mine = [await _aio_outcome(tl, *call) for call in CALLS]
    for (method, args, _), theirs, ours in zip(CALLS, outcomes, mine, strict=True):
        assert ours == theirs, (method, args)
    assert {o[0] for o in outcomes} == {"returned", "raised"}
    assert tl.stats == sync.stats  # the same reads, writes, repairs and folds
    sync.connection.close()


async def test_corrupt_siblings_raise_the_same_error_with_the_rest_kept(url: str) -> None:
    async with aio.Timeline(connect(url)) as tl:
        await tl.add("k", "kept", 1)
        tl.connection.store(tl.bucket, "k", b"\xff not a timak value")
        with pytest.raises(CorruptValueError) as raised:
            await tl.get("k")
        assert raised.value.partial is not None
        assert await tl.get("k", skip_corrupt=True) == ["kept"]


# -- the event loop never waits -----------------------------------------------


async def test_a_slow_store_never_blocks_the_event_loop() -> None:
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    async with aio.Timeline(SlowMemory(0.5)) as tl:
        await asyncio.sleep(0.02)
        started = time.monotonic()
        assert await tl.add("k", 1, 1) == [1]  # one fetch: 0.5 s
        took = time.monotonic() - started
    ticker.cancel()
    during = [t for t in ticks if t >= started]
    assert took >= 0.5
    assert len(during) >= 15, f"the loop ticked {len(during)} times in {took:.2f} s"
    assert max(b - a for a, b in itertools.pairwise([started, *during])) < 0.3


async def test_threads_bound_the_calls_in_flight() -> None:
    backend = SlowMemory(0.3)
    async with aio.Timeline(backend, threads=2) as tl:
        started = time.monotonic()
        await asyncio.gather(*(tl.get(f"k{n}") for n in range(4)))
        took = time.monotonic() - started
    assert 0.6 <= took < 1.2  # two at a time: two rounds of 0.3 s, not one or four


@pytest.mark.parametrize("threads", [0, -1, True, 1.5])
def test_threads_must_be_a_positive_int(threads: Any) -> None:
    with pytest.raises(ConfigError, match="threads"):
        aio.Timeline("memory://", threads=threads)


# -- cancellation ------------------------------------------------------------


async def test_a_call_cancelled_while_queued_never_runs() -> None:
    async with aio.Timeline(SlowMemory(0.3), threads=1) as tl:
        first = asyncio.create_task(tl.add("k", "first", 1))
        await asyncio.sleep(0.05)  # first holds the only thread
        second = asyncio.create_task(tl.add("k", "second", 2))
        await asyncio.sleep(0.01)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert await first == ["first"]
        assert await tl.get("k") == ["first"]


async def test_a_running_call_cancelled_returns_at_once_and_close_waits_for_it() -> None:
    backend = SlowMemory(0.5)
    async with aio.Timeline(backend) as tl:
        task = asyncio.create_task(tl.add("k", "landed", 1))
        await asyncio.sleep(0.1)
        task.cancel()
        cancelled = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - cancelled < 0.2
    # Leaving the block waited for the thread, whose write landed.
    backend.delay = 0
    assert timelines.Timeline(backend).get("k") == ["landed"]


# -- errors, closing -----------------------------------------------------------


async def test_every_close_waits_for_the_calls_in_flight() -> None:
    backend = SlowMemory(0.3)
    tl = aio.Timeline(backend)
    write = asyncio.create_task(tl.add("k", "landed", 1))
    await asyncio.sleep(0.05)
    first = asyncio.create_task(tl.close())
    await asyncio.sleep(0.05)  # the first close is waiting for the write
    await tl.close()
    assert write.done() and await write == ["landed"]
    await first


async def test_store_failures_are_the_same_typed_errors() -> None:
    backend = MemoryBackend()
    async with aio.Timeline(backend) as tl:
        backend.fail_next(UnavailableError("store down"), ops=["fetch"])
        with pytest.raises(UnavailableError, match="store down"):
            await tl.get("k")
        backend.fail_next(UnavailableError("store down"), ops=["store"])
        with pytest.raises(UnavailableError):
            await tl.add("k", 1, 1)
        assert await tl.get("k") == []  # nothing was written


async def test_close_closes_only_what_it_opened_and_later_calls_fail() -> None:
    async with aio.Timeline("memory://") as owned:
        await owned.add("k", 1, 1)
    with pytest.raises(BackendError):
        owned.connection.fetch("timelines", "k")  # the store it opened is closed
    with pytest.raises(BackendError, match="closed"):
        await owned.get("k")
    await owned.close()  # again: nothing happens
    borrowed = MemoryBackend()
    async with aio.Timeline(borrowed) as tl:
        await tl.add("k", 1, 1)
    assert borrowed.fetch("timelines", "k").siblings  # still open


async def test_many_coroutines_on_one_key_lose_nothing(url: str) -> None:
    async with aio.Timeline(url, threads=8) as adder, \
            aio.Timeline(connect(url), threads=8) as deleter:
        adds = [adder.add("k", n, n) for n in range(120)]
        deletes = [deleter.delete("k", n, n) for n in range(0, 120, 3)]
        await asyncio.gather(*adds, *deletes)  # interleaved in the two pools
        want = [n for n in reversed(range(120)) if n % 3]
        assert await adder.get("k") == want
        assert await deleter.get("k") == want


# -- watching ------------------------------------------------------------------


async def test_watch_is_an_async_iterator_that_waits_without_blocking(url: str) -> None:
    async with aio.Timeline(url) as tl:
        cursors: dict[str, str] = {}
        got: list[Any] = []

        async def write() -> None:
            for n in range(5):
                await tl.add("k", n, n)
                await asyncio.sleep(0.02)

        async def follow() -> None:
            async with contextlib.aclosing(tl.watch(["k"], 0.01, cursors=cursors)) as changes:
                async for change in changes:
                    got.append(change.id)
                    if len(got) == 5:
                        break

        await asyncio.wait_for(asyncio.gather(write(), follow()), 10)
        assert got == [0, 1, 2, 3, 4]
        # Resumed from the saved cursors: the poll that was left mid-way
        # (its cursor never moved) comes again, then what came after.
        await tl.add("k", 9, 9)
        resumed: list[Any] = []
        async for change in tl.watch(["k"], 0.01, cursors=cursors,
                                     stop=lambda: resumed[-1:] == [9]):
            resumed.append(change.id)
        assert resumed[-2:] == [4, 9]
        assert resumed == [0, 1, 2, 3, 4, 9][-len(resumed):]


async def test_a_watch_waiting_for_an_hour_is_cancelled_at_once() -> None:
    async with aio.Timeline("memory://") as tl:
        polled = asyncio.Event()

        def stop() -> bool:
            polled.set()
            return False

        async def drain(changes: AsyncIterator[Any]) -> None:
            async for _ in changes:
                pass

        task = asyncio.create_task(drain(tl.watch(["k"], interval=3600, stop=stop)))
        await asyncio.wait_for(polled.wait(), 10)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)


def test_watch_without_keys_needs_a_feed() -> None:
    with pytest.raises(ConfigError, match="feed"):
        aio.Timeline("memory://").watch()


async def test_watch_through_an_aio_feed() -> None:
    store = MemoryBackend()
    async with aio.Feed(store) as changes, aio.Timeline(store, feed=changes) as tl:
        _, cursor = await changes.poll()
        watch = tl.watch(interval=0.01)
        await tl.add("alice", 1, 1)
        assert (await changes.poll(cursor))[0] == ["alice"]
        change = await asyncio.wait_for(anext(watch), 10)
        assert (change.key, change.id) == ("alice", 1)


# -- activity feeds ------------------------------------------------------------


async def test_async_followers_and_progress_are_awaited_on_the_loop(url: str) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    seen: list[int] = []

    async def followers(actor: object) -> list[str]:
        threads.append(threading.get_ident())
        await asyncio.sleep(0)
        return [f"f{n}" for n in range(5)]

    async def progress(written: int) -> None:
        threads.append(threading.get_ident())
        seen.append(written)

    async with aio.Feeds(url, followers=followers, chunk=2) as feeds:
        post = Activity("alice", "post", "p1", time=10)
        assert await feeds.add_activity(post, fanout_to=["home"], progress=progress) == 6
        assert seen == [1, 3, 5, 6]
        assert set(threads) == {loop_thread}
        page = await feeds.read("home", "f4")
        assert page.activities == [post]
        home = feeds.timeline("home")
        assert await home.count("f0") == 1
        await home.close()  # lent: closes nothing
        assert await feeds.count("home", "f0") == 1


async def test_a_plain_followers_function_runs_in_a_worker_thread() -> None:
    threads: list[int] = []

    def followers(actor: object) -> list[str]:
        threads.append(threading.get_ident())
        return ["bob"]

    async with aio.Feeds("memory://", followers=followers) as feeds:
        await feeds.add_activity(Activity("alice", "post", "p1", time=10))
    assert threads and threads[0] != threading.get_ident()


def test_a_backend_is_usable_where_the_sync_api_takes_one() -> None:
    backend: Backend = MemoryBackend()
    assert aio.Timeline(backend).connection is backend


# -- the guide -----------------------------------------------------------------


def test_asyncio_guide_runs() -> None:
    result = doctest.testfile(
        str(Path(__file__).resolve().parent.parent / "docs" / "asyncio.md"),
        module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted > 10
    assert result.failed == 0
