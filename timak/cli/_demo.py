"""``timak demo``: a small social network, fanned out by concurrent writers.

Users follow each other; several writer processes post at once, each post
fanned out to the author's followers' home timelines with blind writes (no
read, no coordination), and kept on the author's own timeline with a
read-modify-write ``add``. Then every timeline is read back, which merges
the siblings the writers left, and compared with what a single writer doing
everything in order would have produced: nothing may be lost.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from queue import Empty
from typing import Any

from ..backends import connect, redact_url, split_url
from ..errors import ConfigError
from ..timelines import Timeline
from . import store_url
from ._basic import positive_int
from ._progress import Progress

__all__ = ["Network", "register", "run_demo"]

_BASE_US = 1_700_000_000_000_000  # 2023-11-14, so scores read as real datetimes


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="fan posts out to followers with concurrent writers, then check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=positive_int, default=300,
                        help="users in the network (default: 300)")
    parser.add_argument("--follows", type=positive_int, default=30,
                        help="users each user follows (default: 30)")
    parser.add_argument("--posts", type=positive_int, default=8,
                        help="posts per user (default: 8)")
    parser.add_argument("--writers", type=positive_int, default=4,
                        help="writer processes (default: 4)")
    parser.add_argument("--max-items", type=positive_int, default=100,
                        help="timeline capacity (default: 100)")
    parser.add_argument("--seed", type=int, default=2011,
                        help="random seed of the network (default: 2011)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the demo data (default: remove it)"
    )
    parser.set_defaults(func=_demo)


@dataclass(frozen=True)
class Network:
    """Who follows whom, and every post, derived from a seed."""

    users: int
    followers: dict[int, list[int]]
    posts: list[tuple[int, str, int]]  # (author, post id, score)

    @classmethod
    def make(cls, users: int, follows: int, posts: int, seed: int) -> Network:
        rng = random.Random(seed)
        followers: dict[int, list[int]] = {u: [] for u in range(users)}
        for user in range(users):
            others = [u for u in range(users) if u != user]
            for followee in rng.sample(others, min(follows, len(others))):
                followers[followee].append(user)
        made = [
            (author, f"{author}:{n}", _BASE_US + rng.randrange(86_400_000_000))
            for author in range(users)
            for n in range(posts)
        ]
        rng.shuffle(made)
        return cls(users, followers, made)

    def expected_home(self, user: int, max_items: int) -> list[str]:
        """The home timeline of ``user`` as one writer doing all posts in order
        would leave it: the newest ``max_items`` posts of its followees."""
        mine = [(score, pid) for author, pid, score in self.posts if user in self.followers[author]]
        return [pid for _, pid in sorted(mine, reverse=True)[:max_items]]

    def expected_own(self, user: int, max_items: int) -> list[str]:
        mine = [(score, pid) for author, pid, score in self.posts if author == user]
        return [pid for _, pid in sorted(mine, reverse=True)[:max_items]]


def _writer(url: str, bucket: str, net: Network, writer: int, writers: int,
            max_items: int, progress: Any) -> None:
    tl = Timeline(connection=url, bucket=bucket, max_items=max_items)
    done = mine = 0
    for n, (author, pid, score) in enumerate(net.posts):
        if n % writers != writer:
            continue
        mine += 1
        data = {"author": f"user{author}", "text": f"post {pid} by user{author}"}
        homes = [f"home:{f}" for f in net.followers[author]]
        done += tl.fanout(homes, pid, score, data)  # blind: one write per key, no read
        tl.add(f"posts:{author}", pid, score, data)  # read-modify-write
        done += 1
        if mine % 16 == 0:  # this writer's own count: every writer reports
            progress.put(done)
            done = 0
    progress.put(done)
    progress.put(None)
    tl.close()


def run_demo(url: str, bucket: str, net: Network, writers: int, max_items: int,
             out: Any = sys.stdout) -> bool:
    """Write ``net`` with ``writers`` processes, read it back, check it. True if
    every timeline matches the expected result."""
    total = sum(len(net.followers[a]) + 1 for a, _, _ in net.posts)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(url, bucket, net, w, writers, max_items, queue))
        for w in range(writers)
    ]
    progress = Progress("timeline writes", total)
    started = time.monotonic()
    for p in procs:
        p.start()
    finished, written = 0, 0
    while finished < writers:
        try:
            got = queue.get(timeout=0.5)
        except Empty:
            # A writer that died never says it finished: stop waiting for it.
            if any(p.exitcode not in (None, 0) for p in procs):
                break
            continue
        if got is None:
            finished += 1
        else:
            written += got
            progress.update(written)
    for p in procs:
        p.join(timeout=60 if finished == writers else 0)
        if p.is_alive():
            p.terminate()
            p.join()
    progress.finish()
    write_s = time.monotonic() - started
    if any(p.exitcode != 0 for p in procs):
        print("a writer process failed; see its traceback above", file=out)
        return False

    backend = connect(url)
    tl = Timeline(connection=backend, bucket=bucket, max_items=max_items)
    homes = [f"home:{u}" for u in range(net.users)]
    before = [len(backend.fetch(bucket, key).siblings) for key in homes]
    started = time.monotonic()
    mismatched = [
        u for u in range(net.users)
        if tl.get(f"home:{u}") != _as_data(net, net.expected_home(u, max_items))
    ]
    merged = tl.stats.siblings_merged  # home timelines only, counted before own ones
    mismatched += [
        u for u in range(net.users)
        if tl.get(f"posts:{u}") != _as_data(net, net.expected_own(u, max_items))
    ]
    read_s = time.monotonic() - started
    after = sum(len(backend.fetch(bucket, key).siblings) for key in homes)
    sample = tl.get("home:0")[:5]
    print(f"users {net.users}, posts {len(net.posts)}, writer processes {writers}", file=out)
    print(f"items written   {written} ({written / write_s:,.0f}/s over {write_s:.1f} s)",
          file=out)
    several = [n for n in before if n > 1]
    print(f"siblings found  {sum(before)} on {net.users} home timelines "
          f"({sum(several)} on the {len(several)} that held more than one)", file=out)
    print(f"siblings merged {merged} by read repair: all siblings of the keys that held "
          "more than one\n"
          f"                (a key with one sibling needs no merge); {after} left after", file=out)
    print(f"timelines read  {2 * net.users} ({2 * net.users / read_s:,.0f}/s)", file=out)
    print("home:0, newest first:", file=out)
    for item in sample:
        print(f"  {item['text']}", file=out)
    tl.close()
    if mismatched:
        print(f"FAILED: {len(mismatched)} users' timelines differ from the expected "
              f"result (first: user{mismatched[0]})", file=out)
        return False
    print(f"check: all {2 * net.users} timelines equal the single-writer result; "
          "nothing lost", file=out)
    return True


def _as_data(net: Network, pids: list[str]) -> list[dict[str, str]]:
    out = []
    for pid in pids:
        author = pid.split(":")[0]
        out.append({"author": f"user{author}", "text": f"post {pid} by user{author}"})
    return out


def _demo(args: argparse.Namespace) -> int:
    explicit = args.url or os.environ.get("TIMAK_URL")
    tmpdir = None
    if explicit:
        url = store_url(args)
        _refuse_per_process(url)
    else:
        # The embedded default, in a fresh file so runs never mix.
        tmpdir = tempfile.mkdtemp(prefix="timak-demo-")
        url = f"sqlite:///{tmpdir}/demo.db"
    bucket = f"demo-{uuid.uuid4().hex[:8]}"
    print(f"store {redact_url(url)}, bucket {bucket}", file=sys.stderr)
    net = Network.make(args.users, args.follows, args.posts, args.seed)
    Timeline(connection=url, bucket=bucket).close()  # create schema/keyspace up front
    try:
        ok = run_demo(url, bucket, net, args.writers, args.max_items)
    finally:
        if not args.keep:
            _cleanup(url, bucket, net, tmpdir)
    return 0 if ok else 1


def _refuse_per_process(url: str) -> None:
    """The writers are processes: a store private to one process would give
    each its own, and the check would report every timeline as lost."""
    if url.startswith("memory:") or split_url(url).path == "/:memory:":
        raise ConfigError(
            f"timak demo runs its writers as processes, and {redact_url(url)} is private "
            "to one process: leave out --url (a temporary SQLite file) or use "
            "sqlite:///FILE or a server URL"
        )


def _cleanup(url: str, bucket: str, net: Network, tmpdir: str | None) -> None:
    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)
        return
    backend = connect(url)
    for u in range(net.users):
        backend.delete(bucket, f"home:{u}")
        backend.delete(bucket, f"posts:{u}")
    backend.close()
