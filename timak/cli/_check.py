"""``timak check``: concurrent writers, random crashes, and a sequential oracle.

Runs worker processes doing random adds, deletes, read-modify-writes and
blind fan-outs on a few hot keys, optionally SIGKILLing and restarting them,
then reads every key and compares it with the join of every acknowledged
write (see ``timak._check``). Prints one summary line::

    checked=N lost=0 resurrected=0 nonconverged=0 crashes_survived=K fuzz_cases=F

and a legend of every figure it printed. Exit status 0 when nothing was
lost, resurrected or left unconverged (and no sibling was corrupt, no client
saw an untyped error, no worker died on its own); 1 otherwise. ``--soak
SECONDS`` repeats runs, each on a fresh bucket, until that much time has
passed, and sums them.

Without ``--url`` (or ``$TIMAK_URL``) it checks a temporary SQLite file and
removes it afterwards. With one, each run writes a fresh ``check-...``
bucket and deletes its keys afterwards if the run was clean (a failed run's
keys stay for inspection; ``--keep`` keeps them always).
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..backends import connect
from ..errors import ConfigError
from . import store_url, url_given

if TYPE_CHECKING:
    from .._check import CheckReport

__all__ = ["register"]

#: Anomalies printed per run; the rest are counted.
_SHOWN = 20


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "check",
        help="check a store with concurrent writers, crashes and an oracle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--ops", type=int, default=300, help="operations per worker (300)")
    parser.add_argument("--keys", type=int, default=5, help="hot keys (default 5)")
    parser.add_argument("--max-items", type=int, default=10, help="timeline capacity (10)")
    parser.add_argument(
        "--kill-every", type=float, metavar="SECONDS",
        help="SIGKILL a random worker about this often, then restart it",
    )
    parser.add_argument(
        "--kills", type=int, default=0, help="SIGKILL this many workers at random points"
    )
    parser.add_argument(
        "--soak", type=float, metavar="SECONDS", help="repeat runs for this long, summed"
    )
    parser.add_argument("--seed", type=int, help="random seed of the first run")
    parser.add_argument("--history", metavar="DIR", help="keep history files in DIR")
    parser.add_argument(
        "--read-url", action="append", default=[], metavar="URL",
        help="another URL (replica, consistency level) that must read the same; repeatable",
    )
    parser.add_argument(
        "--final-only", action="store_true",
        help="check only the values read after the run, not every read during it "
        "(for eventually consistent settings such as Cassandra at consistency ONE)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="bound on one run, seconds (600)"
    )
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the check's keys (and a temporary store) instead of removing them",
    )
    parser.set_defaults(func=_check)


def _validate(args: argparse.Namespace) -> None:
    for name in ("workers", "ops", "keys", "max_items"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if args.kills < 0:
        raise ConfigError("--kills must not be negative")
    for name in ("kill_every", "soak", "timeout"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive")


#: What every printed figure means, in the order they appear.
LEGEND = """\
what the figures mean (all but checked, crashes_survived, fuzz_cases, siblings_left,
runs, outcomes and acked must be 0):
  checked           acknowledged writes compared with the oracle (a fan-out counts once)
  lost              items the oracle keeps visible that the store does not show
  resurrected       items the store shows that acknowledged writes deleted,
                    superseded or trimmed, or that no write wrote
  nonconverged      keys whose two reads after repair disagree
  crashes_survived  workers SIGKILLed and restarted (--kills, --kill-every)
  fuzz_cases        damaged copies of stored siblings given to the decoder
  runs              runs summed (--soak)
  corrupt           stored siblings that did not decode
  untyped           client errors that were not a TimakError
  fuzz              damaged copies on which the decoder raised anything but
                    CorruptValueError (out of fuzz_cases)
  worker            workers that died on their own
  siblings_left     siblings beyond one per key after the final read repair
  outcomes          operations by result: ok acknowledged; fail a typed error
                    (refused, or may have applied); info a timeout or untyped
                    error (may have applied)
  acked             acknowledged operations by kind: add, delete (with a score),
                    delete? (without one: the score is looked up), fanout, read"""


def _check(args: argparse.Namespace) -> int:
    _validate(args)
    tmpdir = None
    if url_given(args):
        url = store_url(args)
        print(f"store: {url}", flush=True)
    else:
        tmpdir = tempfile.mkdtemp(prefix="timak-check-")
        url = f"sqlite:///{tmpdir}/check.db"
        print(f"store: {url} (a temporary SQLite file, removed afterwards; "
              "--url checks another store)", flush=True)
    try:
        total = _runs(args, url)
    finally:
        if tmpdir is not None and not args.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
    print(LEGEND)
    if total.runs > 1:
        print(f"total: {total.details()}")
    print(total.summary(), flush=True)
    return 0 if total.ok else 1


def _runs(args: argparse.Namespace, url: str) -> CheckReport:
    # Imported here: `timak --help` and every other command start faster
    # without the checker (and multiprocessing) loaded.
    from .._check import CheckConfig, CheckReport, check

    seeds = random.Random(args.seed)
    ends = None if args.soak is None else time.monotonic() + args.soak
    total = CheckReport()
    run = 0
    while True:
        run += 1
        bucket = f"check-{uuid.uuid4().hex[:10]}"
        config = CheckConfig(
            url=url, workers=args.workers, ops=args.ops, keys=args.keys,
            max_items=args.max_items, seed=seeds.randrange(2**32), kills=args.kills,
            kill_every=args.kill_every, timeout=args.timeout, bucket=bucket,
            history_dir=None if args.history is None
            else os.path.join(args.history, f"run-{run}"),
            read_urls=tuple(args.read_url), check_reads=not args.final_only,
        )
        report = check(config, progress=functools.partial(_progress, run))
        _show(run, bucket, report)
        if report.ok and not args.keep:
            _remove(url, bucket, args.keys)
        total.absorb(report)
        if ends is None or time.monotonic() >= ends:
            return total


def _remove(url: str, bucket: str, keys: int) -> None:
    """Delete the keys a clean run wrote (``timak._check`` names them hot:0..)."""
    with connect(url) as backend:
        for i in range(keys):
            backend.delete(bucket, f"hot:{i}")


def _progress(run: int, line: str) -> None:
    print(f"run {run}: {line}", file=sys.stderr, flush=True)


def _show(run: int, bucket: str, report: CheckReport) -> None:
    print(f"run {run}: bucket {bucket}" + ("" if report.ok else " (kept for inspection)"))
    print(f"run {run}: {report.summary()}")
    print(f"run {run}: {report.details()}")
    for anomaly in report.anomalies[:_SHOWN]:
        print(f"  {anomaly}")
    if len(report.anomalies) > _SHOWN:
        print(f"  ... and {len(report.anomalies) - _SHOWN} more")
    if report.history_dir and not report.ok:
        print(f"  history kept in {report.history_dir}")
    sys.stdout.flush()
