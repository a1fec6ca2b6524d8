"""The ``timak`` command line. Each subcommand lives in its own private module
here (``_basic``, ``_demo`` ...); ``main`` is the public face.

A command module defines ``register(commands)``, which adds one or more
sub-parsers to ``commands`` and sets ``func`` on each: a callable taking the
parsed arguments and returning the exit code. Every sub-parser is a
``CommandParser``, so the global options (``--url``) are accepted before or
after any subcommand. The store URL comes from ``--url``, else
``TIMAK_URL``, else ``DEFAULT_URL``.

Exit codes (``EXIT_CODES``): 0 success, 1 a check or command failed,
2 bad input or usage, 3 the store could not be reached, 130 interrupted.
Ctrl-C ends every command within about a second, even one that waits in a
driver's C code (``_interrupt``).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..backends import DEFAULT_URL, default_url
from ..errors import BackendTimeoutError, InvalidInputError, TimakError, UnavailableError
from ._interrupt import prompt_interrupts

__all__ = [
    "EXIT_CODES",
    "build_parser",
    "main",
]


#: Modules in this package that register subcommands, in ``--help`` order.
COMMAND_MODULES = (
    "_basic", "_demo", "_compact", "_watch", "_serve", "_cassandra", "_riak", "_bench",
    "_check",
)

#: What each exit status means; printed by ``timak --help``.
EXIT_CODES = {
    0: "success",
    1: "a check or command failed (e.g. data lost, corrupt value)",
    2: "bad input or usage (nothing was written)",
    3: "the store could not be reached, or did not answer in time",
    130: "interrupted (Ctrl-C)",
}

# argparse treats "-1e5" and "-inf" as unknown options: its own pattern for
# negative numbers knows only "-5" and "-.5". Scores may be any of these.
_NEGATIVE_NUMBER = re.compile(
    r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE
)


#: The arguments of this invocation (for messages that repeat the command).
invocation: list[str] = []


def store_url(args: argparse.Namespace) -> str:
    """The store URL for this invocation: ``--url``, ``TIMAK_URL``, or the default."""
    url: str = getattr(args, "url", None) or default_url()
    return url


def url_given(args: argparse.Namespace) -> bool:
    """True if the user named a store (``--url`` or ``TIMAK_URL``)."""
    return bool(getattr(args, "url", None)) or default_url() != DEFAULT_URL


def add_global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """The options every command takes, before or after the subcommand.

    Sub-parsers pass ``argparse.SUPPRESS`` as ``default``: a subcommand that
    was not given ``--url`` then leaves the top-level value alone instead of
    overwriting it with its own default.
    """
    parser.add_argument(
        "--url", default=default, metavar="URL",
        help="store URL, e.g. sqlite:///timak.db, sqlite:////abs/path.db, memory://, "
        "cassandra://HOST/KEYSPACE, riak://HOST:8098/ (default: $TIMAK_URL, else "
        f"{DEFAULT_URL})",
    )


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reads negative numbers such as ``-1e5`` as
    values rather than options, prints help without the reStructuredText
    markup of the docstrings it is built from, and points at ``--`` when an
    unknown option looks like a number."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def format_help(self) -> str:
        return plain(super().format_help())

    def error(self, message: str) -> Any:
        if message.startswith(("unrecognized arguments", "the following arguments")) and any(
            re.match(r"-(?:[\d.]|inf|nan)", arg, re.IGNORECASE) for arg in invocation
        ):
            message += (
                "\n(a negative number? put `--` before it, after the options: "
                "timak add KEY ID -- -1.5e5)"
            )
        super().error(message)


class CommandParser(Parser):
    """The parser of every subcommand (nested ones too: argparse makes
    sub-parsers of the parent's class). It takes the global options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # "resolve": a command may define its own --url (with SUPPRESS too).
        kwargs.setdefault("conflict_handler", "resolve")
        super().__init__(*args, **kwargs)
        add_global_options(self, argparse.SUPPRESS)


def plain(text: str) -> str:
    """``text`` without reStructuredText markup (double backticks, ``::``)."""
    return text.replace("``", "").replace("::\n", ":\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="timak",
        description="Bounded, mergeable timelines on Dynamo-style key-value stores.\n\n"
        "Global options (--url) may come before or after the command;\n"
        "`timak COMMAND --help` describes each command.",
        epilog="The store is --url, else $TIMAK_URL, else " + DEFAULT_URL + ".\n\nexit codes:\n"
        + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser, None)
    parser.add_argument("--version", action="version", version=f"timak {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=CommandParser
    )
    for name in COMMAND_MODULES:
        # Command modules import their drivers lazily, inside the command, so
        # `timak --help` works without any optional extra installed.
        importlib.import_module(f"{__name__}.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (see ``EXIT_CODES``)."""
    try:
        with prompt_interrupts():
            return _run(argv)
    except KeyboardInterrupt:  # also while parsing or while cleaning up
        return 130


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    invocation[:] = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(invocation)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.func(args)
        return code
    except InvalidInputError as exc:
        print(f"timak: {exc}", file=sys.stderr)
        return 2
    except UnavailableError as exc:
        print(f"timak: store unavailable: {exc}", file=sys.stderr)
        return 3
    except BackendTimeoutError as exc:
        print(f"timak: store timed out: {exc}", file=sys.stderr)
        return 3
    except TimakError as exc:
        print(f"timak: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
