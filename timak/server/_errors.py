"""Every error the service answers with, as ``application/problem+json``
(RFC 9457), mapped from timak's exception tree in this one place.

=============================  ======  ===========================================
exception                      status  meaning
=============================  ======  ===========================================
``ValueTooLargeError``         413     an item or value over the size limit
``UnknownFeedGroupError``,     404     a feed group, or a notification group,
``UnknownActivityGroupError``          that does not exist
``CursorExpiredError``         410     a feed cursor older than what is kept
``InvalidInputError`` (others) 400     bad input; nothing was written
``BackendError``               503     the store is down or timed out;
                                       ``Retry-After`` says when to try again
``CorruptValueError``          500     stored bytes that do not decode
any other ``TimakError``       500
=============================  ======  ===========================================

The body's ``error`` member names the exception class, so ``timak.client``
raises the same exception the library would have raised in-process. Bodies
and logs never hold a token: messages come from timak's exceptions, which
name keys and values, never request headers.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from ..errors import (
    BackendError,
    CorruptValueError,
    CursorExpiredError,
    InvalidInputError,
    TimakError,
    UnknownActivityGroupError,
    UnknownFeedGroupError,
    ValueTooLargeError,
)

__all__ = ["PROBLEM_TYPE", "RETRY_AFTER", "problem", "problem_for", "status_for"]

#: The media type of every error body.
PROBLEM_TYPE = "application/problem+json"
#: Seconds a client should wait before retrying after a store error (503).
RETRY_AFTER = 1

_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 410: "Gone", 413: "Content Too Large",
    415: "Unsupported Media Type", 500: "Internal Server Error",
    503: "Service Unavailable",
}


def status_for(exc: TimakError) -> int:
    """The HTTP status of a timak exception (the table above)."""
    if isinstance(exc, ValueTooLargeError):
        return 413
    if isinstance(exc, UnknownFeedGroupError | UnknownActivityGroupError):
        return 404
    if isinstance(exc, CursorExpiredError):
        return 410
    if isinstance(exc, InvalidInputError):
        return 400
    if isinstance(exc, BackendError):
        return 503
    return 500


def problem(status: int, detail: str, error: str | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """A ``problem+json`` response. ``error`` names the timak exception class
    (``timak.client`` raises that class again)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if error is not None:
        body["error"] = error
    return Response(
        json.dumps(body), status_code=status, media_type=PROBLEM_TYPE, headers=headers
    )


def problem_for(exc: TimakError) -> Response:
    """The response for a timak exception. Store errors carry ``Retry-After``."""
    status = status_for(exc)
    headers = {"Retry-After": str(RETRY_AFTER)} if status == 503 else None
    detail = str(exc)
    if isinstance(exc, CorruptValueError):
        detail = f"a stored value does not decode: {detail}"
    return problem(status, detail, type(exc).__name__, headers)
