"""Activity feeds: bad input writes nothing, a store failing mid-fan-out loses
nothing acknowledged and a retry is safe, blind writes never read, counts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from timak import Timeline
from timak.activity import Activity, FeedGroup, Feeds, by_verb_object_day
from timak.backends.memory import MemoryBackend
from timak.errors import (
    ConfigError,
    InvalidActivityError,
    InvalidFollowError,
    InvalidInputError,
    UnavailableError,
    UnknownActivityGroupError,
    UnknownFeedGroupError,
)

WHEN = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
FOLLOWERS = {"alice": [f"f{n}" for n in range(10)]}


def make(backend: MemoryBackend | None = None) -> tuple[Feeds, MemoryBackend]:
    backend = backend or MemoryBackend()
    feeds = Feeds(backend, followers=lambda a: FOLLOWERS.get(str(a), []), chunk=3)
    return feeds, backend


def stored(backend: MemoryBackend) -> dict[tuple[str, str], dict[int, bytes]]:
    return {k: dict(v) for k, v in backend._store.rows.items()}


@pytest.mark.parametrize("fields", [
    {"actor": "", "verb": "post"},
    {"actor": None, "verb": "post"},
    {"actor": True, "verb": "post"},
    {"actor": "a", "verb": ""},
    {"actor": "a", "verb": None},
    {"actor": "a", "verb": "post", "object": ""},
    {"actor": "a", "verb": "post", "object": 2**70},
    {"actor": "a", "verb": "post", "time": float("nan")},
    {"actor": "a", "verb": "post", "time": "yesterday"},
    {"actor": "a", "verb": "post", "extra": {"x": {1, 2}}},
    {"actor": "a", "verb": "post", "extra": {1: "x"}},
    {"actor": "a", "verb": "post", "id": 7},
    {"actor": "a" * 2000, "verb": "post"},
])
def test_activities_without_actor_or_verb_or_with_bad_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidActivityError):
        Activity(**fields)
    assert issubclass(InvalidActivityError, InvalidInputError)


def test_ids_are_stable_and_can_be_given() -> None:
    a = Activity("alice", "post", "p1", time=WHEN)
    assert a.id == Activity("alice", "post", "p1", time=WHEN.isoformat()).id
    assert a.id != Activity("alice", "post", "p2", time=WHEN).id
    assert a.id != Activity("alice", "post", "p1", time="2024-05-01T12:00:01Z").id
    assert Activity("alice", "post", id="post-1").id == "post-1"
    assert Activity(7, "post", 9).item()[2] == {"a": 7, "v": "post", "o": 9}
    assert by_verb_object_day(Activity("a", "post", time=WHEN)) == "post||2024-05-01"
    assert len({a, Activity("alice", "post", "p1", time=WHEN, extra={"x": 1})}) == 2


def test_bad_input_writes_nothing() -> None:
    feeds, backend = make()
    feeds.add_activity(Activity("alice", "post", "p0", time=WHEN), to=[("notification", "z")])
    before = stored(backend)
    post = Activity("alice", "post", "p1", time=WHEN)
    bad_calls = [
        (UnknownFeedGroupError, lambda: feeds.add_activity(post, fanout_to=["homes"])),
        (UnknownFeedGroupError, lambda: feeds.add_activity(post, to=[("inbox", "z")])),
        (UnknownFeedGroupError, lambda: feeds.remove_activity(post, fanout_to=["nope"])),
        (InvalidActivityError, lambda: feeds.add_activity({"actor": "a"})),  # type: ignore[arg-type]
        (InvalidFollowError, lambda: feeds.follow("alice", "alice")),
        (InvalidFollowError, lambda: feeds.follow(7, "7")),
        (InvalidFollowError, lambda: feeds.follow("bob", "alice", copy_limit=-1)),
        (InvalidFollowError, lambda: feeds.follow("bob", "alice", copy_limit=1.5)),  # type: ignore[arg-type]
        (InvalidFollowError, lambda: feeds.unfollow("bob", "bob")),
        (UnknownFeedGroupError, lambda: feeds.follow("bob", "alice", feeds=["user"])),
        (UnknownFeedGroupError, lambda: feeds.unfollow("bob", "alice", feeds=["nope"])),
        (UnknownActivityGroupError, lambda: feeds.mark_read("z", ["post|p9|2024-05-01"])),
        (UnknownActivityGroupError,
         lambda: feeds.mark_read("z", ["post|p0|2024-05-01", "missing"])),
        (UnknownFeedGroupError, lambda: feeds.mark_seen("z", feed="home")),
        (UnknownFeedGroupError, lambda: feeds.mark_read("z", feed="nope")),
        (UnknownFeedGroupError, lambda: feeds.aggregated("home", "z")),
        (UnknownFeedGroupError, lambda: feeds.read("nope", "z")),
        (ConfigError, lambda: feeds.read("home", "z", limit=0)),
    ]
    for error, call in bad_calls:
        with pytest.raises(error):
            call()
        assert stored(backend) == before, error
    assert feeds.mark_read("z", ["post|p0|2024-05-01"]) == 1  # the group that exists


def test_feeds_configuration_is_checked() -> None:
    with pytest.raises(ConfigError, match="unique"):
        Feeds("memory://", followers=list, groups=[FeedGroup("a"), FeedGroup("a")])
    with pytest.raises(ConfigError, match="follows unknown"):
        Feeds("memory://", followers=list, groups=[FeedGroup("user"), FeedGroup("h", follows="x")])
    with pytest.raises(ConfigError, match="author_group"):
        Feeds("memory://", followers=list, groups=[FeedGroup("own")])
    with pytest.raises(ConfigError, match="chunk"):
        Feeds("memory://", followers=list, chunk=0)
    with pytest.raises(ConfigError, match="order"):
        Feeds("memory://", followers=list, timeline_options={"order": "asc"})
    with pytest.raises(ConfigError, match="kind"):
        FeedGroup("x", "timeline")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_items"):
        FeedGroup("x", max_items=0)


@pytest.mark.parametrize("fail_after", [0, 1, 2, 3])
def test_store_down_mid_fanout_keeps_what_was_written_and_retry_is_safe(
    fail_after: int,
) -> None:
    feeds, backend = make()
    post = Activity("alice", "post", "p1", time=WHEN)
    # Writes go out as: the author's feed, then chunks of 3 followers' homes.
    chunks: list[int] = []
    original = backend.store_many

    def store_many(bucket: str, entries: Any) -> Any:
        if len(chunks) == fail_after:
            raise UnavailableError("store went down")
        result = original(bucket, entries)
        chunks.append(len(result))
        return result

    backend.store_many = store_many  # type: ignore[method-assign]
    progress: list[int] = []
    with pytest.raises(UnavailableError):
        feeds.add_activity(post, progress=progress.append)
    acknowledged = sum(chunks)
    assert progress == [sum(chunks[: i + 1]) for i in range(len(chunks))]
    # Every acknowledged write is in place.
    owners = ["alice"] + FOLLOWERS["alice"]
    feeds_of = [("user", "alice")] + [("home", f) for f in FOLLOWERS["alice"]]
    present = [o for o, (g, owner) in zip(owners, feeds_of, strict=True)
               if feeds.count(g, owner) == 1]
    assert len(present) == acknowledged
    # The retry writes everything; nothing is doubled.
    backend.store_many = original  # type: ignore[method-assign]
    assert feeds.add_activity(post) == 11
    assert all(feeds.read(g, o).activities == [post] for g, o in feeds_of)
    # A remove interrupted the same way, then retried, removes everywhere.
    backend.fail_next(UnavailableError("down"), ops=["store_many"])
    with pytest.raises(UnavailableError):
        feeds.remove_activity(post)
    assert feeds.remove_activity(post) == 11
    assert all(feeds.count(g, o) == 0 for g, o in feeds_of)


def test_fanout_and_remove_never_read_and_follow_reads_once() -> None:
    feeds, backend = make()
    feeds.chunk = 1000
    post = Activity("alice", "post", "p1", time=WHEN)
    feeds.add_activity(post)
    feeds.remove_activity(post)
    assert backend.calls.get("fetch", 0) == 0
    # author + followers + the fan-out mark, then author + followers
    assert backend.calls["store_many"] == 5
    for n in range(150):
        feeds.add_activity(Activity("carol", "post", f"c{n}", time=n))
    # So the reads below need no read repair: carol's feed and her fan-out marks.
    feeds.timeline("user").fold("carol")
    Timeline(backend, "activity.user.fanned").fold("carol")
    backend.calls.clear()
    assert feeds.follow("bob", "carol", copy_limit=100) == 100
    assert backend.calls == {"fetch": 1, "store_many": 1}
    backend.calls.clear()
    # The copies only: the rest of carol's feed was fanned out (marked done).
    assert feeds.unfollow("bob", "carol") == 100
    assert backend.calls == {"fetch": 3, "store_many": 1}  # marks, bob's, carol's
    assert feeds.count("home", "bob") == 0


def test_a_post_that_failed_mid_fanout_is_still_removed_by_an_unfollow() -> None:
    # No fan-out mark: a write to f9's home may still be in flight.
    feeds, backend = make()
    post = Activity("alice", "post", "p1", time=WHEN)
    original, calls = backend.store_many, []

    def store_many(bucket: str, entries: Any) -> Any:
        calls.append(bucket)
        if len(calls) == 3:
            raise UnavailableError("store went down")
        return original(bucket, entries)

    backend.store_many = store_many  # type: ignore[method-assign]
    with pytest.raises(UnavailableError):
        feeds.add_activity(post)  # alice, f0..f2, then down
    backend.store_many = original  # type: ignore[method-assign]
    assert feeds.count("home", "f0") == 1 and feeds.count("home", "f9") == 0
    for follower in ("f0", "f9"):
        assert feeds.unfollow(follower, "alice") == 1
    # Once a retry completes, the mark spares those who never held it.
    assert feeds.add_activity(post) == 11
    assert feeds.unfollow("f8", "alice") == 1  # it holds it
    feeds.timeline("home").add_many("f8", [Activity("carol", "post", time=WHEN).item()])
    assert feeds.unfollow("f8", "alice") == 0
    assert feeds.count("home", "f8") == 1


def test_unfollow_on_a_full_feed_tombstones_only_what_could_enter() -> None:
    backend = MemoryBackend()
    feeds = Feeds(backend, followers=lambda a: [], groups=[
        FeedGroup("user"), FeedGroup("home", max_items=5, follows="user")])
    # carol's posts are on her feed, their fan-outs still in flight (no marks).
    feeds.timeline("user").add_many("carol", [
        Activity("carol", "post", f"c{n}", time=n).item() for n in range(20)])
    for n in range(5):
        feeds.timeline("home").add_many("bob", [Activity("dan", "post", f"d{n}",
                                                         time=10 + n).item()])
    # bob's home is full from score 10 up: carol's c0..c10 could never enter.
    assert feeds.unfollow("bob", "carol") == 9
    # None of carol's shows. (Whether the tombstones push dan's items off is
    # the capacity rule's business: a key only ever written blind states none.)
    shown = [a.object for a in feeds.read("home", "bob").activities]
    assert not [o for o in shown if str(o).startswith("c")]


def test_timeline_count_and_add_many() -> None:
    tl = Timeline(MemoryBackend(), max_items=3)
    assert tl.count("k") == 0
    assert tl.add_many("k", [("a", 1, None), ("b", 2, {"x": 1}), ("c", 3, None),
                             ("d", 4, None)]) == 4
    assert tl.get("k") == ["d", "c", {"x": 1}]  # the newest three of one write
    assert tl.count("k") == 3
    assert tl.add_many("k", [("c", 3, None)], deleted=True) == 1
    assert tl.count("k") == 2
    assert tl.add_many("k", []) == 0
    with pytest.raises(InvalidInputError):
        tl.add_many("k", [("e", 5, None), ("", 6, None)])
    assert tl.count("k") == 2


def test_a_200_kb_activity_to_1000_followers_writes_its_payload_once() -> None:
    backend = MemoryBackend()
    written: list[int] = []
    store_many, store = backend.store_many, backend.store

    def counting_many(bucket: str, entries: Any) -> Any:
        entries = list(entries)
        written.extend(len(v) for _, v in entries)
        return store_many(bucket, entries)

    def counting(bucket: str, key: str, value: bytes, context: Any = None) -> Any:
        written.append(len(value))
        return store(bucket, key, value, context)

    backend.store_many = counting_many  # type: ignore[method-assign]
    backend.store = counting  # type: ignore[method-assign]
    followers = [f"f{n}" for n in range(1000)]
    feeds = Feeds(backend, followers=lambda a: followers)
    post = Activity("alice", "post", "p1", time=WHEN, extra={"text": "z" * 200_000})
    assert feeds.add_activity(post) == 1001
    assert len([n for n in written if n > 200_000]) == 1  # the payload, once
    assert sum(written) < 200_000 + 1001 * 200  # and a small reference per feed
    assert feeds.read("home", "f999").activities == [post]
    # Small payloads stay inline: no payload write.
    small = Activity("alice", "post", "p2", time=WHEN, extra={"text": "hi"})
    feeds.add_activity(small)
    assert backend.fetch(feeds.payload_bucket, small.id).siblings == []
    assert backend.fetch(feeds.payload_bucket, post.id).siblings != []
