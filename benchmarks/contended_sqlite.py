#!/usr/bin/env python3
"""Writers contending for one SQLite key: throughput and latency.

    python benchmarks/contended_sqlite.py [--writers 1 2 4 8] [--seconds 3]
        [--mode blind add] [--json FILE]

Each run starts W writer processes on one fresh SQLite file; for SECONDS each
writes one item after another to the same key of a 4,000-item timeline,
``blind`` (``fanout([key], ...)``: one blind write, folds at fold_at) or
``add`` (read, merge, write with the read's context, returning the
timeline). Prints writes/s over all writers and p50/p90/p99 of one write,
and, for ``add``, the median of the first and of the last 10% of writes
(flat means the cost does not grow with the value). The check at the end
reads the key back: every acknowledged item must be there (up to capacity).

``timak bench --only contended`` runs the ``blind`` mode inside the harness
(``timak/_bench/contended.py``), beside its floor (one writer alone) and a
Redis peer (W redis-py processes on one sorted set), p50/p90/p99 and
writes/s per writer count; this script keeps the ``add`` mode, ``--fold-at``
and the first/last 10% medians.

Speed is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from typing import Any

CAPACITY = 4000


def _writer(url: str, mode: str, seconds: float, me: int, start: Any, out: Any,
            fold_at: int) -> None:
    from timak import Timeline

    tl = Timeline(url, max_items=CAPACITY, fold_at=fold_at)
    times: list[float] = []
    start.wait()
    stop = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop:
        item = f"w{me}-{n}"
        began = time.perf_counter()
        if mode == "blind":
            tl.fanout(["k"], item, time.time_ns() // 1000)
        else:
            tl.add("k", item, time.time_ns() // 1000)
        times.append(time.perf_counter() - began)
        n += 1
    tl.close()
    out.put((me, times))


def run(writers: int, mode: str, seconds: float, fold_at: int = 16) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{os.path.join(tmp, 'contended.db')}"
        from timak import Timeline

        Timeline(url, max_items=CAPACITY).add("k", "seed", 0)
        ctx = multiprocessing.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(url, mode, seconds, i, start, out, fold_at))
                 for i in range(writers)]
        for p in procs:
            p.start()
        time.sleep(1.0)  # let every process import timak first
        start.set()
        results = [out.get(timeout=seconds + 120) for _ in procs]
        for p in procs:
            p.join()
        every = sorted(t for _, times in results for t in times)
        written = len(every)
        held = len(Timeline(url, max_items=None).get("k"))
        firsts = [t for _, times in results for t in times[: max(1, len(times) // 10)]]
        lasts = [t for _, times in results for t in times[-max(1, len(times) // 10):]]
    q = statistics.quantiles(every, n=100) if len(every) > 1 else [every[0]] * 99
    return {
        "writers": writers, "mode": mode, "seconds": seconds, "fold_at": fold_at,
        "writes": written,
        "writes_per_s": round(written / seconds, 1),
        "p50_ms": round(q[49] * 1e3, 3), "p90_ms": round(q[89] * 1e3, 3),
        "p99_ms": round(q[98] * 1e3, 3),
        "first_10pct_median_ms": round(statistics.median(firsts) * 1e3, 3),
        "last_10pct_median_ms": round(statistics.median(lasts) * 1e3, 3),
        "held": held, "lost": max(0, min(written + 1, CAPACITY) - held),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--mode", nargs="+", default=["blind", "add"], choices=["blind", "add"])
    parser.add_argument("--fold-at", type=int, default=16,
                        help="Timeline(fold_at=...) of the writers (default 16)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    rows = []
    for mode in args.mode:
        for writers in args.writers:
            row = run(writers, mode, args.seconds, args.fold_at)
            rows.append(row)
            print(f"{mode:5} writers={writers}: {row['writes_per_s']:8.1f} writes/s  "
                  f"p50 {row['p50_ms']:7.2f} ms  p90 {row['p90_ms']:7.2f} ms  "
                  f"p99 {row['p99_ms']:7.2f} ms  first/last 10% median "
                  f"{row['first_10pct_median_ms']:.2f}/{row['last_10pct_median_ms']:.2f} ms  "
                  f"lost {row['lost']}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
