"""Follow/unfollow racing a post or a remove, against a sequential oracle.

Each racing call runs in its own thread on its own connection, behind a
gate that lets exactly one store call (or read of the follow graph) through
at a time, in an order hypothesis picks: every interleaving of the two
calls' steps is reachable. The result must equal what the oracle gives for
one of the two sequential orders (the race rule in
``timak.activity._feeds``): nothing lost, nothing resurrected. A sequential
tail (another follow, post or unfollow) then checks that the tombstones
left behind also match the oracle's.

Runs on memory, SQLite and the Riak test double.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stores import STORES, url_for

from timak.activity import Activity, FeedGroup, Feeds
from timak.backends import Backend, Fetched, connect
from timak.backends.base import StoreResult

Connect = Callable[[], Backend]
Op = tuple[Any, ...]


class Gate:
    """Lets one gated thread run at a time, to its next gate, when told to."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._parked = threading.Semaphore(0)
        self._go: dict[str, threading.Semaphore] = {}
        self.done: set[str] = set()
        self.errors: list[BaseException] = []
        self._open = False  # set when the scheduler gave up: nothing waits

    def wait(self) -> None:
        name = getattr(self._local, "name", None)
        if name is None or self._open:
            return  # the main thread (setup, tail, checks) is never gated
        self._parked.release()
        self._go[name].acquire()

    def run(self, calls: dict[str, Callable[[], Any]], pick: Callable[[list[str]], str]) -> None:
        threads = []
        for name, call in calls.items():
            self._go[name] = threading.Semaphore(0)
            threads.append(threading.Thread(target=self._body, args=(name, call), daemon=True))
        for thread in threads:
            thread.start()
        try:
            for _ in threads:
                self._parked.acquire()  # each parks at its first gate
            while len(self.done) < len(calls):
                name = pick(sorted(set(calls) - self.done))
                self._go[name].release()
                self._parked.acquire()  # it parked again, or finished
        finally:
            # If pick raised (hypothesis ran out of data), let the threads
            # finish ungated rather than leave them parked forever.
            self._open = True
            for go in self._go.values():
                go.release()
            for thread in threads:
                thread.join(timeout=30)
        if self.errors:
            raise self.errors[0]

    def _body(self, name: str, call: Callable[[], Any]) -> None:
        self._local.name = name
        try:
            self.wait()
            call()
        except BaseException as exc:  # reported by run()
            self.errors.append(exc)
        finally:
            self.done.add(name)
            self._parked.release()


class GatedBackend(Backend):
    """A real backend whose calls each wait at the gate first."""

    def __init__(self, inner: Backend, gate: Gate) -> None:
        self.inner, self.gate = inner, gate

    def fetch(self, bucket: str, key: str) -> Fetched:
        self.gate.wait()
        return self.inner.fetch(bucket, key)

    def store(self, bucket: str, key: str, value: bytes, context: Any = None) -> StoreResult:
        self.gate.wait()
        return self.inner.store(bucket, key, value, context)

    def store_many(self, bucket: str, entries: Iterable[tuple[str, bytes]]) -> list[StoreResult]:
        self.gate.wait()
        return self.inner.store_many(bucket, entries)

    def delete(self, bucket: str, key: str, context: Any = None) -> None:
        self.gate.wait()
        self.inner.delete(bucket, key, context)

    def keys(self, bucket: str) -> Iterator[str]:
        return self.inner.keys(bucket)

    def close(self) -> None:
        self.inner.close()


class Oracle:
    """The feeds of one author (alice) and one reader (bob), applied in order."""

    def __init__(self) -> None:
        self.user: dict[str, tuple[int, bool]] = {}
        self.home: dict[str, tuple[int, bool]] = {}
        self.follows = False

    @staticmethod
    def _write(feed: dict[str, tuple[int, bool]], id: str, score: int, deleted: bool) -> None:
        old = feed.get(id)
        if old is None or score > old[0] or (score == old[0] and deleted and not old[1]):
            feed[id] = (score, deleted)

    def apply(self, op: Op) -> None:
        kind = op[0]
        if kind in ("post", "remove"):
            activity: Activity = op[1]
            deleted = kind == "remove"
            self._write(self.user, activity.id, activity.time, deleted)
            if self.follows:
                self._write(self.home, activity.id, activity.time, deleted)
        elif kind == "follow":
            self.follows = True
            for id, score in visible(self.user)[: op[1]]:
                self._write(self.home, id, score, False)
        elif kind == "unfollow":
            self.follows = False
            # Every home item here is alice's. Run in order, every post's
            # fan-out is done: only what home holds is tombstoned.
            for id, score in visible(self.home):
                self._write(self.home, id, score, True)


def visible(feed: dict[str, tuple[int, bool]]) -> list[tuple[str, int]]:
    found = [(id, score) for id, (score, deleted) in feed.items() if not deleted]
    return sorted(found, key=lambda item: (item[1], item[0]), reverse=True)


class World:
    """The real feeds: the graph, and ``Feeds`` on new (gated) connections."""

    def __init__(self, connect: Connect, gate: Gate) -> None:
        self.connect, self.gate = connect, gate
        suffix = uuid.uuid4().hex[:10]
        self.groups = [FeedGroup("user", bucket=f"ru-{suffix}"),
                       FeedGroup("home", follows="user", bucket=f"rh-{suffix}")]
        self.followers_of_alice: set[str] = set()
        self.opened: list[Backend] = []

    def followers(self, actor: object) -> list[str]:
        self.gate.wait()  # reading the graph is a step of its own
        return sorted(self.followers_of_alice) if actor == "alice" else []

    def feeds(self) -> Feeds:
        backend = GatedBackend(self.connect(), self.gate)
        self.opened.append(backend)
        return Feeds(backend, followers=self.followers, groups=self.groups)

    def call(self, op: Op) -> Callable[[], Any]:
        """The real call for ``op``; graph changes come first (the app's job)."""
        feeds = self.feeds()
        kind = op[0]
        if kind == "post":
            return lambda: feeds.add_activity(op[1])
        if kind == "remove":
            return lambda: feeds.remove_activity(op[1])

        def change_graph_then(call: Callable[[], Any]) -> None:
            self.gate.wait()
            if kind == "follow":
                self.followers_of_alice.add("bob")
            else:
                self.followers_of_alice.discard("bob")
            call()

        if kind == "follow":
            return lambda: change_graph_then(lambda: feeds.follow("bob", "alice",
                                                                  copy_limit=op[1]))
        return lambda: change_graph_then(lambda: feeds.unfollow("bob", "alice"))

    def state(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        feeds = self.feeds()
        user = [(a.id, a.time) for a in feeds.read("user", "alice", 1000).activities]
        home = [(a.id, a.time) for a in feeds.read("home", "bob", 1000).activities]
        return user, home

    def close(self) -> None:
        for backend in self.opened:
            backend.close()


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Op], list[Op], list[Op]]:
    """(sequential setup, the two racing ops, a sequential tail)."""
    times = st.integers(0, 4)
    posts = [Activity("alice", "post", f"p{n}", time=draw(times))
             for n in range(draw(st.integers(0, 3)))]
    new = Activity("alice", "post", "new", time=draw(times))
    race = draw(st.sampled_from(["post-unfollow", "post-follow", "remove-follow",
                                 "remove-unfollow"]))
    first, second = race.split("-")
    setup: list[Op] = []
    if second == "unfollow":
        setup.append(("follow", 10))
    setup += [("post", p) for p in posts]
    if first == "remove":
        victim = draw(st.sampled_from(posts)) if posts else new
        if not posts:
            setup.append(("post", new))
        a: Op = ("remove", victim)
    else:
        a = ("post", new)
    b: Op = ("follow", draw(st.integers(0, 4))) if second == "follow" else ("unfollow",)
    tail = draw(st.lists(st.sampled_from([
        ("follow", 10), ("unfollow",), ("post", Activity("alice", "post", "late", time=3)),
    ]), max_size=2))
    return setup, [a, b], tail


@pytest.fixture(params=STORES)
def connect_store(request: pytest.FixtureRequest, tmp_path: Path) -> Connect:
    url = url_for(request, tmp_path, "races.db")
    return lambda: connect(url)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios(), data=st.data())
def test_races_end_as_one_of_the_sequential_orders(
    connect_store: Connect, scenario: tuple[list[Op], list[Op], list[Op]], data: st.DataObject
) -> None:
    """Each example uses fresh buckets, so one store serves them all."""
    setup, (a, b), tail = scenario
    gate = Gate()
    world = World(connect_store, gate)
    try:
        for op in setup:
            world.call(op)()
        gate.run({"a": world.call(a), "b": world.call(b)},
                 lambda names: data.draw(st.sampled_from(names)))
        for op in tail:
            world.call(op)()
        got = world.state()
    finally:
        world.close()
    outcomes = []
    for order in ([a, b], [b, a]):
        oracle = Oracle()
        for op in setup + order + tail:
            oracle.apply(op)
        outcomes.append((visible(oracle.user), visible(oracle.home)))
    assert got in outcomes
