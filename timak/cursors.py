"""The envelope every timak cursor shares. Pure, no I/O.

A cursor is ``KIND + "1." + base64url(msgpack([KIND, *body]))``: a plain
string a subscriber can save anywhere. Each kind checks its own body; this
module only seals and opens the envelope, and turns anything that is not one
into ``InvalidCursorError``.
"""

from __future__ import annotations

import base64
from typing import Any

import msgpack

from .errors import InvalidCursorError

__all__ = ["decode_cursor", "encode_cursor"]


def encode_cursor(kind: str, body: list[Any]) -> str:
    """Seal ``body`` in a cursor of ``kind`` (one letter)."""
    packed = msgpack.packb([kind, *body])
    return kind + "1." + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode_cursor(cursor: object, kind: str, what: str = "cursor") -> list[Any]:
    """Open a cursor of ``kind``; return ``[kind, *body]`` for the caller to check.

    >>> decode_cursor(encode_cursor("p", [1, "a"]), "p")
    ['p', 1, 'a']
    """
    if not isinstance(cursor, str) or not cursor.startswith(kind + "1."):
        raise InvalidCursorError(f"not a timak {what}: {cursor!r:.80}")
    text = cursor[3:]
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        body = msgpack.unpackb(packed, raw=False, strict_map_key=False)
    except Exception as exc:  # base64/msgpack raise several types on bad input
        raise InvalidCursorError(f"damaged {what} {cursor!r:.80}: {exc}") from None
    if not isinstance(body, list) or not body or body[0] != kind:
        raise InvalidCursorError(f"damaged {what} {cursor!r:.80}")
    return body
