"""Activity feed benchmarks, each beside its floor, interleaved in one run.

    python benchmarks/activity.py [--backend memory sqlite] [--samples 40] [--json FILE]

Scenarios (feeds full at 1,000 activities, the steady state):

* ``follow``: ``Feeds.follow(copy_limit=100)`` of an actor with 1,000
  activities, by a new follower each time;
* ``unfollow``: ``Feeds.unfollow`` of an actor whose 100 activities sit in a
  home feed of 1,000 (re-followed, untimed, before each sample);
* ``aggregated``: the newest page (10 groups) of a 1,000-activity aggregated
  feed;
* ``notification``: the newest page (10 groups, with seen/read and counts)
  of a 1,000-activity notification feed with marks.

The floor of each is a plain ``Timeline.page(key, limit=50)`` of the key the
scenario reads (the target's feed for follow, the follower's home for
unfollow, the feed itself for the pages): what reading that value costs
without the activity layer. Samples alternate scenario and floor; the
report gives medians, p99 (nearest rank) and the ratio of medians. Standalone
for now: ``timak bench`` will run it once wired in.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from timak import Timeline
from timak.activity import Activity, FeedGroup, Feeds
from timak.backends import connect

SIZE = 1000
T0 = 1_714_564_800_000_000  # 2024-05-01 12:00 UTC, µs
MINUTE = 60_000_000


@dataclass
class Result:
    backend: str
    name: str
    floor_name: str
    samples: int
    p50_ms: float
    p99_ms: float
    floor_p50_ms: float
    floor_p99_ms: float
    ratio: float


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, -(-99 * len(ordered) // 100) - 1)]


def measure(
    backend: str, name: str, floor_name: str, samples: int,
    case: Callable[[int], object], floor: Callable[[int], object],
    before: Callable[[int], object] = lambda i: None,
) -> Result:
    mine: list[float] = []
    theirs: list[float] = []
    for i in range(-2, samples):  # two warm-up rounds
        before(i)
        start = time.perf_counter_ns()
        case(i)
        took = time.perf_counter_ns() - start
        start = time.perf_counter_ns()
        floor(i)
        floor_took = time.perf_counter_ns() - start
        if i >= 0:
            mine.append(took / 1e6)
            theirs.append(floor_took / 1e6)
    p50, floor_p50 = statistics.median(mine), statistics.median(theirs)
    return Result(backend, name, floor_name, samples, round(p50, 3), round(p99(mine), 3),
                  round(floor_p50, 3), round(p99(theirs), 3), round(p50 / floor_p50, 2))


def build(url: str) -> Feeds:
    graph: dict[str, list[str]] = {}
    feeds = Feeds(connect(url), followers=lambda a: graph.get(str(a), []), groups=[
        FeedGroup("user", max_items=SIZE),
        FeedGroup("home", max_items=SIZE, follows="user"),
        FeedGroup("digest", "aggregated", max_items=SIZE),
        FeedGroup("notification", "notification", max_items=SIZE),
    ])
    user, home = feeds.timeline("user"), feeds.timeline("home")
    # The target: 1,000 posts. The reader's home: 900 others' posts and
    # the target's newest 100, interleaved in time.
    user.add_many("target", [
        Activity("target", "post", f"t{n}", time=T0 + n * MINUTE).item() for n in range(SIZE)
    ])
    home.add_many("reader", [
        Activity(f"o{n % 50}", "post", f"o{n}", time=T0 + n * MINUTE + 1).item()
        for n in range(SIZE - 100)
    ])
    # 1,000 likes and comments by 100 actors on 60 photos over 3 days.
    likes = [
        Activity(f"u{n % 100}", "like" if n % 4 else "comment", f"photo:{n % 60}",
                 time=T0 + n * 4 * MINUTE).item()
        for n in range(SIZE)
    ]
    feeds.timeline("digest").add_many("reader", likes)
    feeds.timeline("notification").add_many("reader", likes)
    feeds.mark_seen("reader")
    groups = [g.id for g in feeds.notifications("reader", 30).groups]
    feeds.mark_read("reader", groups[5:25])
    for name in ("user", "home", "digest", "notification"):
        feeds.timeline(name).fold("target" if name == "user" else "reader")
    return feeds


def run(backend: str, url: str, samples: int) -> list[Result]:
    feeds = build(url)
    user, home = feeds.timeline("user"), feeds.timeline("home")
    digest, note = feeds.timeline("digest"), feeds.timeline("notification")

    def floor_of(tl: Timeline, key: str) -> Callable[[int], object]:
        return lambda i: tl.page(key, limit=50)

    results = [
        measure(backend, "follow copy_limit=100", "Timeline.page of the target", samples,
                lambda i: feeds.follow(f"new{i}", "target", copy_limit=100, feeds=["home"]),
                floor_of(user, "target")),
        measure(backend, "unfollow (100 of 1,000 items)", "Timeline.page of the home",
                samples,
                lambda i: feeds.unfollow("reader", "target", feeds=["home"]),
                floor_of(home, "reader"),
                before=lambda i: (home.add_many("reader", [
                    Activity("target", "post", f"t{n}", time=T0 + n * MINUTE).item()
                    for n in range(SIZE - 100, SIZE)
                ], deleted=False), home.fold("reader"))),
        measure(backend, "aggregated newest page (1,000)", "Timeline.page of the feed",
                samples, lambda i: feeds.aggregated("digest", "reader", 10),
                floor_of(digest, "reader")),
        measure(backend, "notification newest page (1,000)", "Timeline.page of the feed",
                samples, lambda i: feeds.notifications("reader", 10),
                floor_of(note, "reader")),
    ]
    feeds.connection.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", nargs="+", default=["memory", "sqlite"],
                        choices=["memory", "sqlite"], help="stores to measure")
    parser.add_argument("--samples", type=int, default=40, help="samples per scenario")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backend:
            url = "memory://" if backend == "memory" else f"sqlite:///{tmp}/bench.db"
            results += run(backend, url, args.samples)
    print(f"{'backend':8} {'scenario':34} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'floor p50':>9} {'floor p99':>9} {'ratio':>6}  floor")
    for r in results:
        print(f"{r.backend:8} {r.name:34} {r.p50_ms:8.3f} {r.p99_ms:8.3f} "
              f"{r.floor_p50_ms:9.3f} {r.floor_p99_ms:9.3f} {r.ratio:6.2f}  {r.floor_name}")
    if args.json:
        args.json.write_text(json.dumps({"results": [asdict(r) for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
