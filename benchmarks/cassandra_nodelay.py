"""A Cassandra fold with and without ``TCP_NODELAY`` (issue 11, item 1).

    integration/cassandra start
    python benchmarks/cassandra_nodelay.py [--url cassandra://127.0.0.1/timak_bench]

Opens two backends on the same node, one as timak now opens it (``TCP_NODELAY``
on the driver's sockets) and one with the driver's default (Nagle on), and
times, interleaved in one run: ``Timeline.fold`` of a key holding a full
1,000-item timeline plus 15 blind one-item siblings (what a fold meets at the
default ``fold_at=16``), and its floor, a bare ``fetch`` + ``store`` (with the
fetch's context) of the bytes that fold writes. Prints medians and p99.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from timak._bench import data
from timak._bench.harness import Op, Plan, Side, measure
from timak.backends import cassandra as cb
from timak.timelines import FOLD_AT, Timeline

ITEMS = 1_000


def _nagle_backend(options: cb.CassandraOptions) -> cb.CassandraBackend:
    real = cb.CassandraBackend._make_cluster

    def without_nodelay(opts: cb.CassandraOptions) -> Any:
        cluster = real(opts)
        cluster.sockopts = None  # the driver's default
        return cluster

    cb.CassandraBackend._make_cluster = staticmethod(without_nodelay)  # type: ignore[method-assign,assignment]
    try:
        return cb.CassandraBackend(options)
    finally:
        cb.CassandraBackend._make_cluster = staticmethod(real)  # type: ignore[method-assign]


def _sides(backend: cb.CassandraBackend, siblings: list[bytes], folded: bytes,
           used: list[str]) -> list[Op]:
    key, floor_key = data.keys("nodelay", 2)
    used += [key, floor_key]
    tl = Timeline(connection=backend, bucket=data.BUCKET, max_items=ITEMS)

    def reset(name: str) -> Callable[[], None]:
        return lambda: data.reset(backend, [name], siblings)

    def fetch_store() -> None:
        fetched = backend.fetch(data.BUCKET, floor_key)
        backend.store(data.BUCKET, floor_key, folded, fetched.context)

    return [Op(lambda: tl.fold(key), reset(key)), Op(fetch_store, reset(floor_key))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="cassandra://127.0.0.1/timak_bench")
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args(argv)
    options = cb.parse_url(urlsplit(args.url))
    siblings = [data.full_value(ITEMS), *data.blind_values(ITEMS, FOLD_AT - 1, ITEMS)]
    folded = data.folded_value(siblings, ITEMS)
    print(f"{len(siblings)} siblings, {sum(map(len, siblings)):,} bytes; the fold writes "
          f"{len(folded):,} bytes")
    nodelay, nagle = cb.CassandraBackend(options), _nagle_backend(options)
    used: list[str] = []
    try:
        plan = Plan(warmup=2, min_samples=args.samples, max_samples=args.samples, budget_s=0)
        taken = measure(_sides(nagle, siblings, folded, used)
                        + _sides(nodelay, siblings, folded, used), plan)
        data.clear(nodelay, used)
    finally:
        nodelay.close()
        nagle.close()
    names = ("fold, Nagle on", "fetch+store, Nagle on", "fold, TCP_NODELAY",
             "fetch+store, TCP_NODELAY")
    sides = [Side.of(name, samples) for name, samples in zip(names, taken, strict=True)]
    for side in sides:
        print(f"{side.name:<26} median {side.p50_ms:7.2f} ms  p99 {side.p99_ms:7.2f} ms  "
              f"({side.samples} samples)")
    for fold, floor in ((sides[0], sides[1]), (sides[2], sides[3])):
        print(f"{fold.name}: {fold.p50_ms / floor.p50_ms:.2f} x its floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
