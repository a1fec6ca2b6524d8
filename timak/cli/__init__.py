"""The ``timak`` command line. Each subcommand lives in its own module here.

A command module defines ``register(commands)``, which adds one or more
sub-parsers to ``commands`` and sets ``func`` on each: a callable taking the
parsed arguments and returning the exit code. The store URL comes from
``--url``, else ``TIMAK_URL``, else ``DEFAULT_URL``.

Exit codes: 0 success, 1 a check or command failed, 2 usage error,
3 the store could not be reached, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..backends import DEFAULT_URL, default_url
from ..errors import InvalidInputError, TimakError, UnavailableError

__all__ = ["DEFAULT_URL", "main", "store_url"]


#: Modules in this package that register subcommands, in ``--help`` order.
COMMAND_MODULES = ("basic", "demo", "compact", "watch", "cassandra", "riak", "bench", "check")


def store_url(args: argparse.Namespace) -> str:
    """The store URL for this invocation: ``--url``, ``TIMAK_URL``, or the default."""
    url: str = args.url or default_url()
    return url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="timak",
        description="Bounded, mergeable timelines on Dynamo-style key-value stores.",
        epilog="The store is --url, else $TIMAK_URL, else " + DEFAULT_URL + ".",
    )
    parser.add_argument(
        "--url", help="store URL, e.g. sqlite:///timak.db or cassandra://127.0.0.1/ks"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        # Command modules import their drivers lazily, inside the command, so
        # `timak --help` works without any optional extra installed.
        importlib.import_module(f"{__name__}.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except InvalidInputError as exc:
        print(f"timak: {exc}", file=sys.stderr)
        return 2
    except UnavailableError as exc:
        print(f"timak: store unavailable: {exc}", file=sys.stderr)
        return 3
    except TimakError as exc:
        print(f"timak: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
