"""``timak add``, ``get``, ``range``, ``count``, ``delete``: one timeline from the shell.

``get`` and ``range`` print one line per item: id, score and data in columns
(a header first, unless ``--no-header``), or with ``--json`` JSON Lines: one
JSON object per line, ``{"id", "score", "datetime", "data"}`` (so a JSON
parser reads each line, not the whole output: ``python -m json.tool
--json-lines``). When they print one page (``--limit`` or ``--cursor``),
``--json`` ends with ``{"next_cursor": CURSOR}``, ``null`` after the last
page, and without ``--json`` the next page's command goes to stderr.
``count`` prints the number of visible items. ``add`` and ``delete`` print what
changed and how many items the timeline holds (``--print-timeline`` prints
the whole timeline after it, as timak 0.1 did).

Writes from the shell note the key in the global change feed (``--no-feed``
to skip), so ``timak watch`` without keys sees them as it sees an
application's writes made with ``Timeline(..., feed=Feed(...))``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from .._cursors import decode_page_cursor, encode_cursor
from .._records import order_key
from .._scores import to_score
from ..backends import connect
from ..errors import ConfigError, InvalidDataError, InvalidScoreError, ValueTooLargeError
from ..feed import DEFAULT_BUCKET, Feed
from ..timelines import MAX_ITEM_BYTES, Timeline
from ..value import Record
from . import invocation, store_url
from ._output import SCORE_MODES, data_text, datetime_text, dump_json, print_table, score_text
from ._output import text as shown

__all__ = ["parse_score", "parse_size", "register"]

#: Reading a whole timeline: more than any capacity.
_ALL = 2**31


def positive_int(value: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def parse_size(value: str) -> int:
    """An argparse type: bytes, as ``65536``, ``256K``, ``5MB`` or ``1MiB``
    (K and M are 1024 and 1024*1024)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)(?:i?[bB])?\s*", value)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size such as 65536, 256K or 5MB, "
                                         f"got {value!r}")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2).lower()]
    size = int(match.group(1)) * scale
    if size < 1:
        raise argparse.ArgumentTypeError("a size must be at least 1 byte")
    return size


def register(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bucket", default="timelines", help="bucket (default: timelines)")
    common.add_argument(
        "--max-items", type=positive_int, default=None, metavar="N",
        help="capacity for a new key (default: 1000); reads always use the capacity "
        "stored with the key, and a write with N to a key stored at another "
        "capacity is refused (exit 2)",
    )
    common.add_argument(
        "--json", action="store_true",
        help='print JSON Lines, one object per line (not one JSON document: read it '
        'with `python -m json.tool --json-lines` or `jq`): {"id", "score", '
        '"datetime", "data"} per item; a page ends with {"next_cursor": CURSOR or null}',
    )
    common.add_argument(
        "--scores", choices=SCORE_MODES, default="auto",
        help="how to show scores: auto (default) shows an integer score as an ISO "
        "datetime when it is the microseconds of a date in 2001-2099; iso shows every "
        "score as a datetime; raw shows numbers",
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--asc", action="store_true", help="oldest first")
    listing.add_argument("--no-header", action="store_true",
                         help="leave out the column header")
    writing = argparse.ArgumentParser(add_help=False)
    writing.add_argument("--int-id", action="store_true",
                         help="ID is an integer (default: a string)")
    writing.add_argument(
        "--print-timeline", action="store_true",
        help="after the change, print the whole timeline as `get` does",
    )
    writing.add_argument(
        "--no-feed", action="store_true",
        help="do not note the write in the global change feed (which `timak watch` "
        "without keys follows)",
    )
    writing.add_argument(
        "--feed-bucket", default=DEFAULT_BUCKET,
        help=f"change feed bucket (default: {DEFAULT_BUCKET})",
    )
    score_help = ("number, ISO-8601 datetime (2024-05-01T12:00:00Z) or 'now'; negative "
                  "numbers such as -1e5 work as they are")

    add = commands.add_parser(
        "add", parents=[common, listing, writing], help="add an item to a timeline",
        description="Add (or move) item ID on timeline KEY at SCORE. An item already "
        "there at a higher score, or deleted at a score at least as high, stays as it "
        "is: writes are decided by score. Prints what happened and the item count.",
    )
    add.add_argument("key", metavar="KEY", help="timeline key")
    add.add_argument("id", metavar="ID", help="item id")
    add.add_argument("score", metavar="SCORE", help=score_help)
    add.add_argument(
        "--data", metavar="JSON",
        help="obj_data as JSON; @FILE reads it from FILE, - from stdin. NaN and "
        "Infinity are refused",
    )
    add.add_argument(
        "--max-item-bytes", type=parse_size, default=MAX_ITEM_BYTES, metavar="SIZE",
        help=f"largest encoded item (default: {MAX_ITEM_BYTES // 1024}K); an item may "
        "also take at most max-value-bytes / (max-items + 48): 15K per item at the "
        "default capacity 1,000, ~150 bytes at 100,000",
    )
    add.add_argument(
        "--max-value-bytes", type=parse_size, default=None, metavar="SIZE",
        help="largest encoded timeline (default: the store's bound, 15MB on Cassandra, "
        "16MB on memory, SQLite and Riak)",
    )
    add.set_defaults(func=_add)

    get = commands.add_parser(
        "get", parents=[common, listing], help="print a timeline",
        description="Print the items of timeline KEY, newest first: id, score and data. "
        "With --limit, print one page and, on stderr, the command for the next page.",
    )
    get.add_argument("key", metavar="KEY", help="timeline key")
    get.add_argument("--limit", type=positive_int, metavar="N",
                     help="print at most N items, and the cursor of the next page")
    get.add_argument("--cursor", help="start after this cursor (printed by --limit)")
    get.set_defaults(func=_get)

    ranged = commands.add_parser(
        "range", parents=[common, listing], help="print the items between two scores",
        description="Print the items of timeline KEY with START <= score <= STOP, newest "
        "first, as `get` does. Either bound may be left out. Scores are numbers, ISO-8601 "
        "datetimes or 'now'; a datetime is stored as microseconds since the epoch, so on "
        "a timeline of datetimes a numeric bound counts microseconds. START after STOP "
        "exits 2.",
    )
    ranged.add_argument("key", metavar="KEY", help="timeline key")
    ranged.add_argument("--start", metavar="SCORE", help="lowest score (default: none)")
    ranged.add_argument("--stop", metavar="SCORE", help="highest score (default: none)")
    ranged.add_argument("--limit", type=positive_int, metavar="N",
                        help="print at most N items, and the cursor of the next page")
    ranged.add_argument("--cursor", help="start after this cursor (printed by --limit)")
    ranged.set_defaults(func=_range)

    count = commands.add_parser(
        "count", parents=[common], help="print how many items a timeline holds",
        description="Print how many visible (not deleted) items timeline KEY holds: the "
        'number alone, or with --json {"key": KEY, "count": N}.',
    )
    count.add_argument("key", metavar="KEY", help="timeline key")
    count.set_defaults(func=_count)

    delete = commands.add_parser(
        "delete", parents=[common, listing, writing], help="delete an item",
        description="Delete item ID from timeline KEY. Without SCORE the item's score is "
        "looked up (nothing is written if it is not there); with SCORE the delete wins "
        "over adds at that score or lower. Deleting an absent item exits 0.",
    )
    delete.add_argument("key", metavar="KEY", help="timeline key")
    delete.add_argument("id", metavar="ID", help="item id")
    delete.add_argument(
        "score", nargs="?", metavar="SCORE",
        help="score of the delete (default: look it up); " + score_help,
    )
    delete.set_defaults(func=_delete)


@contextlib.contextmanager
def _timeline(args: argparse.Namespace, write: bool = False) -> Iterator[Timeline]:
    """The Timeline the arguments describe; writes note the feed unless --no-feed."""
    with connect(store_url(args)) as backend:
        feed = None if not write or args.no_feed else Feed(backend, args.feed_bucket)
        sizes = {}
        if hasattr(args, "max_item_bytes"):
            sizes = {"max_item_bytes": args.max_item_bytes,
                     "max_value_bytes": args.max_value_bytes}
        yield Timeline(
            connection=backend, bucket=args.bucket, max_items=args.max_items,
            order="asc" if getattr(args, "asc", False) else "desc", feed=feed, **sizes,
        )


def _id(args: argparse.Namespace) -> int | str:
    if args.int_id:
        try:
            return int(args.id)
        except ValueError:
            raise InvalidDataError(f"--int-id given but ID {args.id!r} is not an integer") from None
    return str(args.id)


def parse_score(text: str) -> Any:
    """A score from the shell: an int, a float, ``now`` (µs), or an ISO-8601
    datetime (left for ``Timeline`` to parse). Non-finite numbers raise."""
    if text == "now":
        return time.time_ns() // 1000
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        raise InvalidScoreError(f"score {text!r} is not a finite number; scores must be finite")
    return number


def _refuse_constant(name: str) -> Any:
    raise InvalidDataError(f"--data holds {name}, which is not valid JSON; "
                           "timak stores finite numbers only")


def read_data(spec: str) -> Any:
    """``--data``: JSON text, ``@FILE`` or ``-`` (stdin), parsed strictly."""
    where = "--data"
    if spec == "-":
        where, spec = "--data from stdin", sys.stdin.read()
    elif spec.startswith("@"):
        try:
            with open(spec[1:], encoding="utf-8") as file:
                where, spec = f"--data file {spec[1:]!r}", file.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidDataError(f"cannot read --data {spec!r}: {exc}") from None
    try:
        return json.loads(spec, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidDataError(f"{where} is not valid JSON: {exc}") from None


def _row(record: Record, mode: str) -> list[str]:
    return [shown(str(record.id)), score_text(record.score, mode), data_text(record.data)]


def _record_json(record: Record, mode: str) -> str:
    return dump_json({
        "id": record.id, "score": record.score,
        "datetime": datetime_text(record.score, mode), "data": record.data,
    })


def _print_records(records: list[Record], args: argparse.Namespace) -> None:
    if args.json:
        for record in records:
            print(_record_json(record, args.scores))
    elif records:
        header = None if args.no_header else ["ID", "SCORE", "DATA"]
        print_table([_row(r, args.scores) for r in records], header)


def _visible_page(tl: Timeline, key: str, limit: int, cursor: str | None
                  ) -> tuple[list[Record], str | None]:
    """Up to ``limit`` visible records after ``cursor``, and the next cursor.

    ``Timeline.page(raw=True)`` also returns tombstones; pages are asked for
    again from its cursor until ``limit`` visible records are found, so the
    cursor stays Timeline's own."""
    found: list[Record] = []
    while len(found) < limit:
        page = tl.page(key, limit=limit - len(found), cursor=cursor, raw=True)
        found += [r for r in page.items if not r.deleted]
        cursor = page.cursor
        if cursor is None:
            break
    if cursor is not None and not tl.page(key, limit=1, cursor=cursor).items:
        cursor = None  # only tombstones follow
    return found, cursor


def _get(args: argparse.Namespace) -> int:
    with _timeline(args) as tl:
        if args.limit is None and args.cursor is None:
            records = [r for r in tl.get(args.key, raw=True) if not r.deleted]
            next_cursor = None
        else:
            records, next_cursor = _visible_page(tl, args.key, args.limit or _ALL, args.cursor)
    return _print_listing(records, next_cursor, args)


def _range(args: argparse.Namespace) -> int:
    # Each bound on its own: a shell user may give one with a zone and one
    # without (read as UTC), which Timeline.range refuses to mix.
    start = None if args.start is None else to_score(parse_score(args.start))
    stop = None if args.stop is None else to_score(parse_score(args.stop))
    if start is not None and stop is not None and start > stop:
        raise InvalidScoreError(f"--start {args.start} is after --stop {args.stop}")
    after = None if args.cursor is None else decode_page_cursor(args.cursor)
    with _timeline(args) as tl:
        records = [r for r in tl.range(args.key, start, stop, raw=True) if not r.deleted]
    # One read, paged here with Timeline.page's cursors: the position of the
    # last item printed, so items arriving on top never shift a later page.
    if after is not None:
        if tl.order == "desc":
            records = [r for r in records if order_key(r) < after]
        else:
            records = [r for r in records if order_key(r) > after]
    next_cursor = None
    if args.limit is not None and len(records) > args.limit:
        del records[args.limit:]
        next_cursor = encode_cursor("p", list(order_key(records[-1])))
    return _print_listing(records, next_cursor, args)


def _count(args: argparse.Namespace) -> int:
    with _timeline(args) as tl:
        count = tl.count(args.key)
    print(dump_json({"key": args.key, "count": count}) if args.json else count)
    return 0


def _print_listing(records: list[Record], next_cursor: str | None,
                   args: argparse.Namespace) -> int:
    """Print what ``get`` or ``range`` found, and where the next page starts."""
    _print_records(records, args)
    paged = args.limit is not None or args.cursor is not None
    if args.json and paged:
        print(dump_json({"next_cursor": next_cursor}))
    if not records and not args.json:
        print(f"{shown(args.key)}: no items" + (" after this cursor" if args.cursor else ""),
              file=sys.stderr)
    if next_cursor is not None:
        sys.stdout.flush()  # the items first, where both streams go to one place
        print(f"next page: {shlex.join(['timak', *_with_cursor(invocation, next_cursor)])}",
              file=sys.stderr)
    return 0


def _with_cursor(words: list[str], cursor: str) -> list[str]:
    """The command line ``words`` with its ``--cursor`` replaced by ``cursor``."""
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--cursor":
            skip = True
        elif not word.startswith("--cursor="):
            kept.append(word)
    return [*kept, "--cursor", cursor]


def _report(args: argparse.Namespace, op: str, score: Any, result: Sequence[Record]) -> int:
    """Say what the write did: ``result`` is the timeline after it, tombstones too."""
    item_id = _id(args)
    mine = next((r for r in result if r.id == item_id), None)
    count = sum(1 for r in result if not r.deleted)
    key = shown(args.key)
    where = f"{key} now holds {count} item{'s' if count != 1 else ''}"
    if mine is None:
        applied = False
        message = (f"no item {shown(str(item_id))} on {key}: nothing deleted ({where})"
                   if op == "delete" else
                   f"{shown(str(item_id))} fell off the end: {key} keeps only its newest "
                   f"{len(result)} records, all newer ({where})")
    elif mine.deleted == (op == "delete") and (score is None or mine.score == score):
        applied = True
        verb = "deleted" if op == "delete" else "added"
        message = (f"{verb} {shown(str(item_id))} at {score_text(mine.score, args.scores)} "
                   f"{'from' if op == 'delete' else 'to'} {key} ({where})")
    else:
        applied = False
        state = "deleted" if mine.deleted else "visible"
        verb = "deleted" if op == "delete" else "added"
        message = (f"not {verb}: {key} keeps {shown(str(item_id))} {state} at "
                   f"{score_text(mine.score, args.scores)}, which wins by score ({where})")
    if args.json:
        print(dump_json({"op": op, "applied": applied, "key": args.key, "id": item_id,
                         "score": None if mine is None else mine.score,
                         "datetime": None if mine is None
                         else datetime_text(mine.score, args.scores),
                         "deleted": None if mine is None else mine.deleted,
                         "count": count, "message": message}))
    else:
        print(message)
    if args.print_timeline:
        _print_records([r for r in result if not r.deleted], args)
    return 0


#: How the engine tells a program to adopt a key's stored capacity: the
#: sentence from "Use max_items=None" (or "Use Timeline(max_items=None)") on.
_PYTHON_CAPACITY_ADVICE = re.compile(r"Use (?:Timeline\()?max_items=None.*$", re.DOTALL)


@contextlib.contextmanager
def _shell_advice() -> Iterator[None]:
    """Turn the Python advice of a capacity mismatch into the shell's: the
    shell adopts the stored capacity when --max-items is left out."""
    try:
        yield
    except ConfigError as exc:
        message = str(exc)
        if "holds a timeline of capacity" not in message \
                or not _PYTHON_CAPACITY_ADVICE.search(message):
            raise
        message = message.replace("this Timeline has max_items=", "--max-items is ")
        raise ConfigError(_PYTHON_CAPACITY_ADVICE.sub(
            "Leave out --max-items to write at the capacity the key stores", message)) from None


def _add(args: argparse.Namespace) -> int:
    data = None if args.data is None else read_data(args.data)
    item_id, score = _id(args), parse_score(args.score)
    with _timeline(args, write=True) as tl, _shell_advice():
        try:
            result = tl.add(args.key, item_id, score, data, raw=True)
        except ValueTooLargeError as exc:
            raise ValueTooLargeError(f"{exc} (the options: --max-items, --max-item-bytes, "
                                     "--max-value-bytes)") from None
    return _report(args, "add", to_score(score), result)


def _delete(args: argparse.Namespace) -> int:
    item_id = _id(args)
    score = None if args.score is None else parse_score(args.score)
    with _timeline(args, write=True) as tl, _shell_advice():
        result = tl.delete(args.key, item_id, score, raw=True)
    return _report(args, "delete", None if score is None else to_score(score), result)
