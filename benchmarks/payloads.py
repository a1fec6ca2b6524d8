"""Activity payloads inline vs stored once by reference: where the threshold goes.

    PYTHONPATH=. python3 benchmarks/payloads.py [--json FILE] [--quick]

For each ``extra`` size (its msgpack encoding), on memory and SQLite:

* bytes written by one ``add_activity`` fanned out to 1,000 followers'
  ``home`` feeds (every value ``store``/``store_many`` was given, counted
  by a wrapper around the backend), inline (``inline_bytes=None``) and by
  reference (``inline_bytes=0``);
* the newest page (``Feeds.read(limit=25)``) of a full feed of 1,000 such
  activities, inline and by reference, beside its floor, which contains no
  timak code: the bare ``fetch`` of the feed and a plain msgpack (+ zlib)
  decode of it (``timak._bench.floors.plain_decode``), plus, by reference,
  the bare ``fetch_many`` of the page's 25 payload keys and a plain
  ``msgpack.unpackb`` of each.

Medians of interleaved runs, in ms. Inline feeds above the default item
limit are made with ``max_item_bytes``/``max_value_bytes`` raised so they can
be measured at all.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from timak._bench.floors import plain_decode
from timak.activity import Activity, FeedGroup, Feeds
from timak.backends import Backend, Fetched, connect
from timak.backends.base import StoreResult

T0 = 1_714_564_800_000_000
FOLLOWERS = 1000
ITEMS = 1000
PAGE = 25


class Counting(Backend):
    """A backend that counts the bytes it is asked to store."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.written = inner, 0

    def fetch(self, bucket: str, key: str) -> Fetched:
        return self.inner.fetch(bucket, key)

    def fetch_many(self, bucket: str, keys: Iterable[str]) -> list[Fetched]:
        return self.inner.fetch_many(bucket, keys)

    def store(self, bucket: str, key: str, value: bytes, context: Any = None) -> StoreResult:
        self.written += len(value)
        return self.inner.store(bucket, key, value, context)

    def store_many(self, bucket: str, entries: Iterable[tuple[str, bytes]]) -> list[StoreResult]:
        entries = list(entries)
        self.written += sum(len(v) for _, v in entries)
        return self.inner.store_many(bucket, entries)

    def delete(self, bucket: str, key: str, context: Any = None) -> None:
        self.inner.delete(bucket, key, context)

    def close(self) -> None:
        self.inner.close()


def feeds_for(backend: Backend, size: int, inline: bool, tag: str) -> Feeds:
    room = size + 1024
    return Feeds(
        backend, followers=lambda a: [f"f{n}" for n in range(FOLLOWERS)],
        groups=[FeedGroup("user", max_items=ITEMS, bucket=f"pu-{tag}"),
                FeedGroup("home", max_items=ITEMS, follows="user", bucket=f"ph-{tag}")],
        inline_bytes=None if inline else 0, payload_bucket=f"pp-{tag}",
        timeline_options={"max_item_bytes": room, "max_value_bytes": room * (ITEMS + 48)},
    )


_WORDS = random.Random(7).choices(string.ascii_lowercase + " ", k=250_000)


def extra_of(size: int, n: int = 0) -> dict[str, Any]:
    """About ``size`` bytes of text as zlib sees prose (random letters and
    spaces: it compresses to ~60%, as English does), different per ``n``."""
    start = (n * 7919) % 50_000
    return {"t": "".join(_WORDS[start:start + max(0, size - 8)])}


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def measure(url: str, size: int, runs: int, page_sizes: set[int]) -> dict[str, Any]:
    row: dict[str, Any] = {"extra_bytes": len(msgpack.packb(extra_of(size)))}
    for inline in (True, False):
        mode = "inline" if inline else "ref"
        backend = Counting(connect(url))
        tag = f"{mode}{size}"
        feeds = feeds_for(backend, size, inline, tag)
        post = Activity("alice", "post", "p", time=T0, extra=extra_of(size))
        backend.written = 0
        feeds.add_activity(post, fanout_to=["home"])
        row[f"fanout_bytes_{mode}"] = backend.written
        if size in page_sizes:
            home = feeds.timeline("home")
            home.add_many("reader", [
                Activity(f"a{n % 50}", "post", f"o{n}", time=T0 + n,
                         extra=extra_of(size, n)).item()
                for n in range(ITEMS)] if inline else [])
            if not inline:
                for n in range(ITEMS):
                    activity = Activity(f"a{n % 50}", "post", f"o{n}", time=T0 + n,
                                        extra=extra_of(size, n))
                    item_id, score, data, payload = feeds._stored(activity)
                    assert payload is not None
                    backend.store(feeds.payload_bucket, item_id, payload.stored)
                    home.add_many("reader", [(item_id, score, data)])
            home.fold("reader")
            assert len(feeds.read("home", "reader", PAGE).activities) == PAGE
            row[f"page_ms_{mode}"] = median_ms(
                lambda feeds=feeds: feeds.read("home", "reader", PAGE), runs)
            ids = [a.id for a in feeds.read("home", "reader", PAGE).activities]

            def floor(ids: list[str] = ids, inline: bool = inline,
                      feeds: Feeds = feeds, backend: Backend = backend) -> None:
                for value in backend.fetch(feeds.group("home").bucket, "reader").siblings:
                    plain_decode(value)
                if not inline:
                    for fetched in backend.fetch_many(feeds.payload_bucket, ids):
                        msgpack.unpackb(fetched.siblings[0][4:])

            row[f"floor_ms_{mode}"] = median_ms(floor, runs)
            row[f"feed_bytes_{mode}"] = sum(
                len(v) for v in backend.fetch(feeds.group("home").bucket, "reader").siblings)
        backend.close()
    return row


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = [64, 256, 512, 1024, 2048, 4096, 8192, 16384, 200_000]
    page_sizes = {64, 256, 512, 1024, 2048, 4096, 8192, 16384}
    runs = 5 if args.quick else 30
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in (("memory", "memory://payloads"), ("sqlite", f"sqlite:///{tmp}/p.db")):
            results[name] = []
            for size in sizes:
                row = measure(url, size, runs, page_sizes)
                results[name].append(row)
                print(name, json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"followers": FOLLOWERS, "items": ITEMS, "page": PAGE,
                       "results": results}, out, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
