"""The activity-feed scenarios (issue 14), each beside its floor.

==================  ==========================================  ==========================
scenario            subject (``timak.activity.Feeds``)          floor
==================  ==========================================  ==========================
``follow``          ``follow(copy_limit=100)`` of an actor      fetch + plain decode of
                    whose feed is full, by a new follower       the actor's feed
``unfollow``        ``unfollow`` of an actor whose 100 newest   fetch + plain decode of
                    activities sit in a full home feed          both feeds
``read``            the newest page (25 activities) of a full   fetch + plain decode of
                    flat (home) feed: ``Feeds.read``            the feed
``page``            ``Timeline.page(limit=25)`` of the same     fetch + plain decode of
                    stored home feed: the reference ``read``    the feed
                    is held to (at most 1.5x)
``aggregated``      the newest page (10 groups) of a full       fetch + plain decode of
                    aggregated feed                             the feed
``notification``    the newest page (10 groups, seen/read       fetch + plain decode of
                    state and counts) of a full notification    the feed and the marks
                    feed with marks
==================  ==========================================  ==========================

The floor of each is the bare ``fetch`` and a plain msgpack decode
(``floors.plain_decode_all``) of every value the scenario reads (both feeds
for ``unfollow``; the feed and the reader's marks for ``notification``): no
timak code, as for every floor. There is no Redis peer: Redis has no such
operation, and Stream-Framework (the peer that has) is not run here
(docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..activity import Activity, FeedGroup, Feeds
from ..backends import Backend
from ..backends.base import scan_keys
from ..value import ItemId, Score
from .floors import plain_decode_all
from .harness import Op
from .names import ACTIVITY_SCENARIOS

__all__ = ["ACTIVITY_SCENARIOS", "prepared_sides"]

_T0 = 1_714_564_800_000_000  # 2024-05-01 12:00 UTC, µs
_MINUTE = 60_000_000
_COPY = 100
_PAGE = 25


def _groups(size: int) -> list[FeedGroup]:
    return [
        FeedGroup("user", max_items=size, bucket="timak_bench.user"),
        FeedGroup("home", max_items=size, follows="user", bucket="timak_bench.home"),
        FeedGroup("digest", "aggregated", max_items=size, bucket="timak_bench.digest"),
        FeedGroup("notification", "notification", max_items=size,
                  bucket="timak_bench.notification"),
    ]


def _posts(actor: str, first: int, last: int) -> list[tuple[ItemId, Score, Any]]:
    return [
        Activity(actor, "post", f"{actor}:{n}", time=_T0 + n * _MINUTE).item()
        for n in range(first, last)
    ]


def build(backend: Backend, size: int) -> Feeds:
    """Full feeds of ``size`` activities: the target's own feed, a reader's
    home holding the target's newest ``_COPY`` among others' posts, and an
    aggregated and a notification feed of likes and comments (with marks)."""
    feeds = Feeds(backend, followers=lambda actor: [], groups=_groups(size))
    feeds.timeline("user").add_many("target", _posts("target", 0, size))
    home = feeds.timeline("home")
    home.add_many("reader", [
        Activity(f"o{n % 50}", "post", f"o{n}", time=_T0 + n * _MINUTE + 1).item()
        for n in range(size - _COPY)
    ])
    home.add_many("reader", _posts("target", size - _COPY, size))
    likes = [
        Activity(f"u{n % 100}", "like" if n % 4 else "comment", f"photo:{n % 60}",
                 time=_T0 + n * 4 * _MINUTE).item()
        for n in range(size)
    ]
    feeds.timeline("digest").add_many("reader", likes)
    feeds.timeline("notification").add_many("reader", likes)
    feeds.mark_seen("reader")
    groups = [g.id for g in feeds.notifications("reader", 30).groups]
    feeds.mark_read("reader", groups[5:25])
    for name in ("user", "home", "digest", "notification"):
        feeds.timeline(name).fold("target" if name == "user" else "reader")
    return feeds


def prepared_sides(
    scenario: str, backend: Backend, size: int
) -> tuple[Op, Op, Callable[[], None]]:
    """The subject and floor of one scenario on full feeds, and the cleanup."""
    feeds = build(backend, size)
    home = feeds.timeline("home")
    groups = {g.name: g for g in _groups(size)}
    followers = iter(range(10**9))

    def read(*where: tuple[str, str]) -> Op:
        """The floor: the bare fetch and a plain msgpack decode of the values
        the scenario reads, no timak code."""
        return Op(lambda: [plain_decode_all(backend.fetch(bucket, key).siblings)
                           for bucket, key in where])

    subject: Op
    if scenario == "follow":
        subject = Op(lambda: feeds.follow(f"new{next(followers)}", "target",
                                          copy_limit=_COPY, feeds=["home"]))
        floor = read((groups["user"].bucket, "target"))
    elif scenario == "unfollow":
        def refollow() -> None:  # untimed: put the target's posts back
            home.add_many("reader", _posts("target", size - _COPY, size))
            home.fold("reader")

        subject = Op(lambda: feeds.unfollow("reader", "target", feeds=["home"]), refollow)
        floor = read((groups["home"].bucket, "reader"), (groups["user"].bucket, "target"))
    elif scenario == "read":
        subject = Op(lambda: feeds.read("home", "reader", _PAGE))
        floor = read((groups["home"].bucket, "reader"))
    elif scenario == "page":
        # The Timeline Feeds.read itself reads through: the same settings.
        subject = Op(lambda: home.page("reader", _PAGE))
        floor = read((groups["home"].bucket, "reader"))
    elif scenario == "aggregated":
        subject = Op(lambda: feeds.aggregated("digest", "reader", 10))
        floor = read((groups["digest"].bucket, "reader"))
    else:
        note = groups["notification"]
        subject = Op(lambda: feeds.notifications("reader", 10))
        floor = read((note.bucket, "reader"), (note.state_bucket, "reader"))

    def cleanup() -> None:
        for group in _groups(size):
            for bucket in (group.bucket, group.state_bucket):
                for key in list(scan_keys(backend, bucket, "the benchmark's cleanup")):
                    backend.delete(bucket, key)

    return subject, floor, cleanup
