"""``timak add``, ``timak get``, ``timak delete``: one timeline from the shell."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..errors import InvalidDataError
from ..timelines import Timeline
from . import store_url

__all__ = ["register"]


def register(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bucket", default="timelines", help="bucket (default: timelines)")
    common.add_argument("--max-items", type=int, default=1000, help="capacity (default: 1000)")
    common.add_argument("--asc", action="store_true", help="oldest first")
    common.add_argument("--json", action="store_true", help="print records as JSON lines")
    common.add_argument("--int-id", action="store_true", help="treat ID as an integer")

    add = commands.add_parser("add", parents=[common], help="add an item to a timeline")
    add.add_argument("key")
    add.add_argument("id")
    add.add_argument("score", help="number, ISO-8601 datetime, or 'now'")
    add.add_argument("--data", help="obj_data as JSON")
    add.set_defaults(func=_add)

    get = commands.add_parser("get", parents=[common], help="print a timeline")
    get.add_argument("key")
    get.add_argument("--limit", type=int, help="print at most this many items")
    get.set_defaults(func=_get)

    delete = commands.add_parser("delete", parents=[common], help="delete an item")
    delete.add_argument("key")
    delete.add_argument("id")
    delete.add_argument("score", nargs="?", help="score of the delete (default: look it up)")
    delete.set_defaults(func=_delete)


def _timeline(args: argparse.Namespace) -> Timeline:
    return Timeline(
        connection=store_url(args),
        bucket=args.bucket,
        max_items=args.max_items,
        order="asc" if args.asc else "desc",
    )


def _id(args: argparse.Namespace) -> int | str:
    if args.int_id:
        try:
            return int(args.id)
        except ValueError:
            raise InvalidDataError(f"--int-id given but ID {args.id!r} is not an integer") from None
    return str(args.id)


def _score(text: str) -> Any:
    if text == "now":
        return time.time_ns() // 1000
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text  # an ISO-8601 datetime; Timeline parses and checks it


def _print(tl: Timeline, args: argparse.Namespace, key: str, limit: int | None = None) -> int:
    records = tl.get(key, raw=True)
    shown = [r for r in records if not r.deleted][:limit]
    for r in shown:
        if args.json:
            print(json.dumps({"id": r.id, "score": r.score, "data": r.data}, default=repr))
        else:
            print(r.id if r.data is None else json.dumps(r.data, default=repr))
    return 0


def _add(args: argparse.Namespace) -> int:
    data = None
    if args.data is not None:
        try:
            data = json.loads(args.data)
        except json.JSONDecodeError as exc:
            raise InvalidDataError(f"--data is not valid JSON: {exc}") from None
    with _timeline(args) as tl:
        tl.add(args.key, _id(args), _score(args.score), data)
        return _print(tl, args, args.key)


def _get(args: argparse.Namespace) -> int:
    with _timeline(args) as tl:
        return _print(tl, args, args.key, args.limit)


def _delete(args: argparse.Namespace) -> int:
    with _timeline(args) as tl:
        score = None if args.score is None else _score(args.score)
        tl.delete(args.key, _id(args), score)
        return _print(tl, args, args.key)
