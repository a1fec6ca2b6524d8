#!/usr/bin/env python3
"""Measure the inputs of the sizing plan (docs/scaling.md).

Without a server (always):

    python benchmarks/sizing.py

  value   bytes of a stored 1,000-item timeline, and per item, for three item
          shapes, with the value format of this checkout (timak._encoding)

With a Cassandra (a dedicated keyspace; the script writes a few hundred MB at most):

    python benchmarks/sizing.py --url 'cassandra://127.0.0.2,127.0.0.3,127.0.0.4/timak_sizing' \\
        --nodetool 'integration/cassandra --cluster three nodetool --node 1 --' \\
        --timelines 2000 --fanout 10000 100000 --compact-keys 10000

  disk     TIMELINES full 1,000-item timelines, one sibling each, flushed: on-disk
           bytes per timeline on one node (nodetool tablestats "Space used (live)")
  read     fetch + merge time of one such timeline with 1 sibling and with
           FOLD_AT - 1 extra blind-write siblings (the most a key holds between folds)
  tombstones  tombstone cells a read scans after many read-modify-writes by two writers
  fanout   one item written to N distinct keys (a celebrity's post): wall time, keys/s,
           client CPU seconds per 1,000 writes, and how busy the machine's CPUs were
  compact  `timak compact` (Timeline.compact, the same sweep) over KEYS keys with 4
           siblings each: keys/s, so seconds per million keys

Prints one line per figure and, with --json FILE, writes them all. The figures in
docs/scaling.md came from this script; re-run it after a value-format change.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

from timak import Timeline
from timak import _encoding as encoding
from timak.backends import connect, redact_url
from timak.timelines import FOLD_AT

ITEMS = 1000
BASE_SCORE = 1_700_000_000_000_000  # microseconds: an ordinary 2023 timestamp
BASE_ID = 1_234_567_890_123_456_789  # a 64-bit, snowflake-like post id


def item(i: int, shape: str) -> tuple[Any, int, Any]:
    """(id, score, data) of item i in one of the shapes measured."""
    score = BASE_SCORE + i * 1_000_003
    if shape == "int id, no data":
        return BASE_ID + i, score, None
    if shape == "int id + 3-field activity":
        data = {"actor": f"user:{100_000 + i % 977}", "verb": "post",
                "object": f"post:{BASE_ID + i}"}
        return BASE_ID + i, score, data
    if shape == "str id + 3-field activity":
        data = {"actor": f"user:{100_000 + i % 977}", "verb": "post",
                "object": f"post:{BASE_ID + i}"}
        return f"post:{BASE_ID + i}", score, data
    raise ValueError(shape)


SECTIONS = ("disk", "read", "tombstones", "fanout", "compact")
SHAPES = ("int id, no data", "int id + 3-field activity", "str id + 3-field activity")
#: The shape the server measurements use.
SHAPE = "int id + 3-field activity"


def full_value(shape: str, items: int = ITEMS) -> bytes:
    """The stored bytes of a timeline holding ``items`` items, built through the API."""
    with Timeline("memory://", bucket="sizing", max_items=items) as tl:
        for i in range(items):
            item_id, score, data = item(i, shape)
            tl.add("k", item_id, score, data)
        siblings = tl.connection.fetch("sizing", "k").siblings
    assert len(siblings) == 1
    return bytes(siblings[0])


def measure_value(report: dict[str, Any]) -> bytes:
    chosen = b""
    for shape in SHAPES:
        value = full_value(shape)
        one = full_value(shape, 1)
        report[f"value_bytes[{shape}]"] = len(value)
        report[f"item_bytes[{shape}]"] = round(len(value) / ITEMS, 1)
        report[f"single_item_value_bytes[{shape}]"] = len(one)
        plain = len(encoding.encode(encoding.decode(value), compress_at=1 << 62))
        report[f"uncompressed_value_bytes[{shape}]"] = plain
        print(f"value  {shape:28} 1,000 items: {len(value):7,} B "
              f"({len(value) / ITEMS:5.1f} B/item; {plain:,} B uncompressed); "
              f"a 1-item value (a fan-out write): {len(one)} B")
        if shape == SHAPE:
            chosen = value
    return chosen


# -- server measurements ------------------------------------------------------------


def nodetool(prefix: list[str], *args: str) -> str:
    result = subprocess.run([*prefix, *args], capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL, timeout=600)
    if result.returncode != 0:
        sys.exit(f"nodetool {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def table_bytes(prefix: list[str], keyspace: str) -> tuple[int, float | None]:
    """Flush, then the table's live on-disk bytes on that node and its compression ratio."""
    nodetool(prefix, "flush", keyspace, "siblings")
    out = nodetool(prefix, "tablestats", f"{keyspace}.siblings")
    live = re.search(r"Space used \(live\): (\d+)", out)
    ratio = re.search(r"SSTable Compression Ratio: ([\d.]+)", out)
    if not live:
        sys.exit(f"no 'Space used (live)' in tablestats:\n{out}")
    return int(live.group(1)), float(ratio.group(1)) if ratio else None


def measure_disk(url: str, prefix: list[str] | None, timelines: int, value: bytes,
                 report: dict[str, Any]) -> None:
    backend = connect(url)
    keyspace = backend.options.keyspace  # type: ignore[attr-defined]
    before = table_bytes(prefix, keyspace)[0] if prefix else 0
    bucket = f"disk-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    for start in range(0, timelines, 500):
        keys = range(start, min(timelines, start + 500))
        backend.store_many(bucket, [(f"home:{i}", value) for i in keys])
    seconds = time.perf_counter() - started
    report["disk_timelines"] = timelines
    report["disk_write_MBps"] = round(timelines * len(value) / seconds / 1e6, 2)
    print(f"disk   wrote {timelines:,} timelines of {len(value):,} B in {seconds:.1f} s "
          f"({report['disk_write_MBps']} MB/s of values)")
    if prefix:
        after, ratio = table_bytes(prefix, keyspace)
        per = (after - before) / timelines
        report["disk_bytes_per_timeline"] = round(per)
        report["disk_compression_ratio"] = ratio
        print(f"disk   on one replica: {per:,.0f} B per 1,000-item timeline on disk "
              f"(SSTable compression ratio {ratio}); value {len(value):,} B")
    backend.close()


def measure_read(url: str, value: bytes, report: dict[str, Any], repeats: int = 200) -> None:
    bucket = f"read-{uuid.uuid4().hex[:8]}"
    with Timeline(url, bucket=bucket, max_items=ITEMS, fold_at=10**6) as tl:
        tl.connection.store(bucket, "one", value)
        tl.connection.store(bucket, "many", value)
        tl.fanout(["many"] * (FOLD_AT - 1), 1, BASE_SCORE + 10**12)
        for key, siblings in (("one", 1), ("many", FOLD_AT)):
            assert len(tl.connection.fetch(bucket, key).siblings) == siblings
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                tl.connection.fetch(bucket, key)  # no read repair: the state stays
                times.append(time.perf_counter() - t0)
            fetch_ms = statistics.median(times) * 1000
            report[f"fetch_ms[{siblings} siblings]"] = round(fetch_ms, 2)
            print(f"read   1,000-item timeline with {siblings:2} sibling(s): fetch "
                  f"{fetch_ms:.2f} ms (median of {repeats})")
        times = []
        for _ in range(repeats // 4):
            t0 = time.perf_counter()
            tl.get("one", raw=True)
            times.append(time.perf_counter() - t0)
        get_ms = statistics.median(times) * 1000
        report["get_ms[1 sibling]"] = round(get_ms, 2)
        print(f"read   Timeline.get of the 1-sibling timeline (fetch, decode, merge): "
              f"{get_ms:.2f} ms")


def measure_tombstones(url: str, report: dict[str, Any], writes: int = 400) -> None:
    bucket = f"tomb-{uuid.uuid4().hex[:8]}"
    with Timeline(url, bucket=bucket, max_items=ITEMS) as a, \
            Timeline(url, bucket=bucket, max_items=ITEMS) as b:
        for i in range(writes):
            (a if i % 2 else b).add("hot", i, BASE_SCORE + i)
        inspection = a.connection.inspect(bucket, "hot")  # type: ignore[attr-defined]
    report["tombstones_after_rmw"] = inspection.tombstones
    report["tombstone_rmw_writes"] = writes
    print(f"tombstones after {writes} read-modify-writes by 2 writers: the read scans "
          f"{inspection.live_rows} live row(s) and {inspection.tombstones} tombstone cells")


class CpuSampler:
    """Client CPU seconds and the machine's busy share between start and stop."""

    def __enter__(self) -> CpuSampler:
        self.wall = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = usage.ru_utime + usage.ru_stime
        self.stat = self._stat()
        return self

    @staticmethod
    def _stat() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = usage.ru_utime + usage.ru_stime - self.cpu
        busy, total = self._stat()
        self.busy = (busy - self.stat[0]) / max(1, total - self.stat[1])


def measure_fanout(url: str, sizes: list[int], report: dict[str, Any]) -> None:
    for n in sizes:
        bucket = f"fanout-{uuid.uuid4().hex[:8]}"
        keys = [f"home:{i}" for i in range(n)]
        data = {"actor": "user:1", "verb": "post", "object": f"post:{BASE_ID}"}
        with Timeline(url, bucket=bucket, max_items=ITEMS) as tl, CpuSampler() as cpu:
            tl.fanout(keys, BASE_ID, BASE_SCORE, data)
        rate = n / cpu.wall
        report[f"fanout_keys_per_s[{n}]"] = round(rate)
        report[f"fanout_client_cpu_s_per_1000[{n}]"] = round(cpu.cpu / n * 1000, 3)
        report[f"fanout_machine_busy[{n}]"] = round(cpu.busy, 2)
        print(f"fanout {n:9,} keys in {cpu.wall:6.1f} s: {rate:8,.0f} keys/s; client CPU "
              f"{cpu.cpu / n * 1000:.3f} s per 1,000 keys ({cpu.cpu / cpu.wall:.0%} of one "
              f"core); machine CPUs {cpu.busy:.0%} busy")


def measure_compact(url: str, n: int, report: dict[str, Any]) -> None:
    bucket = f"compact-{uuid.uuid4().hex[:8]}"
    keys = [f"home:{i}" for i in range(n)]
    with Timeline(url, bucket=bucket, max_items=ITEMS, fold_at=10**6) as tl:
        for j in range(4):
            tl.fanout(keys, j, BASE_SCORE + j)
        with CpuSampler() as listed:
            found = sum(1 for _ in tl.connection.keys(bucket))
        with CpuSampler() as cpu:
            stats = tl.compact(keys)
    assert found == n and stats.folded == n, (found, stats)
    rate = n / cpu.wall
    report[f"compact_keys_per_s[{n}]"] = round(rate)
    report["compact_s_per_million_keys"] = round(1e6 / rate)
    print(f"compact {n:,} keys x 4 siblings: {cpu.wall:.1f} s, {rate:,.0f} keys/s, so "
          f"{1e6 / rate / 60:.0f} min per million keys (client CPU {cpu.cpu / cpu.wall:.0%} "
          f"of a core, machine {cpu.busy:.0%}); listing the table's keys took "
          f"{listed.wall:.1f} s")
    report["keys_scan_s"] = round(listed.wall, 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a cassandra:// URL with a dedicated keyspace")
    p.add_argument("--nodetool", help="command prefix that runs nodetool on one replica")
    p.add_argument("--timelines", type=int, default=2000)
    p.add_argument("--fanout", type=int, nargs="*", default=[10_000])
    p.add_argument("--compact-keys", type=int, default=10_000)
    p.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS),
                   help="server sections to run (default: all)")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)
    report: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M"), "items": ITEMS}
    value = measure_value(report)
    if args.url:
        report["url"] = redact_url(args.url)
        prefix = shlex.split(args.nodetool) if args.nodetool else None
        if "disk" in args.only:
            measure_disk(args.url, prefix, args.timelines, value, report)
        if "read" in args.only:
            measure_read(args.url, value, report)
        if "tombstones" in args.only:
            measure_tombstones(args.url, report)
        if "fanout" in args.only:
            measure_fanout(args.url, args.fanout, report)
        if "compact" in args.only:
            measure_compact(args.url, args.compact_keys, report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
