"""Activity-feed scenarios every store must pass, as pytest tests.

A store's test module subclasses ``ActivityScenarios`` and provides one
fixture, ``connect``, that opens a new connection to one shared store (as
``FeedScenarios`` in ``timak.testing_feed`` does for the change feed)::

    class TestMyStoreActivity(ActivityScenarios):
        @pytest.fixture
        def connect(self, tmp_path):
            return lambda: MyBackend(tmp_path / "db")

Each scenario uses fresh bucket names, since a real store outlives it. The
scenarios drive ``timak.activity`` (layer 4), so they sit beside it, apart
from the backend conformance suite in ``timak.testing``. It imports pytest.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest

from timak.activity import Activity, FeedGroup, Feeds
from timak.backends import Backend
from timak.errors import CorruptValueError, InvalidCursorError

__all__ = ["ActivityScenarios", "Connect", "Env", "Graph"]

Connect = Callable[[], Backend]
T0 = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Graph:
    """The application's follow graph: follower sets per actor."""

    def __init__(self) -> None:
        self.edges: dict[str, set[str]] = {}

    def followers(self, actor: object) -> list[str]:
        return sorted(self.edges.get(str(actor), set()))

    def add(self, follower: str, target: str) -> None:
        self.edges.setdefault(target, set()).add(follower)

    def remove(self, follower: str, target: str) -> None:
        self.edges.get(target, set()).discard(follower)


def groups(suffix: str, max_items: int = 1000) -> list[FeedGroup]:
    return [
        FeedGroup("user", "flat", max_items, bucket=f"user-{suffix}"),
        FeedGroup("home", "flat", max_items, follows="user", bucket=f"home-{suffix}"),
        FeedGroup("digest", "aggregated", max_items, follows="user", bucket=f"dig-{suffix}"),
        FeedGroup("notification", "notification", max_items, bucket=f"note-{suffix}"),
    ]


class Env:
    """One store; ``feeds()`` opens another app server on a new connection."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self.suffix = uuid.uuid4().hex[:8]
        self.graph = Graph()
        self._opened: list[Backend] = []

    def feeds(self, max_items: int = 1000) -> Feeds:
        backend = self._connect()
        self._opened.append(backend)
        # A payload bucket of the scenario's own too: activity ids are
        # hashes of what they say, so the same activity in another scenario
        # on one real store would meet this one's payload.
        return Feeds(backend, followers=self.graph.followers,
                     groups=groups(self.suffix, max_items),
                     payload_bucket=f"activity.payloads.{self.suffix}")

    def close(self) -> None:
        for backend in self._opened:
            backend.close()


def objects(page_activities: list[Activity]) -> list[object]:
    return [a.object for a in page_activities]


class ActivityScenarios:
    """Behaviour that must hold on every store."""

    @pytest.fixture
    def connect(self) -> Connect:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def env(self, connect: Connect) -> Iterator[Env]:
        env = Env(connect)
        yield env
        env.close()

    def test_post_reaches_author_and_followers_with_progress(self, env: Env) -> None:
        feeds = env.feeds()
        feeds.chunk = 2
        for n in range(5):
            env.graph.add(f"f{n}", "alice")
        seen: list[int] = []
        post = Activity("alice", "post", "p1", time=at(0), extra={"text": "hi"})
        assert feeds.add_activity(post, fanout_to=["home"], progress=seen.append) == 6
        assert seen == [1, 3, 5, 6]  # the author's feed, then chunks of 2
        for owner, feed in [("alice", "user"), ("f0", "home"), ("f4", "home")]:
            (got,) = feeds.read(feed, owner).activities
            assert got == post
        assert feeds.read("home", "alice").activities == []
        assert feeds.count("home", "f3") == 1

    def test_remove_tombstones_everywhere(self, env: Env) -> None:
        feeds, other = env.feeds(), env.feeds()
        env.graph.add("bob", "alice")
        env.graph.add("carol", "alice")
        keep = Activity("alice", "post", "p0", time=at(0))
        post = Activity("alice", "post", "p1", time=at(1))
        feeds.add_activity(keep, to=[("notification", "dave")])
        feeds.add_activity(post, to=[("notification", "dave")])
        # Another server removes it, knowing only the activity.
        assert other.remove_activity(post, to=[("notification", "dave")]) == 6
        for owner, feed in [("alice", "user"), ("bob", "home"), ("carol", "digest"),
                            ("dave", "notification")]:
            assert objects(feeds.read(feed, owner).activities) == ["p0"], (owner, feed)
            assert feeds.count(feed, owner) == 1
        records = feeds.timeline("home").get("bob", raw=True)
        assert [(r.id, r.deleted) for r in records] == [(post.id, True), (keep.id, False)]

    def test_follow_copies_the_newest_in_one_write(self, env: Env) -> None:
        feeds = env.feeds()
        for n in range(10):
            feeds.add_activity(Activity("alice", "post", f"p{n}", time=at(n)))
        feeds.add_activity(Activity("carol", "post", "c1", time=at(4.5)))
        env.graph.add("bob", "alice")
        home = feeds.timeline("home")
        writes = home.stats.blind_writes
        assert feeds.follow("bob", "alice", copy_limit=3, feeds=["home"]) == 3
        assert home.stats.blind_writes == writes + 1  # all three copies in one write
        assert objects(feeds.read("home", "bob").activities) == ["p9", "p8", "p7"]
        assert feeds.follow("bob", "alice", copy_limit=0, feeds=["home"]) == 0
        # Following again is idempotent; following with the default copies
        # into every group that follows "user".
        assert feeds.follow("bob", "alice") == 20
        assert feeds.count("home", "bob") == 10
        assert feeds.count("digest", "bob") == 10

    def test_unfollow_removes_and_keep_history_keeps(self, env: Env) -> None:
        feeds = env.feeds()
        env.graph.add("bob", "alice")
        env.graph.add("bob", "carol")
        for n in range(4):
            feeds.add_activity(Activity("alice", "post", f"a{n}", time=at(n)))
            feeds.add_activity(Activity("carol", "post", f"c{n}", time=at(n + 0.5)))
        env.graph.remove("bob", "carol")
        assert feeds.unfollow("bob", "carol", keep_history=True) == 0
        assert feeds.count("home", "bob") == 8
        assert feeds.unfollow("bob", "carol", feeds=["home"]) == 4
        assert objects(feeds.read("home", "bob").activities) == ["a3", "a2", "a1", "a0"]
        assert feeds.count("digest", "bob") == 8  # not named: untouched
        # An activity of carol's that reached bob another way (it is no
        # longer on carol's feed) goes too: the follower's feed is read.
        feeds.timeline("home").add_many("bob", [Activity("carol", "x", time=at(9)).item()])
        assert feeds.unfollow("bob", "carol", feeds=["home"]) == 1
        assert feeds.count("home", "bob") == 4
        # A post after the unfollow does not reach bob.
        feeds.add_activity(Activity("carol", "post", "c9", time=at(10)))
        assert feeds.count("home", "bob") == 4

    @pytest.mark.parametrize("copy_limit", [0, 3])
    def test_unfollow_keeps_other_authors_items(self, env: Env, copy_limit: int) -> None:
        # Issue 19, defect 6: tombstones hold slots, so an unfollow that
        # tombstoned every post of alice's (10, newer than carol's) pushed
        # carol's 5 posts off bob's home of capacity 10.
        feeds = env.feeds(max_items=10)
        env.graph.add("bob", "carol")
        for n in range(5):
            feeds.add_activity(Activity("carol", "post", f"c{n}", time=at(n)))
        for n in range(10):
            feeds.add_activity(Activity("alice", "post", f"a{n}", time=at(10 + n)))
        env.graph.add("bob", "alice")
        assert feeds.follow("bob", "alice", copy_limit=copy_limit, feeds=["home"]) == copy_limit
        env.graph.remove("bob", "alice")
        assert feeds.unfollow("bob", "alice", feeds=["home"]) == copy_limit
        carol = ["c4", "c3", "c2", "c1", "c0"]
        assert objects(feeds.read("home", "bob").activities) == carol
        # Following again copies what the unfollow did not remove.
        env.graph.add("bob", "alice")
        feeds.follow("bob", "alice", copy_limit=2, feeds=["home"])
        expected = ["a9", "a8"] if copy_limit < 2 else []
        assert objects(feeds.read("home", "bob").activities) == expected + carol

    def test_a_large_payload_is_stored_once_and_referenced(self, env: Env) -> None:
        feeds, other = env.feeds(), env.feeds()
        for n in range(20):
            env.graph.add(f"f{n}", "alice")
        big = {"text": "x" * 200_000, "tags": ["a", "b"]}
        post = Activity("alice", "post", "p1", time=at(1), extra=big)
        small = Activity("alice", "post", "p0", time=at(0), extra={"text": "hi"})
        feeds.add_activity(small)
        assert feeds.add_activity(post) == 41  # alice, and home and digest of 20
        assert feeds.add_activity(post) == 41  # a retry writes no second copy
        (stored,) = feeds.connection.fetch(feeds.payload_bucket, post.id).siblings
        assert len(stored) < 200_100
        assert feeds.connection.fetch(feeds.payload_bucket, small.id).siblings == []
        for owner, feed in [("alice", "user"), ("f0", "home"), ("f19", "digest")]:
            values = feeds.connection.fetch(feeds.group(feed).bucket, owner).siblings
            assert sum(map(len, values)) < 1000, (owner, feed)  # references
            assert other.read(feed, owner).activities == [post, small]
        (group, _) = other.aggregated("digest", "f3").groups
        assert group.activities == [post]
        env.graph.add("bob", "alice")
        other.follow("bob", "alice", copy_limit=1)
        assert other.read("home", "bob").activities == [post]
        # Removed: the payload goes first, so even a feed whose tombstone
        # has not landed yet shows nothing; a late re-add brings nothing back.
        feeds.connection.store(feeds.group("home").bucket, "late",
                               feeds.connection.fetch(feeds.group("home").bucket,
                                                      "f0").siblings[0])
        other.remove_activity(post)
        assert feeds.read("home", "late").activities == [small]
        assert feeds.connection.fetch(feeds.payload_bucket, post.id).siblings == [b"TKP\x00"]
        feeds.add_activity(post)
        assert feeds.read("user", "alice").activities == [small]
        assert feeds.read("home", "late").activities == [small]
        assert feeds.connection.fetch(feeds.payload_bucket, post.id).siblings == [b"TKP\x00"]

    def test_a_missing_or_damaged_payload_is_an_error_or_skipped(self, env: Env) -> None:
        feeds = env.feeds()
        env.graph.add("bob", "alice")
        posts = [Activity("alice", "post", f"p{n}", time=at(n), extra={"text": "y" * 5000})
                 for n in range(3)]
        for post in posts:
            feeds.add_activity(post)
        backend, bucket = feeds.connection, feeds.payload_bucket
        backend.delete(bucket, posts[2].id)  # behind timak's back
        (good,) = backend.fetch(bucket, posts[1].id).siblings
        backend.delete(bucket, posts[1].id)
        backend.store(bucket, posts[1].id, good[:-1] + b"z")
        for _ in range(2):  # nothing is deleted by a failed read
            with pytest.raises(CorruptValueError, match="payload"):
                feeds.read("home", "bob")
            with pytest.raises(CorruptValueError, match="payload"):
                feeds.aggregated("digest", "bob", limit=5)
            assert feeds.read("home", "bob", skip_corrupt=True).activities == [posts[0]]
            page = feeds.aggregated("digest", "bob", skip_corrupt=True)
            assert [g.activities for g in page.groups] == [[], [], [posts[0]]]
            assert [g.total for g in page.groups] == [1, 1, 1]  # the feed as stored
        assert feeds.count("home", "bob") == 3
        backend.store(bucket, posts[2].id, backend.fetch(bucket, posts[0].id).siblings[0])
        with pytest.raises(CorruptValueError, match="not among the stored versions"):
            feeds.read("home", "bob", limit=1)

    def test_a_post_racing_an_unfollow_is_not_left_behind(self, env: Env) -> None:
        poster, unfollower = env.feeds(), env.feeds()
        env.graph.add("bob", "alice")
        raced = []

        def followers(actor: object) -> list[str]:
            # The post asked for followers (bob still among them); before its
            # fan-out lands, bob unfollows on another server.
            found = env.graph.followers(actor)
            env.graph.remove("bob", "alice")
            raced.append(unfollower.unfollow("bob", "alice"))
            return found

        poster.followers = followers
        poster.add_activity(Activity("alice", "post", "p1", time=at(1)))
        assert raced == [2]  # home and digest: the unfollow saw the post on alice's feed
        assert poster.read("home", "bob").activities == []
        assert poster.aggregated("digest", "bob").groups == []

    def test_a_post_racing_a_follow_is_not_lost(self, env: Env) -> None:
        poster, follower = env.feeds(), env.feeds()

        def followers(actor: object) -> list[str]:
            # The post asked for followers before bob's follow was recorded.
            found = env.graph.followers(actor)
            env.graph.add("bob", "alice")
            follower.follow("bob", "alice", copy_limit=10)
            return found

        poster.followers = followers
        poster.add_activity(Activity("alice", "post", "p1", time=at(1)))
        assert objects(poster.read("home", "bob").activities) == ["p1"]

    def test_aggregated_groups_by_verb_object_day(self, env: Env) -> None:
        feeds = env.feeds()
        env.graph.edges = {actor: {"zoe"} for actor in ("a", "b", "c")}
        likes = [("a", 0), ("b", 1), ("a", 2), ("c", 3)]
        for actor, minute in likes:
            feeds.add_activity(Activity(actor, "like", "photo:1", time=at(minute)))
        feeds.add_activity(Activity("a", "like", "photo:2", time=at(4)))
        feeds.add_activity(Activity("b", "like", "photo:1", time=at(60 * 24)))  # next day
        page = feeds.aggregated("digest", "zoe")
        assert [g.id for g in page.groups] == [
            "like|photo:1|2024-05-02", "like|photo:2|2024-05-01", "like|photo:1|2024-05-01",
        ]
        photo1 = page.groups[2]
        assert (photo1.total, photo1.actor_count, photo1.actors) == (4, 3, ["c", "a", "b"])
        assert [a.time for a in photo1.activities] == sorted(
            (a.time for a in photo1.activities), reverse=True)
        assert photo1.seen is None and page.unseen is None
        assert feeds.count("digest", "zoe") == 6

    def test_aggregated_pages_are_stable(self, env: Env) -> None:
        feeds = env.feeds()
        env.graph.add("zoe", "a")
        for n in range(7):
            feeds.add_activity(Activity("a", "like", f"o{n}", time=at(n)))
        first = feeds.aggregated("digest", "zoe", limit=3)
        assert [g.id.split("|")[1] for g in first.groups] == ["o6", "o5", "o4"]
        # New activities arrive on top between pages: later pages do not shift.
        feeds.add_activity(Activity("a", "like", "o9", time=at(9)))
        feeds.add_activity(Activity("b", "like", "o5", time=at(10)))
        second = feeds.aggregated("digest", "zoe", limit=3, cursor=first.cursor)
        assert [g.id.split("|")[1] for g in second.groups] == ["o3", "o2", "o1"]
        third = feeds.aggregated("digest", "zoe", limit=3, cursor=second.cursor)
        assert [g.id.split("|")[1] for g in third.groups] == ["o0"]
        assert third.cursor is None
        with pytest.raises(InvalidCursorError):
            feeds.aggregated("digest", "zoe", cursor=feeds.read("home", "zoe", 1).cursor)

    def test_flat_pages_are_stable_and_skip_tombstones(self, env: Env) -> None:
        feeds = env.feeds()
        posts = [Activity("a", "post", f"p{n}", time=at(n)) for n in range(6)]
        for post in posts:
            feeds.add_activity(post)
        feeds.remove_activity(posts[4])
        first = feeds.read("user", "a", limit=2)
        assert objects(first.activities) == ["p5", "p3"]  # no short page
        feeds.add_activity(Activity("a", "post", "p9", time=at(9)))
        second = feeds.read("user", "a", limit=2, cursor=first.cursor)
        assert objects(second.activities) == ["p2", "p1"]
        last = feeds.read("user", "a", limit=2, cursor=second.cursor)
        assert (objects(last.activities), last.cursor) == (["p0"], None)

    def test_notifications_seen_read_and_counts(self, env: Env) -> None:
        feeds = env.feeds()
        note = [("notification", "zoe")]
        for actor, minute in [("a", 0), ("b", 1)]:
            feeds.add_activity(Activity(actor, "like", "photo:1", time=at(minute)), to=note)
        feeds.add_activity(Activity("c", "comment", "photo:1", time=at(2)), to=note)
        page = feeds.notifications("zoe")
        assert (page.unseen, page.unread) == (2, 2)
        assert [(g.verb, g.actor_count, g.seen, g.read) for g in page.groups] == [
            ("comment", 1, False, False), ("like", 2, False, False)]
        assert feeds.mark_seen("zoe") == 1
        assert (feeds.unseen_count("zoe"), feeds.unread_count("zoe")) == (0, 2)
        like = page.groups[1].id
        assert feeds.mark_read("zoe", [like]) == 1
        assert feeds.unread_count("zoe") == 1
        # Another like joins the group: it is unseen and unread again.
        feeds.add_activity(Activity("d", "like", "photo:1", time=at(3)), to=note)
        page = feeds.notifications("zoe")
        assert [(g.verb, g.actor_count, g.seen, g.read) for g in page.groups] == [
            ("like", 3, False, False), ("comment", 1, True, False)]
        assert feeds.mark_read("zoe") == 1
        assert (feeds.unseen_count("zoe"), feeds.unread_count("zoe")) == (0, 0)
        assert feeds.mark_seen("nobody") == 0 and feeds.mark_read("nobody") == 0

    def test_two_devices_marking_at_once_converge(self, env: Env) -> None:
        phone, laptop = env.feeds(), env.feeds()
        note = [("notification", "zoe")]
        for n, verb in enumerate(["like", "comment", "share"]):
            phone.add_activity(Activity("a", verb, "photo:1", time=at(n)), to=note)
        ids = [g.id for g in phone.notifications("zoe").groups]
        # Both devices mark blind; neither sees the other's write first.
        laptop.mark_read("zoe", [ids[2]])
        phone.mark_read("zoe", [ids[0]])
        laptop.mark_seen("zoe")
        for device in (phone, laptop):
            page = device.notifications("zoe")
            assert [(g.seen, g.read) for g in page.groups] == [
                (True, True), (True, False), (True, True)]
            assert (page.unseen, page.unread) == (0, 1)
