"""``timak bench``: timak beside its floors and a Redis peer (``timak._bench``).

Prints one row per case: timak's median and p99 per call, its floor's (the
bare store, bare ``sqlite3`` or a plain msgpack decode doing the same work,
not timak's code; for ``contended``, one writer alone) and the Redis peer's,
and the ratios ``timak / floor`` and ``timak / redis`` of the medians and of
the p99s (2.0 = timak takes twice as long); then, for ``contended``, writes/s
and p50/p90/p99 per side; then the bytes of one full timeline, then a
legend. Progress goes to stderr: a line as each case starts and ends, and
every 10 s of a long one. Targets (issue 11) are reported: the exit code is 0 whether they
are met or not, unless ``--fail-on-miss`` is given (then 1 when one is
missed or could not be measured).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from .. import _bench as bench  # lazy: names load the engine on first use
from .._bench.names import BACKENDS, SCENARIOS
from ..errors import UnavailableError
from . import store_url

__all__ = ["register"]

LEGEND = """\
How to read this (docs/benchmarks.md has more):
  ms: one call of the case (a fan-out to all its keys, one read, one add,
    one write of one contended writer).
  x floor / x redis: timak's median / the other's median; 2.00 = twice as long,
    0.50 = twice as fast. Targets are upper bounds on these. p99 x floor /
    p99 x redis: the same ratio of the p99s.
  contended: W processes write one key; its floor is one timak writer alone
    (x floor: what contention costs); writes/s counts all W writers.
  cpu x floor: the same ratio from this process's CPU time; far from x floor
    means the machine was busy. cpu x redis adds redis-server's CPU per call
    (INFO cpu) to the client's: a starved server costs time, not CPU.
  MISSED: a target not met. Exit code stays 0 unless --fail-on-miss.
  not measured: a target whose other side did not run (no Redis peer); it
    neither meets nor misses."""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bench",
        help="benchmark timak against its floors and Redis",
        description="Time steady-state fan-out, add, newest 50, fold, W writer processes "
        "on one SQLite key (contended) and the activity-feed calls, each beside its "
        "floor (the bare store, bare sqlite3 or a plain msgpack decode doing the same "
        "work; for contended, one writer alone) and, when "
        "redis-server and redis-py are installed, Redis sorted sets on a private server "
        "started for the run, in one run: interleaved call by call (contended's sides, which "
        "run processes, one after the other). Without --backend: memory and "
        "SQLite (a temporary file), plus the store that --url or $TIMAK_URL names if it "
        "is not SQLite. Targets are reported; exit status 0 even when one is MISSED, "
        "unless --fail-on-miss. Medians and p99 are printed for every side, with progress "
        "on stderr.",
    )
    parser.add_argument(
        "--backend", action="extend", nargs="+", choices=BACKENDS, metavar="NAME",
        help=f"backends to run on ({', '.join(BACKENDS)}); may be repeated",
    )
    # SUPPRESS: a subcommand default would overwrite a `timak --url X bench`.
    parser.add_argument("--url", default=argparse.SUPPRESS,
                        help="store URL for cassandra (or a sqlite file to use)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few samples: seconds, for CI (figures are "
                        "not comparable with a full run)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--only", action="extend", nargs="+", choices=SCENARIOS, metavar="NAME",
        help=f"run only these scenarios ({', '.join(SCENARIOS)})",
    )
    parser.add_argument("--no-peer", action="store_true",
                        help="do not start redis-server (no Redis column)")
    parser.add_argument("--fail-on-miss", action="store_true",
                        help="exit 1 when a target is missed or could not be measured")
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
    if scheme in BACKENDS and scheme not in names:
        names.append(scheme)
    return names


@contextlib.contextmanager
def _peer(wanted: bool) -> Iterator[tuple[bench.RedisPeer | None, str | None]]:
    """The Redis peer, or ``None`` and why (printed as one line). Only a
    failure to start it is caught: errors of the run itself propagate, and
    stop the server on their way out."""
    if not wanted:
        yield None, "--no-peer"
        return
    with contextlib.ExitStack() as stack:
        try:
            peer = stack.enter_context(bench.running_redis())
        except UnavailableError as exc:
            yield None, str(exc)
            return
        yield peer, None


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises SystemExit, so the redis-server this run started is
    stopped by the ``finally`` blocks on the way out (as on Ctrl-C)."""
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bench(args: argparse.Namespace) -> int:
    url = _given_url(args)
    mode = bench.QUICK if args.quick else bench.FULL
    results: list[bench.Result] = []
    byte_figures: bench.Bytes | None = None
    env: dict[str, Any] = {}
    skipped_peer: str | None = None
    with (
        _sigterm_unwinds(),
        bench.open_backends(_backends(args, url), url) as backends,
        _peer(not args.no_peer) as (peer, skipped),
    ):
        skipped_peer = skipped
        if skipped is not None:
            print(f"Redis peer skipped: {skipped}", file=sys.stderr, flush=True)
        env = bench.environment(mode, peer, skipped)
        try:
            for result in bench.iter_results(backends, mode, peer=peer, only=args.only,
                                             progress=_progress):
                results.append(result)
            if not args.only:
                byte_figures = bench.measure_bytes(mode.sizes.items, backends, peer)
        finally:
            # A store that fails half-way through a long run keeps what was measured.
            if results:
                env["load_average_end"] = list(os.getloadavg())
                _report(results, byte_figures, env, args.json)
    # A target not met, and one that could not be measured (no Redis peer,
    # say), are reported apart: only the first says anything about timak.
    verdicts = [t.met for r in results for t in r.targets]
    if byte_figures is not None:
        verdicts.append(byte_figures.met)
    missed, unmeasured = verdicts.count(False), verdicts.count(None)
    if unmeasured:
        print(f"\n{unmeasured} target(s) not measured (no peer to compare with"
              + (f": {skipped_peer}" if skipped_peer else "") + "); they neither meet "
              "nor miss, and do not fail --fail-on-miss")
    if missed:
        print(f"\n{missed} target(s) MISSED"
              + ("" if args.fail_on_miss else " (exit status 0: pass --fail-on-miss to fail)"))
    return 1 if missed and args.fail_on_miss else 0


def _report(results: list[bench.Result], byte_figures: bench.Bytes | None,
            env: dict[str, Any], json_path: str | None) -> None:
    print(format_table(results))
    rates = format_rates(results)
    if rates is not None:
        print()
        print(rates)
    if byte_figures is not None:
        print()
        print(format_bytes(byte_figures))
    print()
    print(LEGEND)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as out:
            json.dump(bench.results_json(results, byte_figures, env), out, indent=1)
            out.write("\n")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def format_table(results: Sequence[bench.Result]) -> str:
    """The results as an aligned text table."""
    header = ("case", "backend", "timak ms", "p99", "floor", "floor ms", "p99",
              "x floor", "p99 x floor", "cpu x floor", "redis ms", "p99", "x redis",
              "p99 x redis", "cpu x redis", "targets")
    rows = [header] + [
        (
            r.name,
            r.backend,
            _ms(r.subject.p50_ms),
            _ms(r.subject.p99_ms),
            r.floor.name,
            _ms(r.floor.p50_ms),
            _ms(r.floor.p99_ms),
            _ratio(r.vs_floor),
            _ratio(r.vs_floor_p99),
            _ratio(r.cpu_vs_floor),
            "-" if r.peer is None else _ms(r.peer.p50_ms),
            "-" if r.peer is None else _ms(r.peer.p99_ms),
            "-" if r.vs_peer is None else _ratio(r.vs_peer),
            "-" if r.vs_peer_p99 is None else _ratio(r.vs_peer_p99),
            "-" if r.cpu_vs_peer is None else _ratio(r.cpu_vs_peer),
            _targets(r.targets),
        )
        for r in results
    ]
    return _align(rows, right_from=2, left=(4, len(header) - 1))


def format_rates(results: Sequence[bench.Result]) -> str | None:
    """Writes per second and p50/p90/p99 of the cases that ran writer
    processes (``contended``), or ``None`` when there were none."""
    ran = [r for r in results if r.subject.per_s is not None]
    if not ran:
        return None
    header = ("case", "side", "writes/s", "p50 ms", "p90 ms", "p99 ms", "lost")
    rows: list[tuple[str, ...]] = [header]
    for r in ran:
        for label, side, lost in (("timak", r.subject, r.params.get("lost")),
                                  (r.floor.name, r.floor, None),
                                  ("redis", r.peer, r.params.get("peer_lost"))):
            if side is None:
                continue
            rows.append((r.name, label, f"{side.per_s or 0:,.0f}", _ms(side.p50_ms),
                         "-" if side.p90_ms is None else _ms(side.p90_ms), _ms(side.p99_ms),
                         "-" if lost is None else str(lost)))
    return _align(rows, right_from=2, left=())


def format_bytes(figures: bench.Bytes) -> str:
    """The bytes of one full timeline, timak beside Redis."""
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    verdict = "-" if figures.met is None else ("met" if figures.met else "MISSED")
    ratio = "-" if figures.vs_redis is None else f"{figures.vs_redis:.2f}"
    rows = [
        (f"bytes of one {figures.items:,}-item timeline", ""),
        ("items as inline JSON (id, score, data)", cell(figures.payload_json)),
        ("timak stored value", cell(figures.stored_value)),
        ("SQLite used pages per timeline", cell(figures.sqlite_pages)),
        ("Redis MEMORY USAGE (zset)", cell(figures.redis_memory_usage)),
        ("Redis DUMP (serialized)", cell(figures.redis_dump)),
        ("timak / Redis MEMORY USAGE", f"{ratio} (target <= {bench.BYTES_TARGET}: {verdict})"),
    ]
    return _align(rows, right_from=1, left=())


def _ms(ms: float) -> str:
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


def _ratio(ratio: float) -> str:
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.3f}"


def _targets(targets: Sequence[bench.Target]) -> str:
    if not targets:
        return "-"
    return ", ".join(
        f"{t.against}<={t.at_most:g} "
        + ("not measured" if t.met is None else "met" if t.met else "MISSED")
        for t in targets
    )


def _align(rows: Sequence[Sequence[str]], right_from: int, left: Sequence[int]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(width) if i >= right_from and i not in left else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
