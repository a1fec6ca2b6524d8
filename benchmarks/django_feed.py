#!/usr/bin/env python3
"""Django home feed: a post to ~200 followers, and one follower's home page.

    python benchmarks/django_feed.py [--followers 200] [--others 20 0]
        [--seconds 8] [--fold-at N] [--row-floor] [--profile] [--json FILE]
        [--quick]

Real Django on a SQLite file (WAL, ``synchronous=NORMAL``), one author
followed by ``--followers`` users (django-activity-stream's ``Follow`` rows:
the one follow graph both sides read), each of whom also follows 3 of
``--others`` other authors (one world per number given, one after the
other in one process, each with its own users). The untimed ``--prefill`` posts (by the author,
and each by a random other author too) leave the followers' home feeds at
different points of their fold cycle, as followers of many people are;
with ``--others 0`` every home feed folds on the same post (one post in 15
folds all 200: the worst case for p99). Three post models with the same
fields (``benchmarks/djfeed/models.py``), timed interleaved by timak's own
harness (``timak._bench.harness.measure``: rounds rotating who goes first,
p50 and p99 of one call):

* post, subject: ``TimakPost.objects.create`` in ``transaction.atomic()``:
  ``register_activities`` builds and checks the activity in ``post_save``,
  and at the commit ``Feeds.add_activity`` writes it to the author's feed
  and every follower's home feed (blind writes) on timak's SQLite backend
  (another file, WAL, ``synchronous=NORMAL``);
* post, peer: ``ActPost.objects.create`` in ``atomic()``, with a
  ``post_save`` receiver calling django-activity-stream's
  ``action.send(author, verb="posted", action_object=post)``: one more
  INSERT; the feeds are read by query later;
* post, floor: the same storage work without timak's code:
  ``PlainPost.objects.create`` in ``atomic()`` (no receivers), the same
  followers query, and one bare ``sqlite3`` ``executemany`` INSERT, in one
  transaction, of the bytes timak writes for such an activity, into timak's
  table on the same file, one row per follower's home feed plus the
  author's feed and the fan-out mark (timak makes these three writes one
  after the other, each acknowledged: its race rule). ``--row-floor`` adds
  a fourth side, the post row alone (the INSERT without any feed).
* read, subject: ``activity_rows(feeds, "home", follower, TimakPost,
  limit=25)``: the newest 25 of one follower's home feed, as post rows;
* read, peer: ``user_stream(follower)[:25]`` and each action's
  ``action_object`` (the stream prefetches them): 25 post rows;
* read, floor: ``in_bulk`` of the 25 newest post ids: the row fetch
  every side needs.

Before every timed read one post of the same side is made (untimed), so a
reader meets a feed with a new write, as a follower opening the page does,
and timak's reader is a new ``Feeds`` (no decoded value cached). Both
sides first get their ``--prefill`` posts (untimed). ``--profile`` prints
cProfile's top functions of timak's post path.

Speed is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import os
import pstats
import random
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the djfeed app
sys.path.insert(0, str(HERE.parent))  # timak from this checkout


def configure(tmp: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        DATABASES={"default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tmp, "django.db"),
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
        }},
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "actstream",
                        "timak.contrib.django", "djfeed"],
        TIMAK={"URL": f"sqlite:///{os.path.join(tmp, 'timak.db')}", "MAX_ITEMS": 1000},
        ACTSTREAM_SETTINGS={"FETCH_RELATIONS": True},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


class World:
    """The users, the follow graph and the three sides' post and read calls."""

    def __init__(self, followers: int, others: int, fold_at: int | None = None,
                 background: bool = False) -> None:
        from actstream import action, registry
        from actstream.actions import follow
        from actstream.models import Follow
        from django.contrib.auth.models import User
        from django.contrib.contenttypes.models import ContentType
        from django.db.models.signals import post_save
        from djfeed.models import ActPost, PlainPost, TimakPost

        from timak.activity import Activity, Feeds
        from timak.contrib.django import settings_timeline
        from timak.contrib.django.activity import register_activities

        registry.register(User, ActPost)  # idempotent
        tag = f"{others}-{fold_at}-"  # one process may build several worlds
        self.author = User.objects.create(username=f"{tag}author")
        self.followers = [User.objects.create(username=f"{tag}f{i}") for i in range(followers)]
        self.others = [User.objects.create(username=f"{tag}o{i}") for i in range(others)]
        chosen = random.Random(1)
        for user in self.followers:
            follow(user, self.author, send_action=False)
            for other in chosen.sample(self.others, min(3, len(self.others))):
                follow(user, other, send_action=False)
        user_type = ContentType.objects.get_for_model(User)

        def who_follows(actor: Any) -> Any:
            return Follow.objects.filter(content_type=user_type, object_id=str(actor),
                                         flag="").values_list("user_id", flat=True)

        self.who_follows = who_follows
        store = settings_timeline().connection
        options = {} if fold_at is None else {"fold_at": fold_at}
        self.make_feeds: Callable[[], Feeds] = lambda: Feeds(
            store, followers=who_follows, timeline_options=options)
        self.bare = _bare_fanout(store, self.make_feeds())
        self.feeds = self.make_feeds()
        disconnect_timak = register_activities(
            TimakPost, feeds=lambda: self.feeds,
            activity=lambda p: Activity(p.author_id, "post", p.pk, time=p.created_at),
            background=background)

        def sent(sender: Any, instance: ActPost, created: bool = False, **_: Any) -> None:
            if created:
                action.send(instance.author, verb="posted", action_object=instance)

        post_save.connect(sent, sender=ActPost, weak=False)

        def close() -> None:  # the next world registers its own
            disconnect_timak()
            post_save.disconnect(sent, sender=ActPost)

        self.close = close
        self.models = {"timak": TimakPost, "actstream": ActPost, "plain": PlainPost}
        self.count = 0

    def post(self, side: str, author: Any = None) -> None:
        from django.db import transaction

        self.count += 1
        with transaction.atomic():
            self.models[side].objects.create(author=author or self.author,
                                             text=f"post {self.count}")

    def post_floor(self) -> None:
        """The post's floor: the row, the followers query and one bare
        executemany of the bytes timak writes (see the module doc)."""
        from django.db import transaction

        self.count += 1
        with transaction.atomic():
            post = self.models["plain"].objects.create(author=self.author,
                                                       text=f"post {self.count}")
        owners = [str(f) for f in self.who_follows(post.author_id)]
        self.bare(str(post.author_id), owners)

    def read_timak(self) -> list[Any]:
        from djfeed.models import TimakPost

        from timak.contrib.django.activity import activity_rows

        follower = self.followers[0].pk
        return activity_rows(lambda: self.feeds, "home", follower, TimakPost, limit=25).rows

    def read_actstream(self) -> list[Any]:
        from actstream.models import user_stream

        return [a.action_object for a in user_stream(self.followers[0])[:25]]

    def read_plain(self) -> list[Any]:
        from djfeed.models import PlainPost

        ids = list(PlainPost.objects.order_by("-pk").values_list("pk", flat=True)[:25])
        return list(PlainPost.objects.in_bulk(ids).values())


def _bare_fanout(store: Any, feeds: Any) -> Callable[[str, list[str]], None]:
    """A bare-``sqlite3`` fan-out of the bytes timak writes for one post
    activity: made once here (with timak, untimed), then written by the
    returned function with ``sqlite3`` alone."""
    import sqlite3

    from timak.activity import Activity
    from timak.backends.memory import MemoryBackend

    scratch = MemoryBackend()
    made = Activity(1, "post", 1, time=datetime.datetime.now(datetime.timezone.utc))
    sample = type(feeds)(scratch, followers=lambda actor: ["2"])
    sample.add_activity(made)
    home, user = feeds.group("home").bucket, feeds.group("user").bucket
    (blind,) = scratch.fetch(home, "2").siblings
    (mark,) = scratch.fetch(f"{user}.fanned", "1").siblings
    conn = sqlite3.connect(store.path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    sql = "INSERT INTO siblings (bucket, key, value) VALUES (?, ?, ?)"

    def write(author: str, owners: list[str]) -> None:
        rows = [("floor." + user, author, blind), ("floor." + user + ".fanned", author, mark)]
        rows += [("floor." + home, owner, blind) for owner in owners]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")

    return write


def run(args: argparse.Namespace, others: int) -> list[dict[str, Any]]:
    from timak._bench.harness import Op, Plan, Result, Side, measure

    world = World(args.followers, others, args.fold_at, args.background)
    posting = random.Random(2)
    for _ in range(args.prefill):
        other = posting.choice(world.others) if world.others else None
        for side in ("timak", "actstream", "plain"):
            world.post(side)
            if other is not None:
                world.post(side, other)
    from timak.contrib.django import wait_for_background_writes

    wait_for_background_writes()
    for name, read in (("timak", world.read_timak), ("actstream", world.read_actstream),
                       ("plain", world.read_plain)):
        if len(read()) != 25:
            raise AssertionError(f"{name}'s home page is not 25 posts")

    plan = Plan(warmup=2, min_samples=args.samples, max_samples=args.max_samples,
                budget_s=args.seconds, max_s=args.seconds * 4)
    results = []
    idle = wait_for_background_writes if args.background else None
    row_floor = [Op(lambda: world.post("plain"), idle)] if args.row_floor else []
    if args.background:
        def written() -> None:  # the post, and then its feeds written
            world.post("timak")
            wait_for_background_writes()

        row_floor.append(Op(written, wait_for_background_writes))
    # With --background the timed post is the request alone: the worker is
    # idle when it starts (the wait is untimed setup).
    timak_post = Op(lambda: world.post("timak"), idle)
    for case, sides in (
        ("post followers={} others={}", [timak_post,
                               Op(world.post_floor, timak_post.setup),
                               Op(lambda: world.post("actstream"), timak_post.setup),
                               *row_floor]),
        ("home page newest=25 followers={} others={}", [
            Op(world.read_timak, lambda: (world.post("timak"), wait_for_background_writes(),
                                          renew(world))),
            Op(world.read_plain, lambda: world.post("plain")),
            Op(world.read_actstream, lambda: world.post("actstream"))]),
    ):
        if not case.startswith("post"):
            row_floor = []
        name = case.format(args.followers, others)
        print(f"{name} ...", file=sys.stderr, flush=True)
        taken = measure(sides, plan, lambda n, took, name=name: print(
            f"{name}: {n} samples a side, {took:.0f} s", file=sys.stderr, flush=True))
        scenario = case.split()[0]
        floor_name = ("row + bare sqlite3 fan-out" if scenario == "post"
                      else "in_bulk of 25 rows")
        result = Result(
            name=name, scenario=scenario, backend="django+sqlite",
            unit="calls", units=1, subject=Side.of("timak activity feeds", taken[0]),
            floor=Side.of(floor_name, taken[1]),
            peer=Side.of(f"django-activity-stream {_version('django-activity-stream')}",
                         taken[2]),
            params={"followers": args.followers, "prefill": args.prefill,
                    "others": others, "fold_at": args.fold_at},
        )
        document = result.to_json()
        if row_floor and args.row_floor:
            document["row_alone"] = Side.of("INSERT of the row alone", taken[3]).__dict__
        if row_floor and args.background:
            document["background_until_written"] = Side.of(
                "timak, background: post until its feeds are written", taken[-1]).__dict__
        results.append(document)
        print(_line(result), file=sys.stderr, flush=True)
    if args.profile:
        results[0]["profile_top"] = _profile(world, args.profile_posts)
    wait_for_background_writes()
    world.close()
    return results


def renew(world: World) -> None:
    """A new Feeds for the next read: no value it decoded before is cached."""
    world.feeds = world.make_feeds()


def _line(r: Any) -> str:
    assert r.peer is not None
    return (f"{r.name}: timak p50 {r.subject.p50_ms:.2f} ms p99 {r.subject.p99_ms:.2f} | "
            f"floor p50 {r.floor.p50_ms:.2f} p99 {r.floor.p99_ms:.2f} | "
            f"actstream p50 {r.peer.p50_ms:.2f} p99 {r.peer.p99_ms:.2f} | "
            f"x actstream p50 {r.vs_peer:.2f} p99 {r.vs_peer_p99:.2f} | "
            f"x floor p50 {r.vs_floor:.2f} p99 {r.vs_floor_p99:.2f}")


def _profile(world: World, posts: int) -> list[str]:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(posts):
        world.post("timak")
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(30)
    print(out.getvalue(), file=sys.stderr)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    return lines[:60]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _environment(args: argparse.Namespace) -> dict[str, Any]:
    import subprocess

    commit = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/django_feed.py", *sys.argv[1:]]),
        "commit": commit or None,
        "python": sys.version.split()[0],
        "django": _version("django"),
        "django_activity_stream": _version("django-activity-stream"),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "followers": args.followers, "prefill": args.prefill, "others": args.others,
        "fold_at": args.fold_at,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=200)
    parser.add_argument("--prefill", type=int, default=100,
                        help="untimed posts per side first, by the author and by a "
                        "random other author each (default 100)")
    parser.add_argument("--others", type=int, nargs="+", default=[20, 0],
                        help="other authors; each follower follows 3 of them; one world "
                        "per number given (default 20 0; 0: every home feed is in step)")
    parser.add_argument("--samples", type=int, default=100,
                        help="at least this many samples per side (default 100)")
    parser.add_argument("--max-samples", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="time budget per case, once --samples are in (default 8)")
    parser.add_argument("--fold-at", type=int, default=None,
                        help="Feeds(timeline_options={'fold_at': N}) (default: timak's, 16)")
    parser.add_argument("--background", action="store_true",
                        help="register_activities(background=True): time the request "
                             "alone, and the post until its feeds are written")
    parser.add_argument("--row-floor", action="store_true",
                        help="also time the post row alone (no feed at all)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile timak's post path (cProfile, top 30)")
    parser.add_argument("--profile-posts", type=int, default=100)
    parser.add_argument("--quick", action="store_true",
                        help="tiny: 20 followers, 30 prefill, 3 others, 5 samples (a smoke test)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.followers, args.prefill, args.samples, args.seconds = 20, 30, 5, 0.05
        args.others = [3]
        args.profile_posts = 5
    with tempfile.TemporaryDirectory(prefix="timak-django-feed-") as tmp:
        configure(tmp)
        results = [entry for others in args.others for entry in run(args, others)]
        document = {"environment": _environment(args), "results": results}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1)
            out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
