"""Constants and small helpers shared by the Riak modules."""

from __future__ import annotations

import re
from urllib.parse import quote

from ...errors import (
    InvalidKeyError,
)

# Its home is _riak_setup, which `timak riak setup` imports without urllib3.
from .._riak_setup import DEFAULT_BUCKET_TYPE as DEFAULT_BUCKET_TYPE

MIB = 1024 * 1024
#: Riak's own defaults: ``object.size.warning_threshold`` and
#: ``object.size.maximum`` (cuttlefish ``bytesize``, so 1024-based).
DEFAULT_WARN_SIZE = 5 * MIB
DEFAULT_MAX_SIZE = 50 * MIB
#: Writes up to this size ask Riak for the sibling count (see ``store``).
DEFAULT_COUNT_SIBLINGS_BELOW = 256 * 1024

# Accept for reads: multipart/mixed is preferred, so Riak sends every sibling
# in one 300 answer; */* lets a single value of any stored Content-Type come
# back as 200 instead of 406 Not Acceptable (HTTP Fetch Object, "Siblings").
_ACCEPT_SIBLINGS = "multipart/mixed, */*;q=0.5"
# Accept for writes that ask for the sibling count: with siblings, Riak picks
# between text/plain (one vtag per line, a few bytes each) and multipart/mixed
# (every value); this prefers the short list. */* must stay, or webmachine
# answers 406 before the write because the PUT's own type is not acceptable.
_ACCEPT_COUNT = "text/plain, */*;q=0.1"
_CONTENT_TYPE = "application/octet-stream"
_QUORUM_WORD = re.compile(r"^(?:\d+|one|quorum|all|default|backend)$")
_VCLOCK = re.compile(r"^[A-Za-z0-9+/=]+$")
_READ_PARAMS = ("r", "pr")
_WRITE_PARAMS = ("w", "dw", "pw")
_BODY_IN_ERRORS = 300
_HEAD_BATCH = 256


def segment(text: str, what: str) -> str:
    """One percent-encoded path segment. ``.`` is encoded too, see the module doc."""
    try:
        return quote(text, safe="").replace(".", "%2E")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"{what} {text!r} is not valid UTF-8: {exc}") from None


