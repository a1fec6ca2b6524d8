"""``timak riak setup`` and ``timak riak check``: the Riak bucket type timak needs.

timak keeps concurrent writes as siblings, so its bucket type must have
``allow_mult=true``. Riak's ``default`` bucket type does not: there the last
write wins and concurrent writes are lost silently.

* ``timak riak setup [--bucket-type NAME]`` prints the ``riak admin``
  commands an operator runs once on one node (exit 0). It contacts nothing.
* ``timak riak check [--bucket-type NAME]`` reads ``GET /types/NAME/props``
  from the store URL's Riak: exit 0 if the type keeps siblings, 1 if not
  (or it does not exist), 3 if Riak cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import quote

from ..backends import split_url
from ..backends._riak_setup import DEFAULT_BUCKET_TYPE, setup_commands
from ..errors import BackendTimeoutError, ConfigError, UnavailableError
from . import store_url

__all__ = ["register"]

_DEFAULT_TYPE = DEFAULT_BUCKET_TYPE


def register(commands: Any) -> None:
    """Add ``riak setup`` and ``riak check`` to the ``timak`` command line."""
    riak = commands.add_parser(
        "riak", help="set up and check the Riak bucket type timak needs",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    actions = riak.add_subparsers(dest="riak_action", metavar="ACTION")

    setup = actions.add_parser("setup", help="print the riak admin commands that create it")
    setup.add_argument("--bucket-type", default=_DEFAULT_TYPE, metavar="NAME",
                       help=f"bucket type name (default {_DEFAULT_TYPE})")
    setup.set_defaults(func=_setup)

    check = actions.add_parser("check", help="check that the bucket type keeps siblings")
    check.add_argument("--bucket-type", default=None, metavar="NAME",
                       help="bucket type name (default: the URL's bucket_type, else timak)")
    check.set_defaults(func=_check)

    def usage(args: argparse.Namespace) -> int:
        riak.print_help(sys.stderr)
        return 2

    riak.set_defaults(func=usage)


def _setup(args: argparse.Namespace) -> int:
    print("# Run once, on any one Riak node, as the user that runs Riak:")
    for command in setup_commands(args.bucket_type):
        print(command)
    print(f"# Then use: riak://HOST:8098/?bucket_type={quote(args.bucket_type, safe='')}")
    return 0


def _check(args: argparse.Namespace) -> int:
    url = store_url(args)
    parts = split_url(url)
    if parts.scheme not in ("riak", "riaks"):
        raise ConfigError(f"`timak riak check` needs a riak:// store URL, got {parts.scheme}://")
    # Imported here: urllib3 is the optional timak[riak] extra.
    from ..backends.riak import from_url, props_problems

    backend = from_url(parts)
    name = args.bucket_type or backend.bucket_type
    try:
        props = backend.bucket_type_props(name)
    except (UnavailableError, BackendTimeoutError) as exc:
        print(f"timak: cannot reach Riak at {backend.base_url}: {exc}", file=sys.stderr)
        return 3
    except ConfigError as exc:  # the type does not exist
        print(f"NOT OK: {exc}")
        return 1
    finally:
        backend.close()
    problems = props_problems(props)
    if problems:
        print(f"NOT OK: bucket type {name!r} would lose concurrent writes:")
        for problem in problems:
            print(f"  - {problem}")
        print("Create a type for timak with `timak riak setup --bucket-type NAME`.")
        return 1
    print(f"OK: bucket type {name!r} keeps siblings (allow_mult=true) at {backend.base_url}")
    return 0
