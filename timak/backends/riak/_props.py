"""Bucket properties: which would make Riak drop concurrent writes, and the
commands that set a bucket type up."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._riak_setup import setup_commands

__all__ = ["props_problems", "setup_commands"]


def props_problems(props: Mapping[str, Any]) -> list[str]:
    """Why a bucket with these properties would lose timak's concurrent writes.

    An empty list means the bucket keeps siblings. Used on first use of each
    bucket and by ``timak riak check``.

    >>> props_problems({"allow_mult": True, "last_write_wins": False})
    []
    >>> props_problems({"allow_mult": False})  # Riak's default bucket type
    ["allow_mult is false: Riak keeps only one of two concurrent writes ..."]
    """
    problems = []
    if props.get("active") is False:
        problems.append("the bucket type is not active (riak admin bucket-type activate)")
    if props.get("allow_mult") is not True:
        problems.append(
            f"allow_mult is {json.dumps(props.get('allow_mult'))}: Riak keeps only one "
            f"of two concurrent writes (the 'default' bucket type is like this)"
        )
    if props.get("last_write_wins") is True:
        problems.append("last_write_wins is true: Riak drops all but the last write")
    if props.get("write_once") is True:
        problems.append("write_once is true: Riak never merges writes to one key")
    if props.get("consistent") is True:
        problems.append("consistent is true: strongly consistent types refuse blind writes")
    if props.get("datatype") not in (None, "", "undefined"):
        problems.append(f"datatype is {props.get('datatype')!r}: a CRDT type refuses plain values")
    return problems


