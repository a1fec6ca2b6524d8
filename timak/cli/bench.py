"""``timak bench``: timak's operations timed beside their floors (``timak.bench``).

Prints one row per case: the median and p99 latency of one call, the rate
(``units / median``) of timak and of its floor, their ratio (and the same
ratio from CPU time, a cross-check for a noisy machine), and whether the
case's target ratio is met. Targets are reported, never enforced: the exit
code is 0 unless something failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import bench
from . import store_url

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bench",
        help="benchmark timak against its floors",
        description="Time fan-out, add, get, paging, merge and blind writes, each beside "
        "its floor (the bare store or decode doing the same work), interleaved in one "
        "run. Without --backend: memory and SQLite (a temporary file), plus the store "
        "that --url or $TIMAK_URL names if it is not SQLite.",
    )
    parser.add_argument(
        "--backend", action="extend", nargs="+", choices=bench.BACKENDS, metavar="NAME",
        help=f"backends to run on ({', '.join(bench.BACKENDS)}); may be repeated",
    )
    # SUPPRESS: a subcommand default would overwrite a `timak --url X bench`.
    parser.add_argument("--url", default=argparse.SUPPRESS,
                        help="store URL for cassandra (or a sqlite file to use)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few samples: a few seconds (CI)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--only", action="extend", nargs="+", choices=bench.SCENARIOS, metavar="NAME",
        help=f"run only these scenarios ({', '.join(bench.SCENARIOS)})",
    )
    parser.set_defaults(func=_bench)


def _given_url(args: argparse.Namespace) -> str | None:
    """The URL the user named (``--url`` or ``$TIMAK_URL``), not the default.

    A SQLite URL counts only from ``--url``: ``$TIMAK_URL`` usually names the
    application's own database, which a benchmark should not write to unasked.
    """
    if getattr(args, "url", None):
        return store_url(args)
    if os.environ.get("TIMAK_URL"):
        url = store_url(args)
        return None if url.startswith("sqlite:") else url
    return None


def _backends(args: argparse.Namespace, url: str | None) -> list[str]:
    if args.backend:
        return list(dict.fromkeys(args.backend))
    names = ["memory", "sqlite"]
    scheme = url.split("://", 1)[0] if url else None
    if scheme in bench.BACKENDS and scheme not in names:
        names.append(scheme)
    return names


def _bench(args: argparse.Namespace) -> int:
    url = _given_url(args)
    mode = bench.QUICK if args.quick else bench.FULL
    results: list[bench.Result] = []
    try:
        with bench.open_backends(_backends(args, url), url) as backends:
            for result in bench.iter_results(backends, mode, only=args.only,
                                             progress=_progress):
                results.append(result)
    finally:
        # A store that fails half-way through a long run keeps what was measured.
        if results:
            _report(results, args.json)
    return 0


def _report(results: list[bench.Result], json_path: str | None) -> None:
    print(format_table(results))
    figures = format_figures(results)
    if figures:
        print()
        print(figures)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as out:
            json.dump(bench.results_json(results), out, indent=1)
            out.write("\n")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def format_table(results: Sequence[bench.Result]) -> str:
    """The results as an aligned text table."""
    header = ("name", "backend", "median ms", "p99 ms", "ops/s", "floor ops/s", "ratio",
              "cpu ratio", "target")
    rows = [header] + [
        (
            r.name,
            r.backend,
            f"{r.p50_ms:.3f}",
            f"{r.p99_ms:.3f}",
            _rate(r.ops_per_s),
            _rate(r.floor_ops_per_s),
            _ratio(r.ratio),
            _ratio(r.cpu_ratio),
            _target(r),
        )
        for r in results
    ]
    return _align(rows, right_from=2)


def format_figures(results: Sequence[bench.Result]) -> str:
    """The byte figures of the ``storage`` cases, one row per backend."""
    storage = [r for r in results if r.figures]
    if not storage:
        return ""
    names = list(storage[0].figures)
    rows = [("bytes per item", *(r.backend for r in storage))]
    for name in names:
        cells = [r.figures.get(name) for r in storage]
        rows.append((name.removesuffix("_bytes_per_item"),
                     *("-" if c is None else f"{c:.1f}" for c in cells)))
    return _align(rows, right_from=1)


def _rate(per_s: float) -> str:
    return f"{per_s:,.0f}" if per_s >= 100 else f"{per_s:.3g}"


def _ratio(ratio: float) -> str:
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.3f}"


def _target(result: bench.Result) -> str:
    if result.target is None:
        return "-"
    verdict = "met" if result.meets_target else "MISSED"
    return f">={result.target:.2f} {verdict}"


def _align(rows: Sequence[Sequence[str]], right_from: int) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(width) if i >= right_from else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
