"""``timak watch``: tail the changes of some timelines, or of all, in a terminal.

Without ``--from-start`` it prints only what arrives after it started: it
first reads where each timeline (or the feed) stands, and polls from there,
so the skew window that makes polling lose nothing never shows older items.

A store error does not end it: it says so on stderr, waits (0.5 s, doubling
up to 30 s), reconnects and goes on from its cursors, so nothing is missed.
``--exit-on-error`` exits 3 at the first error instead.

Once it has read where it starts from, it says ``timak watch: ready ...``
on stderr: every write after that line is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..backends import Backend, Fetched, StoreResult, connect
from ..backends.base import scan_keys
from ..errors import BackendError, ConfigError
from ..feed import DEFAULT_BUCKET, Feed
from ..timelines import Change, Timeline
from . import store_url
from ._basic import positive_int
from ._output import SCORE_MODES, data_text, datetime_text, dump_json, iso, score_text, text

__all__ = ["READY", "format_change", "register"]

#: Printed on stderr once watch has read where it starts from.
READY = "ready: printing changes as they arrive (Ctrl-C to stop)"

#: Waits between attempts after a store error: 0.5 s doubling up to this.
MAX_BACKOFF = 30.0


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "watch",
        help="print changes to timelines as they arrive",
        description="Poll timelines and print one line per add or delete: arrival time, "
        "key, add/delete, id, score (as a datetime where it is one) and data, tab "
        "separated. With KEYs, those timelines are polled. Without, the global change "
        "feed says which keys changed: it sees writes made by `timak add`/`delete` and by "
        "programs whose Timeline was made with feed=Feed(...), and nothing else. Runs "
        "until interrupted (Ctrl-C exits 130); store errors are retried.",
    )
    parser.add_argument("keys", nargs="*", metavar="KEY", help="timelines to watch")
    parser.add_argument("--bucket", default="timelines", help="bucket (default: timelines)")
    parser.add_argument(
        "--feed-bucket", default=DEFAULT_BUCKET, help=f"feed bucket (default: {DEFAULT_BUCKET})"
    )
    parser.add_argument(
        "--max-items", type=positive_int, default=None, metavar="N",
        help="capacity for old-format keys that state none (default: 1000); "
        "reads use each key's stored capacity",
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS",
        help="seconds between polls (default: 1)",
    )
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="first print what the timelines hold (with KEYs) or what the feed still "
        "holds (without); default: only changes that arrive after watch started",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument(
        "--scores", choices=SCORE_MODES, default="auto",
        help="how to show scores (see `timak get --help`; default: auto)",
    )
    parser.add_argument(
        "--exit-on-error", action="store_true",
        help="exit 3 at the first store error instead of retrying",
    )
    parser.set_defaults(func=_watch)


class _Backoff:
    """Waits after store errors: 0.5 s, doubling up to ``MAX_BACKOFF``, back
    to 0.5 s once the store answers again."""

    def __init__(self) -> None:
        self.delay, self.failing = 0.5, False

    def failed(self, exc: BackendError) -> None:
        print(f"timak watch: store error ({type(exc).__name__}: {exc}); "
              f"retrying in {self.delay:g} s (Ctrl-C to stop)", file=sys.stderr, flush=True)
        time.sleep(self.delay)
        self.delay, self.failing = min(self.delay * 2, MAX_BACKOFF), True

    def answered(self) -> None:
        if self.failing:
            self.delay, self.failing = 0.5, False
            print("timak watch: the store answers again; resuming from the cursors",
                  file=sys.stderr, flush=True)


class _Noticing(Backend):
    """A backend that tells a ``_Backoff`` whenever its store answers a read."""

    def __init__(self, inner: Backend, backoff: _Backoff) -> None:
        self.inner, self.backoff = inner, backoff

    def _answered(self) -> None:
        self.backoff.answered()

    def __getattr__(self, name: str) -> Any:
        # Anything beyond the contract (a store's own extras) is the inner one's.
        return getattr(self.inner, name)

    def fetch(self, bucket: str, key: str) -> Fetched:
        fetched = self.inner.fetch(bucket, key)
        self._answered()
        return fetched

    def fetch_many(self, bucket: str, keys: Iterable[str]) -> list[Fetched]:
        fetched = self.inner.fetch_many(bucket, keys)
        self._answered()
        return fetched

    def store(self, bucket: str, key: str, value: bytes, context: Any = None) -> StoreResult:
        return self.inner.store(bucket, key, value, context)

    def store_many(self, bucket: str, entries: Iterable[tuple[str, bytes]]
                   ) -> list[StoreResult]:
        return self.inner.store_many(bucket, entries)

    def delete(self, bucket: str, key: str, context: Any = None) -> None:
        self.inner.delete(bucket, key, context)

    def keys(self, bucket: str) -> Iterator[str]:
        return scan_keys(self.inner, bucket, "listing keys")

    def close(self) -> None:
        self.inner.close()


def _watch(args: argparse.Namespace) -> int:
    if args.interval < 0:
        print("timak: --interval must not be negative", file=sys.stderr)
        return 2
    url = store_url(args)
    if url.startswith("memory:"):
        raise ConfigError("timak watch follows writes of other processes, and a memory:// "
                          "store is private to one process: use a file or a server URL")
    start = "from the start" if args.from_start else "from now on"
    if args.keys:
        print(f"timak watch: following timelines {', '.join(map(text, args.keys))} of "
              f"bucket {args.bucket} on {url}, {start}", file=sys.stderr, flush=True)
    else:
        print(f"timak watch: following the change feed ({args.feed_bucket}) of bucket "
              f"{args.bucket} on {url}, {start}.\n  The feed lists writes by `timak add`/"
              "`delete` and by Timelines made with feed=Feed(...); other writes are not "
              "seen: name KEYs to poll timelines directly.", file=sys.stderr, flush=True)
    cursors: dict[str, str] | None = None
    backoff = _Backoff()
    while True:
        try:
            with _Noticing(connect(url), backoff) as backend:
                feed = None if args.keys else Feed(backend, args.feed_bucket)
                tl = Timeline(backend, args.bucket, max_items=args.max_items, feed=feed)
                if cursors is None:
                    cursors = _start(tl, args)
                    # Said once the start cursors are taken: every write after
                    # this line is printed (scripts and tests wait for it).
                    print(f"timak watch: {READY}", file=sys.stderr, flush=True)
                for change in tl.watch(args.keys or None, args.interval, cursors=cursors):
                    print(format_change(change, args.json, args.scores), flush=True)
        except BackendError as exc:
            if args.exit_on_error:
                raise
            backoff.failed(exc)
        except BrokenPipeError:
            # The reader went away (`timak watch | head`): a normal end. Point
            # stdout at devnull so the interpreter's final flush stays quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0


def _start(tl: Timeline, args: argparse.Namespace) -> dict[str, str]:
    """The cursors to begin from: everything already there (with
    ``--from-start``, after printing it), or only what arrives from now."""
    cursors: dict[str, str] = {}
    feed = tl.feed
    if isinstance(feed, Feed):
        if args.from_start:
            cursors[""] = feed.oldest_cursor(bucket=args.bucket)
            return cursors
        # Keys written within the skew window may still hold items from
        # before now: start each of them at what it holds now.
        keys, cursors[""] = feed.poll(bucket=args.bucket)
    else:
        keys = args.keys
    for key in keys:
        history = tl.changes(key)
        if args.from_start:
            for change in history.changes:
                print(format_change(change, args.json, args.scores), flush=True)
        cursors[key] = history.cursor
    return cursors


def format_change(change: Change, as_json: bool = False, scores: str = "auto") -> str:
    """One line for ``change``: tab-separated fields, or a JSON object."""
    arrived = iso(change.arrived)
    op = "delete" if change.deleted else "add"
    if as_json:
        return dump_json({
            "arrived": arrived, "key": change.key, "op": op, "id": change.id,
            "score": change.score, "datetime": datetime_text(change.score, scores),
            "data": change.data,
        })
    fields = [arrived, text(change.key), op, text(str(change.id)),
              score_text(change.score, scores), data_text(change.data)]
    return "\t".join(fields)
