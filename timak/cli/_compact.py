"""``timak compact``: fold the siblings of every key in a bucket (the sweep)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..backends import Backend
from ..backends.base import capabilities
from ..timelines import Timeline
from . import store_url
from ._basic import positive_int
from ._output import text
from ._progress import Progress

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "compact",
        help="merge siblings of every key in a bucket",
        description="Fold every key of a bucket into one sibling. Keys that only get "
        "blind writes and are rarely read need this now and then. Listing keys is a "
        "full scan on Cassandra and Riak: run it off-peak.",
    )
    parser.add_argument("--bucket", default="timelines",
                        help="bucket whose keys to fold (default: timelines)")
    parser.add_argument("--max-items", type=positive_int, default=None, metavar="N",
                        help="capacity for old-format keys that state none (default: "
                        "1000, or more if they hold more); folds keep each key's "
                        "stored capacity")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="N",
                        help="fold N keys at once (default 1); on Cassandra and Riak a "
                        "sweep is bound by round trips and runs up to N times faster")
    parser.set_defaults(func=_compact)


def _say_empty(backend: Backend, bucket: str) -> None:
    """A bucket without keys is most often a misspelt one: say so, and name
    the buckets there are where the store can list them."""
    message = f"timak compact: bucket {text(bucket)} holds no keys"
    if capabilities(backend).buckets:
        others = backend.buckets()  # type: ignore[attr-defined]
        message += ("; buckets on this store: " + ", ".join(map(text, others))
                    if others else "; this store holds no keys at all")
    print(message, file=sys.stderr)


def _compact(args: argparse.Namespace) -> int:
    progress = Progress("keys swept")
    with Timeline(connection=store_url(args), bucket=args.bucket,
                  max_items=args.max_items) as tl:
        stats = tl.compact(progress=progress.update, workers=args.workers)
        progress.finish()
        if stats.keys == 0:
            _say_empty(tl.connection, args.bucket)
    print(f"keys={stats.keys} folded={stats.folded} siblings_merged={stats.siblings_merged} "
          f"corrupt={stats.corrupt}")
    print("(keys swept; keys that held more than one sibling and were folded; the siblings "
          "those held; keys left alone because a sibling does not decode: "
          "`timak get KEY` names it)")
    return 1 if stats.corrupt else 0
