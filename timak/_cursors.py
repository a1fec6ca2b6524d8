"""The envelope every timak cursor shares. Pure, no I/O.

A cursor is ``KIND + "1." + base64url(msgpack([KIND, *body]))``: a plain
string a subscriber can save anywhere. Each kind checks its own body; this
module only seals and opens the envelope, and turns anything that is not one
into ``InvalidCursorError`` with a message that says what the cursor is (or
is not), never a decoder's internals.

Kinds: ``p`` a page cursor (``Timeline.page``), ``c`` a change cursor
(``Timeline.changes``), ``f`` a feed cursor (``Feed.poll``), ``g`` an
activity page cursor (``Feeds.read``, ``Feeds.aggregated``; its body is
checked in ``timak.activity._pages``).
"""

from __future__ import annotations

import base64
from typing import Any

import msgpack

from .errors import InvalidCursorError, InvalidInputError
from .value import INT64_RANGE, check_id, check_score

__all__ = [
    "damaged",
    "decode_change_cursor",
    "decode_cursor",
    "decode_page_cursor",
    "encode_cursor",
]

#: What each kind of cursor is for, to name a cursor passed to the wrong call.
_KINDS = {
    "p": "page cursor (from Timeline.page)",
    "c": "change cursor (from Timeline.changes)",
    "f": "feed cursor (from Feed.poll)",
    "g": "activity page cursor (from Feeds.read or Feeds.aggregated)",
}


def encode_cursor(kind: str, body: list[Any]) -> str:
    """Seal ``body`` in a cursor of ``kind`` (one letter)."""
    packed = msgpack.packb([kind, *body])
    return kind + "1." + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode_cursor(cursor: object, kind: str, what: str | None = None) -> list[Any]:
    """Open a cursor of ``kind``; return ``[kind, *body]`` for the caller to check.

    Raises ``InvalidCursorError`` for anything else: not a string, a cursor
    of another kind, or one that was cut short or altered.

    >>> decode_cursor(encode_cursor("p", [1, "a"]), "p")
    ['p', 1, 'a']
    """
    what = what or _KINDS.get(kind, "cursor").split(" (")[0]
    if not isinstance(cursor, str):
        raise InvalidCursorError(
            f"a {what} is a str, got {type(cursor).__name__}: {cursor!r:.80}"
        )
    if not cursor.startswith(kind + "1."):
        other = _KINDS.get(cursor[:1]) if cursor[1:3] == "1." else None
        if other is not None:
            raise InvalidCursorError(f"expected a {what}, got a {other}: {cursor!r:.80}")
        raise InvalidCursorError(f"not a timak {what}: {cursor!r:.80}")
    text = cursor[3:]
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        body = msgpack.unpackb(packed, raw=False, strict_map_key=False)
    except Exception:
        # base64 and msgpack raise several unrelated types (ExtraData,
        # FormatError, StackError, binascii.Error, ...), with messages about
        # bytes that mean nothing to whoever holds the cursor.
        body = None
    if not isinstance(body, list) or not body or body[0] != kind:
        raise damaged(cursor, what)
    return body


def damaged(cursor: object, what: str) -> InvalidCursorError:
    """The error for a cursor whose envelope opened but whose body is wrong."""
    return InvalidCursorError(
        f"damaged {what} {cursor!r:.80}: it was cut short or altered; pass a cursor "
        f"exactly as timak returned it"
    )


def decode_page_cursor(cursor: object) -> tuple[Any, int, Any]:
    """A page cursor's position ``(score, id kind, id)`` (``order_key``'s
    form); ``InvalidCursorError`` for anything ``Timeline.page`` did not make.

    The id kind must match the id (0 for an int, 1 for a str): a mismatch
    would compare an int with a str at an equal score, and a NaN score
    compares false with everything (a silently empty page).
    """
    body = decode_cursor(cursor, "p")
    if len(body) == 4:
        _, score, flag, item_id = body
        try:
            check_score(score)
            check_id(item_id)
        except InvalidInputError:
            pass
        else:
            if type(flag) is int and flag == (1 if isinstance(item_id, str) else 0):
                return score, flag, item_id
    raise damaged(cursor, "page cursor")


def decode_change_cursor(cursor: object) -> tuple[int, list[bytes]]:
    """A change cursor's ``(mark, digests)``: the newest arrival returned (µs,
    -1 before any) and 8-byte digests of what was returned near it;
    ``InvalidCursorError`` for anything ``Timeline.changes`` did not make."""
    body = decode_cursor(cursor, "c")
    if (
        len(body) == 3
        and type(body[1]) is int
        and -1 <= body[1] <= INT64_RANGE[1]
        and isinstance(body[2], list)
        and all(isinstance(d, bytes) and len(d) == 8 for d in body[2])
    ):
        return body[1], [bytes(d) for d in body[2]]
    raise damaged(cursor, "change cursor")
