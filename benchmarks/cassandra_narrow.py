"""Cassandra fan-out and repairing reads, timak with and without narrowed
folds, beside Stream-Framework on the same node, interleaved in one run.

    python3 -m venv --system-site-packages /tmp/sfvenv
    /tmp/sfvenv/bin/pip install stream-framework==1.4.0     # the peer
    integration/cassandra start                             # one local node
    PYTHONPATH=. /tmp/sfvenv/bin/python benchmarks/cassandra_narrow.py \\
        --json benchmarks/results-2026-12-06-cassandra-narrow.json

Sides, each timed in rounds that rotate which side goes first:

* ``narrow``: ``Timeline.fanout`` of one item to K full (1,000-item)
  timelines in the fold steady state (key i first took ``i % 16`` blind
  writes, as ``timak bench`` staggers them), on a ``CassandraBackend``: its
  folds are partial (the small siblings into one delta, the base untouched).
* ``full``: the same on a second backend whose ``capabilities`` hide
  ``narrow``: every fold fetches and rewrites the whole value, as before.
* ``stream_framework``: Stream-Framework 1.4.0's ``CassandraFeed``
  (``max_length=1000``, its defaults otherwise: ``trim_chance=0.01``, one
  batch interface per 100 followers as its ``fanout_chunk_size``) fanning
  one activity with the same ~200-byte payload (in ``extra_context``) out to
  K feeds already holding 1,000 activities, by ``Manager.fanout``'s loop
  and ``add_operation``'s call (``feed.add_many``) in-process: its
  ``feed_managers`` module does not import on Python 3.7+ (a parameter named
  ``async``), and Celery's task hop is left out, which favours it.
* ``floor``: the bare ``store_many`` of the one-item value to K keys.

Bytes sent: what the process sent on its sockets during one call (the
driver's ``socket.send`` calls, counted), divided by K: the requests'
bytes, CQL framing included, not the replies.

The read: ``Timeline.page(limit=50)`` of a full timeline with 7 pending
one-item siblings (it merges them and repairs: partially with ``narrow``,
the whole value without), by a fresh Timeline each time, the key reset
before every call (untimed); Stream-Framework reads the newest 50 of a
feed holding 1,000 + 7 activities (``feed[:50]``, decoded activities).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from timak import Timeline
from timak._bench import data
from timak._bench.data import BUCKET, Items
from timak.backends import connect
from timak.backends.base import Capabilities
from timak.backends.cassandra import CassandraBackend
from timak.errors import UnavailableError

ITEMS = 1000
PENDING = 7
LIMIT = 50
URL = "cassandra://127.0.0.1/timak_bench?replication_factor=1"


class _Sent:
    """Bytes this process has sent on sockets: the driver's reactor (libev,
    for timak's connections and Stream-Framework's alike) writes requests
    with ``socket.send``, which this counts; ``/proc/self/io`` does not see
    socket sends."""

    total = 0

    @classmethod
    def install(cls) -> None:
        send = socket.socket.send

        def counting(sock: socket.socket, data: Any, *args: Any) -> int:
            sent = send(sock, data, *args)
            cls.total += sent
            return sent

        socket.socket.send = counting  # type: ignore[method-assign]


def sent_bytes() -> int:
    return _Sent.total


# -- Stream-Framework --------------------------------------------------------

def stream_framework(keyspace: str) -> tuple[Any, Any, Any]:
    """Stream-Framework's Cassandra feed class, its activity class and its
    fan-out operation, pointed at the local node (its default settings speak
    protocol v2, which Cassandra 5 refuses: v4 here)."""
    os.environ["CQLENG_ALLOW_SCHEMA_MANAGEMENT"] = "1"
    import collections
    import collections.abc

    # Its memoize decorator checks collections.Hashable (gone in 3.10).
    collections.Hashable = collections.abc.Hashable  # type: ignore[attr-defined]
    # Its settings module reads Django's when Django is importable, and that
    # path fails on today's Django: hide Django while it loads.
    hidden = sys.modules.get("django")
    sys.modules["django"] = None  # type: ignore[assignment]
    try:
        from stream_framework import settings
    finally:
        if hidden is None:
            del sys.modules["django"]
        else:
            sys.modules["django"] = hidden

    settings.STREAM_CASSANDRA_HOSTS = ["127.0.0.1"]
    settings.STREAM_DEFAULT_KEYSPACE = keyspace
    settings.CASSANDRA_DRIVER_KWARGS = {"protocol_version": 4}
    from cassandra.cqlengine.management import create_keyspace_simple, sync_table
    from stream_framework.activity import Activity
    from stream_framework.feeds.cassandra import CassandraFeed
    from stream_framework.verbs import register
    from stream_framework.verbs.base import Verb

    class Post(Verb):
        id = 42
        infinitive = "post"
        past_tense = "posted"

    register(Post)

    class BenchFeed(CassandraFeed):
        timeline_cf_name = "sf_bench"
        key_format = "feed_%(user_id)s"
        max_length = ITEMS

    create_keyspace_simple(keyspace, 1)
    sync_table(BenchFeed.get_timeline_storage().model)

    def activity(n: int) -> Any:
        when = datetime.datetime(2026, 1, 1) + datetime.timedelta(seconds=n)
        return Activity(actor=n % 1000, verb=Post, object=n, time=when,
                        extra_context={"data": data.payload(n)})

    def add_operation(feed: Any, activities: list[Any], trim: bool, batch_interface: Any) -> None:
        # stream_framework.feed_managers.base.add_operation, less its debug
        # logging: that module does not import on Python 3.7+ (it names a
        # parameter ``async``).
        feed.add_many(activities, batch_interface=batch_interface, trim=trim)

    return BenchFeed, activity, add_operation


def sf_fill(feed_class: Any, activity: Callable[[int], Any], users: range, items: int) -> None:
    """Each user's feed holds activities ``0 .. items - 1``: the rows the
    library's serializer makes, inserted with prepared single-partition
    batches (the library's own add_many took minutes for a million rows)."""
    from cassandra.concurrent import execute_concurrent
    from cassandra.cqlengine.connection import get_session
    from cassandra.query import BatchStatement, BatchType

    storage = feed_class.get_timeline_storage()
    model, serializer = storage.model, storage.serializer
    table = f"{model._get_keyspace()}.{storage.column_family_name}"
    columns = ["activity_id", "actor", "extra_context", "object", "target", "time", "verb"]
    session = get_session()
    insert = session.prepare(
        f"INSERT INTO {table} (feed_id, {', '.join(columns)}) VALUES (?{', ?' * len(columns)})")
    rows = []
    for n in range(items):
        row = serializer.dumps(activity(n))
        rows.append([getattr(row, c) for c in columns])
    requests = []
    for user in users:
        feed_id = feed_class(user).key
        for start in range(0, items, 100):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for row in rows[start:start + 100]:
                batch.add(insert, [feed_id, *row])
            requests.append((batch, None))
    execute_concurrent(session, requests, concurrency=32, raise_on_first_error=True)


def sf_fanout(feed_class: Any, add_operation: Any, users: range, act: Any) -> None:
    """``Manager.fanout``'s loop: one batch interface per 100 followers."""
    for start in range(users.start, users.stop, 100):
        with feed_class.get_timeline_batch_interface() as batch:
            for user in range(start, min(start + 100, users.stop)):
                add_operation(feed_class(user), [act], trim=True, batch_interface=batch)


# -- timing -------------------------------------------------------------------

class Side:
    def __init__(self, name: str, run: Callable[[], Any],
                 setup: Callable[[], Any] | None = None) -> None:
        self.name, self.run, self.setup = name, run, setup
        self.ms: list[float] = []
        self.sent: list[int] = []

    def once(self) -> None:
        if self.setup:
            self.setup()
        gc.collect()
        sent = sent_bytes()
        start = time.perf_counter_ns()
        self.run()
        self.ms.append((time.perf_counter_ns() - start) / 1e6)
        self.sent.append(sent_bytes() - sent)

    def summary(self, units: int) -> dict[str, Any]:
        ordered = sorted(self.ms)
        return {
            "samples": len(ordered),
            "p50_ms": round(statistics.median(ordered), 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
            "bytes_sent_per_unit": round(statistics.median(self.sent) / units, 1),
        }


def rounds(sides: list[Side], count: int) -> None:
    for side in sides:  # warm-up, untimed
        side.once()
        side.ms.clear()
        side.sent.clear()
    for r in range(count):
        for side in sides[r % len(sides):] + sides[: r % len(sides)]:
            side.once()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=URL)
    parser.add_argument("--keys", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, nargs="+", default=[30, 12],
                        help="rounds per --keys entry")
    parser.add_argument("--read-rounds", type=int, default=40)
    parser.add_argument("--json")
    args = parser.parse_args()
    most = max(args.keys)
    _Sent.install()
    load = [os.getloadavg()[0]]

    narrow = connect(args.url)
    full = connect(args.url)
    assert isinstance(narrow, CassandraBackend) and isinstance(full, CassandraBackend)
    full.capabilities = Capabilities(keys=True, narrow=False)  # type: ignore[misc]
    feed_class, activity, add_operation = stream_framework("timak_sf_bench")

    print(f"filling {most} keys per side (timak x3, Stream-Framework) ...", flush=True)
    value = data.full_value(ITEMS)
    numbers = Items(ITEMS)
    (blind,) = data.blind_values(numbers.next(), 1, ITEMS)
    keysets = {name: data.keys(f"fanout-{name}", most) for name in ("narrow", "full", "floor")}
    for backend, names in ((narrow, keysets["narrow"] + keysets["floor"]),
                           (full, keysets["full"])):
        for part in data.chunks(names, 200):  # a loaded node may push back: retry
            for attempt in range(5):
                try:
                    data.reset(backend, part, [value])
                    break
                except UnavailableError:
                    if attempt == 4:
                        raise
                    time.sleep(2)
    timelines = {"narrow": Timeline(narrow, BUCKET, max_items=ITEMS),
                 "full": Timeline(full, BUCKET, max_items=ITEMS)}
    for name, tl in timelines.items():
        for step in range(1, tl.fold_at):  # stagger the fold cycle
            behind = [k for i, k in enumerate(keysets[name]) if i % tl.fold_at >= step]
            n = numbers.next()
            tl.fanout(behind, data.item_id(n), data.score(n), data.payload(n))
    sf_users = range(10**6, 10**6 + most)
    sf_fill(feed_class, activity, sf_users, ITEMS)
    print("filled", flush=True)

    results: dict[str, Any] = {}
    for keys, count in zip(args.keys, args.rounds, strict=True):
        def post(name: str, keys: int = keys) -> Callable[[], Any]:
            tl, mine = timelines[name], keysets[name][:keys]

            def run() -> None:
                n = numbers.next()
                tl.fanout(mine, data.item_id(n), data.score(n), data.payload(n))
            return run

        floor_keys = keysets["floor"][:keys]
        users = range(sf_users.start, sf_users.start + keys)
        sides = [
            Side("narrow", post("narrow")),
            Side("full", post("full")),
            Side("stream_framework",
                 lambda users=users: sf_fanout(feed_class, add_operation, users,
                                               activity(numbers.next()))),
            Side("floor", lambda fk=floor_keys: narrow.store_many(
                BUCKET, [(k, blind) for k in fk])),
        ]
        rounds(sides, count)
        case = {s.name: s.summary(keys) for s in sides}
        stats = {name: {k: v for k, v in vars(tl.stats).items() if not k.startswith("_")}
                 for name, tl in timelines.items()}
        results[f"fanout keys={keys}"] = {"sides": case, "timeline_stats": stats}
        print(json.dumps({f"fanout keys={keys}": case}, indent=1), flush=True)

    # The repairing read.
    siblings = [value, *data.blind_values(numbers.next(), PENDING, ITEMS)]
    read_keys = {name: data.keys(f"newest-{name}", 1)[0] for name in ("narrow", "full")}
    backends = {"narrow": narrow, "full": full}
    readers: dict[str, Timeline] = {}

    def read_side(name: str) -> Side:
        backend, key = backends[name], read_keys[name]

        def setup() -> None:
            data.reset(backend, [key], siblings)
            readers[name] = Timeline(backend, BUCKET, max_items=ITEMS)

        def run() -> None:
            page = readers[name].page(key, limit=LIMIT)
            assert len(page.items) == LIMIT
        return Side(name, run, setup)

    reader_user = sf_users.stop
    sf_fill(feed_class, activity, range(reader_user, reader_user + 1), ITEMS)
    sf_feed = feed_class(reader_user)
    for n in range(PENDING):
        sf_feed.add(activity(ITEMS + n), trim=False)

    def sf_read() -> None:
        page = sf_feed[:LIMIT]
        assert len(page) == LIMIT

    sides = [read_side("narrow"), read_side("full"), Side("stream_framework", sf_read)]
    rounds(sides, args.read_rounds)
    case = {s.name: s.summary(1) for s in sides}
    results[f"newest items={ITEMS} limit={LIMIT} pending={PENDING}"] = {"sides": case}
    print(json.dumps({"newest": case}, indent=1), flush=True)
    load.append(os.getloadavg()[0])

    for name, names in keysets.items():
        data.clear(narrow if name != "full" else full, names)
    data.clear(narrow, [read_keys["narrow"]])
    data.clear(full, [read_keys["full"]])
    narrow.close()
    full.close()
    report = {
        "command": " ".join(sys.argv),
        "environment": {"python": platform.python_version(), "load_average": load,
                        "cpus": os.cpu_count(), "url": args.url},
        "cases": results,
    }
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)
            out.write("\n")


if __name__ == "__main__":
    main()
