"""``timak watch``: tail the changes of some timelines, or of all, in a terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..backends import connect
from ..feed import DEFAULT_BUCKET, Feed
from ..scores import to_datetime
from ..timelines import Change, Timeline
from . import store_url

__all__ = ["format_change", "register"]

# Integer scores in this range (years 2001 to 2100 in µs) are shown as datetimes.
_DATETIME_SCORES = (978_307_200_000_000, 4_102_444_800_000_000)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "watch",
        help="print changes to timelines as they arrive",
        description="Poll timelines and print one line per add or delete: arrival time, "
        "key, add/delete, id, score (as a datetime where it is one) and data. With KEYs, "
        "those timelines are polled; without, the global change feed says which keys "
        "changed, which only works if every writer was made with "
        "Timeline(..., feed=Feed(...)). Runs until interrupted (Ctrl-C exits 130).",
    )
    parser.add_argument("keys", nargs="*", metavar="KEY", help="timelines to watch")
    parser.add_argument("--bucket", default="timelines", help="bucket (default: timelines)")
    parser.add_argument(
        "--feed-bucket", default=DEFAULT_BUCKET, help=f"feed bucket (default: {DEFAULT_BUCKET})"
    )
    parser.add_argument("--max-items", type=int, default=1000, help="capacity (default: 1000)")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between polls (default: 1)"
    )
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="first print what the timelines hold (with KEYs) or what the feed still "
        "holds (without); default: only changes from now on",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.set_defaults(func=_watch)


def _watch(args: argparse.Namespace) -> int:
    if args.interval < 0:
        print("timak: --interval must not be negative", file=sys.stderr)
        return 2
    with connect(store_url(args)) as backend:
        feed = None if args.keys else Feed(backend, args.feed_bucket)
        tl = Timeline(backend, args.bucket, max_items=args.max_items, feed=feed)
        cursors: dict[str, str] = {}
        try:
            if args.from_start:
                for key in args.keys:
                    history = tl.changes(key)
                    _print_all(history.changes, args.json)
                    cursors[key] = history.cursor
                if feed is not None:
                    cursors[""] = feed.oldest_cursor(bucket=args.bucket)
            for change in tl.watch(args.keys or None, args.interval, cursors=cursors):
                _print_all([change], args.json)
        except BrokenPipeError:
            # The reader went away (`timak watch | head`): a normal end. Point
            # stdout at devnull so the interpreter's final flush stays quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _print_all(changes: list[Change], as_json: bool) -> None:
    for change in changes:
        print(format_change(change, as_json), flush=True)


def format_change(change: Change, as_json: bool = False) -> str:
    """One line for ``change``: tab-separated fields, or a JSON object."""
    arrived = _iso(change.arrived)
    when = _score_datetime(change.score)
    op = "delete" if change.deleted else "add"
    if as_json:
        return json.dumps(
            {
                "arrived": arrived,
                "key": change.key,
                "op": op,
                "id": change.id,
                "score": change.score,
                "datetime": when,
                "data": change.data,
            },
            default=repr,
        )
    data = "-" if change.data is None else json.dumps(change.data, default=repr)
    fields = [arrived, _text(change.key), op, _text(str(change.id)), when or str(change.score)]
    return "\t".join([*fields, data])


def _iso(micros: int) -> str:
    return to_datetime(micros).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _score_datetime(score: int | float) -> str | None:
    if isinstance(score, int) and _DATETIME_SCORES[0] <= score < _DATETIME_SCORES[1]:
        return _iso(score)
    return None


def _text(text: str) -> str:
    # Keys and ids may hold tabs or newlines; quote those so a line stays a line.
    return text if text.isprintable() else json.dumps(text)
