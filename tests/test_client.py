"""``timak.client`` (sync and async) against a real ``timak serve`` process:
the same scenario runs through the library in-process and through each
client, and every answer must be the same (the same calls, the same
results, the same exceptions)."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx", reason="the client tests need timak[client] (httpx)")
pytest.importorskip("starlette", reason="the client tests need timak[server]")

from servers import READ_TOKEN, WRITE_TOKEN, Served, token_file

import timak
import timak.client
import timak.client.aio
from timak.activity import Activity, Feeds

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("client")
    with Served(f"sqlite:///{directory / 'timak.db'}", "--poll-interval", "0.1",
                tokens=token_file(directory)) as server:
        yield server


class Awaited:
    """Calls an async object's methods and waits for them, on one loop."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.target, self.loop = target, loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.target, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            assert inspect.isawaitable(result), name
            return self.loop.run_until_complete(result)
        return call


def outcome(call: Callable[[], Any]) -> Any:
    """What a call returned, or the class and message of what it raised."""
    try:
        return call()
    except timak.TimakError as exc:
        return (type(exc).__name__, str(exc))


def timeline_scenario(tl: Any, key: str) -> list[Any]:
    found = [
        outcome(lambda: tl.add(key, "p1", "2024-05-01T12:00:00Z", {"text": "hi"})),
        outcome(lambda: tl.add(key, 2, dt.datetime(2024, 5, 1, 13))),
        outcome(lambda: tl.add(key, "p3", dt.datetime(2024, 5, 2, tzinfo=UTC), [1, "x"])),
        outcome(lambda: tl.add(key, "p4", 5.5)),
        outcome(lambda: tl.delete(key, 2)),
        outcome(lambda: tl.delete(key, "absent")),
        outcome(lambda: tl.get(key)),
        outcome(lambda: [(r.id, r.score, r.deleted, r.data) for r in tl.get(key, raw=True)]),
        outcome(lambda: tl.count(key)),
        outcome(lambda: tl.range(key, dt.datetime(2024, 5, 1), dt.datetime(2024, 5, 3))),
        outcome(lambda: tl.range(key, 3, 1)),
        outcome(lambda: tl.add(key, "", 1)),
        outcome(lambda: tl.add(key, "x", float("nan"))),
        outcome(lambda: tl.page(key, 0)),
        outcome(lambda: tl.page(key, 2, "not-a-cursor")),
        outcome(lambda: tl.fanout([f"{key}:f{n}" for n in range(5)], "p9", 9, chunk=2)),
        outcome(lambda: tl.get(f"{key}:f4")),
        outcome(lambda: tl.fanout(key, "p9", 9)),
        outcome(lambda: [(c.id, c.deleted) for c in tl.changes(key).changes]),
    ]
    first = tl.page(key, 2)
    found += [first.items, tl.page(key, 2, first.cursor).items]
    since = tl.changes(key).cursor
    tl.add(key, "p5", 6)
    found.append([(c.key, c.id, c.score, c.deleted) for c in tl.changes(key, since).changes])
    return found


def feeds_scenario(feeds: Any, follow: Callable[..., int], unfollow: Callable[..., int],
                   tag: str) -> list[Any]:
    alice, bob, carol = f"alice{tag}", f"bob{tag}", f"carol{tag}"
    noon = dt.datetime(2024, 5, 1, 12, tzinfo=UTC)
    post = Activity(alice, "post", "photo:1", time=noon, extra={"text": "sunset"})
    found: list[Any] = [follow(bob, alice), feeds.add_activity(post)]
    for n, who in enumerate([bob, carol]):
        like = Activity(who, "like", "photo:1", time=noon + dt.timedelta(minutes=n + 1))
        found.append(feeds.add_activity(like, to=[("notification", alice)]))
    bell = feeds.notifications(alice)
    found += [
        follow(carol, alice, copy_limit=5),
        [(a.actor, a.verb, a.object, a.time, a.extra, a.id) for a in
         feeds.read("home", carol).activities],
        (bell.unseen, bell.unread, [(g.id, g.verb, g.actors, g.total, g.seen, g.read)
                                    for g in bell.groups]),
        feeds.mark_seen(alice),
        feeds.mark_read(alice, [bell.groups[0].id]),
        (feeds.unseen_count(alice), feeds.unread_count(alice)),
        outcome(lambda: feeds.mark_read(alice, ["like|photo:9|2024-05-01"])),
        outcome(lambda: feeds.read("nope", alice)),
        outcome(lambda: follow(alice, alice)),
        outcome(lambda: feeds.add_activity(post, to=[("nope", bob)])),
        feeds.count("user", alice),
        unfollow(carol, alice),
        feeds.read("home", carol).activities,
        feeds.remove_activity(post),
        feeds.count("home", bob),
        [g.id for g in feeds.aggregated("notification", alice, limit=1).groups],
    ]
    return found


def test_a_timeline_answers_alike_in_process_and_through_both_clients(
    served: Served, tmp_path: Path
) -> None:
    key = f"tl:{uuid.uuid4().hex[:6]}"
    with timak.Timeline(f"sqlite:///{tmp_path / 'here.db'}") as tl:
        expected = timeline_scenario(tl, key)
    with timak.client.Timeline(served.url, token=WRITE_TOKEN) as remote:
        assert timeline_scenario(remote, key) == expected
    loop = asyncio.new_event_loop()
    try:
        remote_async = timak.client.aio.Timeline(served.url, token=WRITE_TOKEN)
        assert timeline_scenario(Awaited(remote_async, loop), key + "a") == [
            _renamed(x, key, key + "a") for x in expected]
        loop.run_until_complete(remote_async.close())
    finally:
        loop.close()


def _renamed(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list | tuple):
        return type(value)(_renamed(v, old, new) for v in value)
    return value


def in_process(tag: str) -> list[Any]:
    """The feeds scenario through the library, with the app keeping its graph."""
    graph: dict[str, set[str]] = {}
    local = Feeds("memory://", followers=lambda actor: sorted(graph.get(str(actor), ())))

    def follow(who: str, whom: str, **options: Any) -> int:
        if who != whom:
            graph.setdefault(whom, set()).add(who)  # the app's graph first
        return local.follow(who, whom, **options)

    def unfollow(who: str, whom: str, **options: Any) -> int:
        graph.get(whom, set()).discard(who)
        return local.unfollow(who, whom, **options)

    return feeds_scenario(local, follow, unfollow, tag)


def test_feeds_answer_alike_in_process_and_through_both_clients(served: Served) -> None:
    tag = uuid.uuid4().hex[:6]
    with timak.client.Feeds(served.url, token=WRITE_TOKEN) as remote:
        got = feeds_scenario(remote, remote.follow, remote.unfollow, tag)
    assert got == in_process(tag)
    loop = asyncio.new_event_loop()
    try:
        remote_async = timak.client.aio.Feeds(served.url, token=WRITE_TOKEN)
        waited = Awaited(remote_async, loop)
        tag = uuid.uuid4().hex[:6]
        assert feeds_scenario(waited, waited.follow, waited.unfollow, tag) == in_process(tag)
        loop.run_until_complete(remote_async.close())
    finally:
        loop.close()


def test_errors_come_back_as_timak_exceptions(served: Served) -> None:
    with timak.client.Timeline(served.url, token=READ_TOKEN) as reader:
        assert reader.get("anything") == []
        with pytest.raises(timak.AccessDeniedError):
            reader.add("k", "a", 1)
    with timak.client.Timeline(served.url) as anonymous, pytest.raises(timak.AccessDeniedError):
        anonymous.get("k")
    with timak.client.Timeline("http://127.0.0.1:9", token=WRITE_TOKEN) as nowhere, \
            pytest.raises(timak.UnavailableError):
        nowhere.get("k")
    with pytest.raises(timak.ConfigError):
        timak.client.Timeline("sqlite:///x.db")
    with timak.client.Timeline(served.url, token=READ_TOKEN) as reader:
        with pytest.raises(timak.ConfigError):
            reader.watch()  # at the call, as the library's: no feed is served
        with pytest.raises(timak.ConfigError):
            reader.watch(["k"], feed_cursor="f1.x")
        assert reader.get("nothing", skip_corrupt=True) == []
    remote_async = timak.client.aio.Timeline(served.url, token=READ_TOKEN)
    with pytest.raises(timak.ConfigError):
        remote_async.watch()
    asyncio.run(remote_async.close())


def test_watch_is_pushed_and_resumes_from_cursors(served: Served) -> None:
    keys = [f"w:{uuid.uuid4().hex[:6]}" for _ in range(2)]
    cursors: dict[str, str] = {}
    seen: list[tuple[str, Any]] = []
    done = threading.Event()

    def watch() -> None:
        with timak.client.Timeline(served.url, token=READ_TOKEN) as tl:
            for change in tl.watch(keys, cursors=cursors, stop=done.is_set):
                seen.append((change.key, change.id))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    with timak.client.Timeline(served.url, token=WRITE_TOKEN) as tl:
        deadline = time.monotonic() + 10
        while len(cursors) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        tl.add(keys[0], "a", 1)
        tl.add(keys[1], "b", 2)
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        done.set()
        thread.join(10)
        assert sorted(seen) == sorted([(keys[0], "a"), (keys[1], "b")])
        tl.add(keys[0], "c", 3)  # while no one watches

        async def resume() -> list[Any]:
            async with timak.client.aio.Timeline(served.url, token=READ_TOKEN) as atl:
                async for change in atl.watch(keys, cursors=cursors):
                    return [(change.key, change.id)]
            return []

        assert asyncio.run(asyncio.wait_for(resume(), 10)) == [(keys[0], "c")]
