"""``timak cassandra ...``: set up and look into a Cassandra store.

``timak cassandra init``
    Create the keyspace and table the URL names (``CREATE ... IF NOT
    EXISTS``) and say what was done. Exit 0, or 3 if the cluster is
    unreachable.
``timak cassandra schema``
    Print the CQL ``init`` would run, without connecting (for review or
    for running by hand with cqlsh).
``timak cassandra inspect BUCKET KEY``
    Read one key with tracing on: siblings, writers, and the tombstones the
    read scanned (the figure ``tombstone_warn_threshold`` applies to).
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import SplitResult

from ..backends import redact_url, split_url
from ..errors import ConfigError
from . import store_url

__all__ = ["register"]


def _cassandra_url(args: argparse.Namespace) -> SplitResult:
    url = store_url(args)
    parts = split_url(url)
    if parts.scheme != "cassandra":
        raise ConfigError(
            "`timak cassandra` needs a cassandra:// store URL (--url or TIMAK_URL), "
            f"got {redact_url(url)!r}"
        )
    return parts


def cmd_init(args: argparse.Namespace) -> int:
    from ..backends import cassandra

    with cassandra.from_url(_cassandra_url(args), create=True) as backend:
        for line in backend.schema_actions:
            print(line)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from ..backends import cassandra

    options = cassandra.parse_url(_cassandra_url(args))
    factor = int((options.replication or {}).get("replication_factor", 3))
    for statement in cassandra.schema_cql(options, replication_factor=factor):
        print(statement + ";")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from ..backends import cassandra

    with cassandra.from_url(_cassandra_url(args), create=False) as backend:
        found = backend.inspect(args.bucket, args.key)
    print(f"siblings:   {found.siblings} from {found.writers} writer(s)")
    print(f"scanned:    {found.live_rows} live rows, {found.tombstones} tombstone cells")
    print(f"consistency: {found.consistency}")
    for warning in found.warnings:
        print(f"warning:    {warning}")
    return 0


def register(commands: Any) -> None:
    """Add ``cassandra`` with its ``init``, ``schema`` and ``inspect`` subcommands."""
    parser = commands.add_parser(
        "cassandra",
        help="set up or inspect a Cassandra store",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cassandra_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: _usage(parser))

    init = sub.add_parser("init", help="create the keyspace and table (idempotent)")
    init.set_defaults(func=cmd_init)

    schema = sub.add_parser("schema", help="print the CQL that init runs")
    schema.set_defaults(func=cmd_schema)

    inspect = sub.add_parser("inspect", help="trace a read of one key")
    inspect.add_argument("bucket", help="bucket of the key, e.g. timelines")
    inspect.add_argument("key", help="the timeline key to read")
    inspect.set_defaults(func=cmd_inspect)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
