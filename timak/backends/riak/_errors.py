"""Riak's and urllib3's errors, mapped into timak's in one place."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
from collections.abc import Iterator

from urllib3 import exceptions as u3

from ...errors import (
    BackendError,
    BackendTimeoutError,
    ConfigError,
    TimakError,
    UnavailableError,
    ValueTooLargeError,
)
from ._common import (
    _BODY_IN_ERRORS,
)


def map_exception(exc: BaseException, where: str) -> TimakError:
    """The timak error for one urllib3, http.client, ssl or socket exception.

    Connect failures (refused, name resolution, connect timeout) mean the
    request never reached Riak: ``UnavailableError``. A read timeout means it
    did, and a write may or may not have been applied: ``BackendTimeoutError``.
    A connection lost mid-answer is ``UnavailableError``; a write may have been
    applied then too, which is safe because every timak write is idempotent.
    """
    reason = getattr(exc, "reason", None)
    if isinstance(exc, u3.MaxRetryError) and isinstance(reason, BaseException):
        return map_exception(reason, where)
    said = f"{where}: {describe(exc)}"
    if isinstance(exc, (u3.ProxySchemeUnknown, u3.ProxySchemeUnsupported,
                        u3.LocationValueError)):
        return ConfigError(f"Riak {said} (bad address)")
    # NewConnectionError subclasses ConnectTimeoutError, so test it first.
    if isinstance(exc, u3.NewConnectionError):
        return UnavailableError(f"Riak {where}: cannot connect: {describe(exc)}")
    if isinstance(exc, u3.ConnectTimeoutError):
        return UnavailableError(f"Riak {where}: timed out connecting: {describe(exc)}")
    if isinstance(exc, u3.EmptyPoolError):
        return BackendTimeoutError(f"Riak {said} (no free connection in time)")
    if isinstance(exc, u3.ClosedPoolError):
        return BackendError(f"Riak {where}: the backend is closed")
    if isinstance(exc, (u3.TimeoutError, socket.timeout, TimeoutError)):
        return BackendTimeoutError(f"Riak {where}: no answer in time: {describe(exc)}")
    if isinstance(exc, (u3.SSLError, ssl.SSLError)):
        return UnavailableError(f"Riak {where}: TLS failed (check ca_certs): {describe(exc)}")
    if isinstance(exc, (u3.ProtocolError, u3.ProxyError, u3.ResponseError,
                        http.client.HTTPException, ConnectionError)):
        return UnavailableError(f"Riak {where}: connection lost: {describe(exc)}")
    if isinstance(exc, OSError):
        return UnavailableError(f"Riak {said}")
    # DecodeError, HeaderParsingError, InvalidHeader, HostChangedError,
    # BodyNotHttplibCompatible, UnrewindableBodyError, TimeoutStateError, ...
    return BackendError(f"Riak {said}")


def describe(exc: BaseException) -> str:
    """``Type: message``, even for an exception whose ``__str__`` fails."""
    try:
        text = str(exc)
    except Exception:  # a half-built driver exception must not escape the mapping
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def mapped_errors(where: str) -> Iterator[None]:
    """Map every urllib3, http.client, ssl and socket exception into timak's tree."""
    try:
        yield
    except TimakError:
        raise
    except (u3.HTTPError, u3.ProxySchemeUnsupported, http.client.HTTPException,
            OSError) as exc:
        # OSError covers socket.timeout, ssl.SSLError and ConnectionError.
        raise map_exception(exc, where) from exc


def excerpt(data: bytes) -> str:
    text = data[:_BODY_IN_ERRORS].decode("utf-8", "replace").strip()
    return text + ("..." if len(data) > _BODY_IN_ERRORS else "")


def status_error(status: int, body: bytes, where: str) -> TimakError:
    """The timak error for an HTTP status that the operation did not expect."""
    said = excerpt(body)
    if status == 503:
        # Riak answers 503 for an internal timeout ("request timed out") and
        # for too few replicas (R/W/PR/PW/DW unsatisfied, overload).
        if b"timed out" in body or b"timeout" in body:
            return BackendTimeoutError(f"Riak {where}: 503 {said}")
        return UnavailableError(f"Riak {where}: 503 {said}")
    if status == 504:
        return BackendTimeoutError(f"Riak {where}: 504 gateway timeout {said}")
    if status == 502:
        return UnavailableError(f"Riak {where}: 502 bad gateway {said}")
    if status == 500 and b"too_large" in body:
        # The vnode refuses objects over object.size.maximum (all siblings
        # together), answering 500 "Error: {too_large,Size}".
        return ValueTooLargeError(
            f"Riak {where}: object over Riak's object.size.maximum ({said}); "
            f"siblings count toward it, so fold them or store smaller values"
        )
    if status == 500 and b"too_many_siblings" in body:
        return BackendError(
            f"Riak {where}: more siblings than object.siblings.maximum ({said}); "
            f"read the key and store the merge with its context to fold them"
        )
    if status == 413:  # a proxy in front of Riak with a body size limit
        return ValueTooLargeError(f"Riak {where}: 413 request too large {said}")
    if status == 401:
        return ConfigError(f"Riak {where}: 401 credentials rejected")
    if status == 426:
        return ConfigError(
            f"Riak {where}: 426 Riak security is on and refuses plain HTTP: "
            f"use riaks:// (or ?tls=1) ({said})"
        )
    if status == 404 and b"nknown bucket type" in body:
        return ConfigError(f"Riak {where}: {said}; see `timak riak setup`")
    if status >= 500:
        return BackendError(f"Riak {where}: {status} {said}")
    return BackendError(f"Riak {where}: unexpected {status} {said}")


