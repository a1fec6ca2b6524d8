"""What setting up Riak for timak takes, without Riak's driver: the default
bucket type and the ``riak admin`` commands that create it.

It lives outside ``timak.backends.riak``, whose import needs urllib3, so
that ``timak riak setup``, which only prints these commands, runs without
the ``timak[riak]`` extra; ``timak.backends.riak`` re-exports both.
"""

from __future__ import annotations

import json
import re

__all__ = ["DEFAULT_BUCKET_TYPE", "setup_commands"]

#: The bucket type timak uses unless the URL names another (``?bucket_type=``).
DEFAULT_BUCKET_TYPE = "timak"


def setup_commands(bucket_type: str = DEFAULT_BUCKET_TYPE) -> list[str]:
    """The ``riak admin`` commands that create and activate a bucket type for timak."""
    props = json.dumps({"props": {"allow_mult": True}}, separators=(",", ":"))
    name = _shell_quote(bucket_type)
    return [
        f"riak admin bucket-type create {name} '{props}'",
        f"riak admin bucket-type activate {name}",
    ]


def _shell_quote(word: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.-]+", word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"
