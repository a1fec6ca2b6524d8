"""Riak KV over its documented HTTP API, spoken directly with urllib3.

The old ``riak`` client does not import on Python 3.10+, so this module talks
HTTP itself. urllib3 is the ``timak[riak]`` extra.

How the contract maps onto Riak:

======================  ==============================================================
contract                Riak HTTP
======================  ==============================================================
``fetch``               ``GET /types/T/buckets/B/keys/K`` with ``Accept: multipart/
                        mixed, */*;q=0.5``: 200 is one sibling, 300 a multipart body
                        of all of them, 404 nothing. Tombstone parts
                        (``X-Riak-Deleted: true``) are not values. The context is the
                        response's ``X-Riak-Vclock``.
``store``               ``PUT`` with ``Content-Type: application/octet-stream`` and
                        ``X-Riak-Vclock`` when a context is given. Riak then replaces
                        exactly the siblings that vclock descends from; without one
                        (or with a stale one) it adds a sibling, as long as the
                        bucket keeps siblings (``allow_mult=true``).
``delete``              ``DELETE``, with the vclock when a context is given. Riak
                        writes a tombstone; a stale vclock leaves the tombstone as a
                        sibling beside newer values, and ``fetch`` skips it.
``keys``                ``GET .../keys?keys=stream`` (an expensive, cluster-wide
                        admin operation), then one ``HEAD`` per key, because Riak
                        lists tombstoned keys until it reaps them.
======================  ==============================================================

A fetch of a key that holds only a tombstone returns ``Fetched([], None)``
like any missing key, as the contract says, although Riak answers that 404
with a vclock. The next blind write then sits beside the tombstone as a
sibling; reads skip it and the first write with a context removes it. So the
cost of dropping that vclock is one short-lived tombstone sibling, never data.

Before the first operation on a bucket, the backend reads the bucket's
effective properties once (``GET /types/T/buckets/B/props``) and raises
``ConfigError`` if Riak would drop concurrent writes (``allow_mult`` false,
``last_write_wins``, ``write_once``, a strongly consistent or CRDT type). The
answer is cached per bucket, not per bucket type, because bucket-level
properties can override the type's. ``check_props=false`` skips this.

URL::

    riak://[user:password@]host[:8098]/?bucket_type=timak&r=quorum&w=2&timeout=5
    riaks://...  (or ?tls=1) for HTTPS

See ``RiakBackend`` for every option. Paths are built from segments quoted
with ``quote(s, safe="")`` plus ``.`` as ``%2E`` (urllib3 would otherwise
resolve a key ``..`` as a dot segment and address the bucket), and every
request carries ``X-Riak-URL-Encoding: on`` so that Riak decodes them even
on a cluster left in the pre-1.0 compatibility mode.
"""

from __future__ import annotations

import codecs
import contextlib
import http.client
import json
import os
import re
import socket
import ssl
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode

from .._version import __version__
from ..errors import (
    BackendError,
    BackendTimeoutError,
    ConfigError,
    InvalidInputError,
    InvalidKeyError,
    LargeObjectWarning,
    MissingDriverError,
    TimakError,
    UnavailableError,
    ValueTooLargeError,
)
from ..options import flag_option, int_option, number_option
from .base import Backend, Fetched, StoreResult

try:
    import urllib3
    from urllib3 import exceptions as u3
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDriverError(
        "the Riak backend needs urllib3: pip install 'timak[riak]'"
    ) from exc

__all__ = [
    "DEFAULT_BUCKET_TYPE",
    "LargeObjectWarning",
    "RiakBackend",
    "from_url",
    "parse_size",
    "props_problems",
    "setup_commands",
]

DEFAULT_BUCKET_TYPE = "timak"
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
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "kb": 1024, "kib": 1024, "mb": MIB, "mib": MIB,
               "gb": 1024 * MIB, "gib": 1024 * MIB}
_READ_PARAMS = ("r", "pr")
_WRITE_PARAMS = ("w", "dw", "pw")
_BODY_IN_ERRORS = 300
_HEAD_BATCH = 256

# ---------------------------------------------------------------- error mapping


def _map_exception(exc: BaseException, where: str) -> TimakError:
    """The timak error for one urllib3, http.client, ssl or socket exception.

    Connect failures (refused, name resolution, connect timeout) mean the
    request never reached Riak: ``UnavailableError``. A read timeout means it
    did, and a write may or may not have been applied: ``BackendTimeoutError``.
    A connection lost mid-answer is ``UnavailableError``; a write may have been
    applied then too, which is safe because every timak write is idempotent.
    """
    reason = getattr(exc, "reason", None)
    if isinstance(exc, u3.MaxRetryError) and isinstance(reason, BaseException):
        return _map_exception(reason, where)
    said = f"{where}: {_describe(exc)}"
    if isinstance(exc, (u3.ProxySchemeUnknown, u3.ProxySchemeUnsupported,
                        u3.LocationValueError)):
        return ConfigError(f"Riak {said} (bad address)")
    # NewConnectionError subclasses ConnectTimeoutError, so test it first.
    if isinstance(exc, u3.NewConnectionError):
        return UnavailableError(f"Riak {where}: cannot connect: {_describe(exc)}")
    if isinstance(exc, u3.ConnectTimeoutError):
        return UnavailableError(f"Riak {where}: timed out connecting: {_describe(exc)}")
    if isinstance(exc, u3.EmptyPoolError):
        return BackendTimeoutError(f"Riak {said} (no free connection in time)")
    if isinstance(exc, u3.ClosedPoolError):
        return BackendError(f"Riak {where}: the backend is closed")
    if isinstance(exc, (u3.TimeoutError, socket.timeout, TimeoutError)):
        return BackendTimeoutError(f"Riak {where}: no answer in time: {_describe(exc)}")
    if isinstance(exc, (u3.SSLError, ssl.SSLError)):
        return UnavailableError(f"Riak {where}: TLS failed (check ca_certs): {_describe(exc)}")
    if isinstance(exc, (u3.ProtocolError, u3.ProxyError, u3.ResponseError,
                        http.client.HTTPException, ConnectionError)):
        return UnavailableError(f"Riak {where}: connection lost: {_describe(exc)}")
    if isinstance(exc, OSError):
        return UnavailableError(f"Riak {said}")
    # DecodeError, HeaderParsingError, InvalidHeader, HostChangedError,
    # BodyNotHttplibCompatible, UnrewindableBodyError, TimeoutStateError, ...
    return BackendError(f"Riak {said}")


def _describe(exc: BaseException) -> str:
    """``Type: message``, even for an exception whose ``__str__`` fails."""
    try:
        text = str(exc)
    except Exception:  # a half-built driver exception must not escape the mapping
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def _mapped_errors(where: str) -> Iterator[None]:
    """Map every urllib3, http.client, ssl and socket exception into timak's tree."""
    try:
        yield
    except TimakError:
        raise
    except (u3.HTTPError, u3.ProxySchemeUnsupported, http.client.HTTPException,
            OSError) as exc:
        # OSError covers socket.timeout, ssl.SSLError and ConnectionError.
        raise _map_exception(exc, where) from exc


def _excerpt(data: bytes) -> str:
    text = data[:_BODY_IN_ERRORS].decode("utf-8", "replace").strip()
    return text + ("..." if len(data) > _BODY_IN_ERRORS else "")


def _status_error(status: int, body: bytes, where: str) -> TimakError:
    """The timak error for an HTTP status that the operation did not expect."""
    said = _excerpt(body)
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


# ------------------------------------------------------------------- multipart


@dataclass(frozen=True)
class _Part:
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    @property
    def deleted(self) -> bool:
        return self.headers.get("x-riak-deleted", "").strip().lower() == "true"


def _boundary(content_type: str) -> bytes:
    message = Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/mixed" or not isinstance(boundary, str) \
            or not boundary:
        raise BackendError(f"Riak sent 300 without a multipart/mixed boundary: {content_type!r}")
    return boundary.encode("latin-1", "replace")


def _parse_part_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = None
    for raw in block.split(b"\r\n"):
        line = raw.decode("latin-1")
        if line[:1] in (" ", "\t") and last is not None:  # folded header line
            headers[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise BackendError(f"malformed multipart header line {line[:80]!r} from Riak")
        last = name.strip().lower()
        headers[last] = value.strip()
    return headers


def _parse_multipart(body: bytes, content_type: str) -> list[_Part]:
    """Split a ``multipart/mixed`` body (RFC 2046) into parts.

    Riak writes ``CRLF--B CRLF headers CRLF CRLF value`` per sibling and
    ``CRLF--B--CRLF`` at the end (``riak_kv_wm_object:produce_multipart_body``);
    a body that starts with ``--B`` (no CRLF) is accepted too. A body without
    the closing delimiter, or a part without the blank line after its
    headers, raises ``BackendError``: it is a broken answer, not a value.
    """
    delimiter = b"\r\n--" + _boundary(content_type)
    data = body if body.startswith(b"\r\n") else b"\r\n" + body
    chunks = data.split(delimiter)
    parts: list[_Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts  # the close delimiter; what follows is the epilogue
        # The delimiter line may carry transport padding before its CRLF.
        line_end = chunk.find(b"\r\n")
        if line_end < 0 or chunk[:line_end].strip(b" \t"):
            raise BackendError("malformed multipart body from Riak: bad delimiter line")
        rest = chunk[line_end + 2:]
        if rest.startswith(b"\r\n"):
            parts.append(_Part({}, rest[2:]))
            continue
        head, blank, payload = rest.partition(b"\r\n\r\n")
        if not blank:
            raise BackendError("malformed multipart body from Riak: part without headers end")
        parts.append(_Part(_parse_part_headers(head), payload))
    raise BackendError("malformed multipart body from Riak: no closing boundary")


# ---------------------------------------------------------------- bucket props


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


# ---------------------------------------------------------------------- helpers


def parse_size(text: str, name: str = "size") -> int:
    """A byte count from a URL option. Units are 1024-based, as in riak.conf.

    >>> parse_size("5MB"), parse_size("256 KiB"), parse_size("1000")
    (5242880, 262144, 1000)
    """
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"{name} must be a byte count such as 1048576 or 5MB, got {text!r}")
    unit = match.group(2).lower() if match.group(2) else None
    return int(match.group(1)) * _SIZE_UNITS[unit]


def _segment(text: str, what: str) -> str:
    """One percent-encoded path segment. ``.`` is encoded too, see the module doc."""
    try:
        return quote(text, safe="").replace(".", "%2E")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"{what} {text!r} is not valid UTF-8: {exc}") from None


class RiakBackend(Backend):
    """Riak KV, one bucket type, over HTTP. Thread-safe; one connection pool.

    Options (all keyword arguments here; the same names in the URL query):

    ``bucket_type``
        The bucket type holding timak's buckets (default ``timak``). It must
        keep siblings: see ``timak riak setup``.
    ``r``, ``pr``, ``w``, ``dw``, ``pw``
        Quorums passed through to Riak: an integer or ``one``, ``quorum``,
        ``all``, ``default``. Reads send ``r``/``pr``; writes ``w``/``dw``/
        ``pw``; deletes all five. Unset means the bucket's own default.
    ``timeout``, ``connect_timeout``
        Seconds to wait for an answer (default 10) and to connect (default 3).
    ``retries``
        Retries with a short backoff (default 2). GET and HEAD are retried on
        connect errors, read errors and 502/503/504. PUT and DELETE are
        retried only when the request never reached Riak (connect errors): a
        blind PUT retried after Riak got it would add a duplicate sibling.
        That would merge away, since timak writes are idempotent joins, but a
        sibling is a cost and ``object.siblings.maximum`` is a hard limit.
    ``max_connections``
        Connections kept per host, and requests in flight in ``store_many``,
        ``fetch_many`` and ``keys`` (default 16).
    ``warn_size``, ``max_size``
        A value above ``warn_size`` (default 5 MiB) emits
        ``LargeObjectWarning``; above ``max_size`` (default 50 MiB) ``store``
        raises ``ValueTooLargeError`` without sending it. These mirror Riak's
        ``object.size.*`` settings, which apply to the whole object: all
        siblings together. Riak's own refusal also becomes ``ValueTooLargeError``.
    ``count_siblings_below``
        Writes of values up to this size (default 256 KiB) ask Riak for the
        sibling count after the write (``returnbody=true`` with a
        text/plain preference, so siblings come back as a short list of
        vtags; a single sibling echoes the value, hence the size bound).
        ``store`` then returns the count, which ``Timeline`` uses to fold
        siblings at its threshold. ``0`` turns it off.
    ``check_props``
        Check each bucket's properties before its first use (default true).
    ``tls``, ``ca_certs``
        HTTPS (also chosen by ``riaks://``), and a CA bundle to verify Riak's
        certificate against instead of the system's.
    ``username``, ``password``
        HTTP basic auth (from the URL's userinfo, else ``TIMAK_RIAK_USER`` and
        ``TIMAK_RIAK_PASSWORD``). Needs TLS, as Riak refuses credentials over
        plain HTTP.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8098,
        *,
        bucket_type: str = DEFAULT_BUCKET_TYPE,
        r: str | None = None,
        pr: str | None = None,
        w: str | None = None,
        dw: str | None = None,
        pw: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        retries: int = 2,
        max_connections: int = 16,
        warn_size: int = DEFAULT_WARN_SIZE,
        max_size: int = DEFAULT_MAX_SIZE,
        count_siblings_below: int = DEFAULT_COUNT_SIBLINGS_BELOW,
        check_props: bool = True,
        tls: bool = False,
        ca_certs: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ConfigError(f"host must be a non-empty str, got {host!r:.80}")
        int_option("port", port, 1, 65535)
        if not isinstance(bucket_type, str) or not bucket_type:
            raise ConfigError(f"bucket_type must be a non-empty str, got {bucket_type!r:.80}")
        timeout = number_option("timeout", timeout, positive=True)
        connect_timeout = number_option("connect_timeout", connect_timeout, positive=True)
        int_option("retries", retries, 0)
        int_option("max_connections", max_connections, 1)
        int_option("warn_size", warn_size, 1)
        int_option("max_size", max_size, 1)
        int_option("count_siblings_below", count_siblings_below, 0)
        flag_option("check_props", check_props)
        flag_option("tls", tls)
        for name, text in (("ca_certs", ca_certs), ("username", username),
                           ("password", password)):
            if text is not None and not isinstance(text, str):
                raise ConfigError(f"{name} must be a str, got {type(text).__name__}")
        quorums = {"r": r, "pr": pr, "w": w, "dw": dw, "pw": pw}
        for name, value in quorums.items():
            if value is not None and not _QUORUM_WORD.match(str(value)):
                raise ConfigError(
                    f"{name} must be an integer or one of one, quorum, all, default; "
                    f"got {value!r}"
                )
        if timeout <= 0 or connect_timeout <= 0:
            raise ConfigError("timeout and connect_timeout must be positive seconds")
        if retries < 0 or max_connections < 1:
            raise ConfigError("retries must be >= 0 and max_connections >= 1")
        if not 0 < warn_size <= max_size:
            raise ConfigError(f"need 0 < warn_size <= max_size, got {warn_size}, {max_size}")
        if (username is None) != (password is None):
            raise ConfigError("give both a Riak username and a password, or neither")
        if username is not None and not tls:
            raise ConfigError(
                "Riak accepts credentials only over HTTPS (it answers 426 otherwise): "
                "use riaks:// or ?tls=1"
            )
        self.bucket_type = bucket_type
        self.warn_size = warn_size
        self.max_size = max_size
        self.count_siblings_below = count_siblings_below
        self.check_props = check_props
        self.max_connections = max_connections
        self._read_query = [(k, str(quorums[k])) for k in _READ_PARAMS if quorums[k] is not None]
        self._write_query = [(k, str(quorums[k])) for k in _WRITE_PARAMS if quorums[k] is not None]
        self._delete_query = self._read_query + self._write_query
        netloc_host = f"[{host}]" if ":" in host else host
        self.base_url = f"{'https' if tls else 'http'}://{netloc_host}:{port}"
        self._type_path = "/types/" + _segment(bucket_type, "bucket type")
        headers = {
            "User-Agent": f"timak/{__version__}",
            # Decode percent-encoded buckets and keys even when the cluster
            # runs with http_url_encoding off (riak_kv_wm_utils:maybe_decode_uri).
            "X-Riak-URL-Encoding": "on",
        }
        if username is not None:
            headers.update(urllib3.util.make_headers(basic_auth=f"{username}:{password}"))
        self._retry = urllib3.Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=0,
            allowed_methods=frozenset({"GET", "HEAD"}),
            status_forcelist=frozenset({502, 503, 504}),
            backoff_factor=0.05,
            backoff_max=1.0,
            raise_on_status=False,
            raise_on_redirect=False,
        )
        pool_kw: dict[str, Any] = {}
        if tls:
            pool_kw["cert_reqs"] = "CERT_REQUIRED"
            if ca_certs:
                pool_kw["ca_certs"] = ca_certs
        # block=False: a burst above max_connections opens extra connections
        # (closed after use) instead of waiting; in-flight work is bounded by
        # the executor anyway.
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=max_connections,
            block=False,
            headers=headers,
            timeout=urllib3.Timeout(connect=connect_timeout, read=timeout),
            retries=self._retry,
            **pool_kw,
        )
        self._checked: set[str] = set()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"RiakBackend({self.base_url!r}, bucket_type={self.bucket_type!r})"

    # ------------------------------------------------------------- plumbing

    def _object_path(self, bucket: str, key: str) -> str:
        return (f"{self._type_path}/buckets/{_segment(bucket, 'bucket')}"
                f"/keys/{_segment(key, 'key')}")

    def _request(
        self,
        method: str,
        path: str,
        where: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        if self._closed:
            raise BackendError("Riak backend is closed")
        url = self.base_url + path + ("?" + urlencode(query) if query else "")
        with _mapped_errors(where):
            return self._pool.urlopen(
                method, url, body=body, headers={**self._pool.headers, **(headers or {})},
                preload_content=not stream, redirect=False, retries=self._retry,
            )

    def _executor_for(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise BackendError("Riak backend is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.max_connections, thread_name_prefix="timak-riak"
                )
            return self._executor

    def _run_all(self, calls: list[tuple[Any, tuple[Any, ...]]]) -> list[Any]:
        """Run ``fn(*args)`` for each call on the pool; results in order.

        On the first failure the calls not yet started are cancelled and the
        error is raised; calls already running finish.
        """
        if len(calls) <= 1:
            return [fn(*args) for fn, args in calls]
        executor = self._executor_for()
        futures: list[Future[Any]] = [executor.submit(fn, *args) for fn, args in calls]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    def _ensure_bucket(self, bucket: str) -> None:
        """Raise ``ConfigError`` once-checked if the bucket would drop writes."""
        if not self.check_props or bucket in self._checked:
            return
        props = self.bucket_props(bucket)
        problems = props_problems(props)
        if problems:
            raise ConfigError(
                f"Riak bucket {bucket!r} of type {self.bucket_type!r} would lose "
                f"concurrent timak writes: {'; '.join(problems)}. Use a bucket type "
                f"made by `timak riak setup` ({setup_commands(self.bucket_type)[0]})"
            )
        with self._lock:
            self._checked.add(bucket)

    def _props_at(self, path: str, where: str, bucket_type: str) -> dict[str, Any]:
        response = self._request("GET", path, where, headers={"Accept": "application/json"})
        if response.status == 404:
            raise ConfigError(
                f"Riak has no bucket type {bucket_type!r}: create and activate it "
                f"with: {' && '.join(setup_commands(bucket_type))}"
            )
        if response.status != 200:
            raise _status_error(response.status, response.data, where)
        try:
            props = json.loads(response.data)["props"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"Riak {where}: unreadable props {_excerpt(response.data)}") \
                from exc
        if not isinstance(props, dict):
            raise BackendError(f"Riak {where}: props is not an object")
        return props

    def bucket_type_props(self, bucket_type: str | None = None) -> dict[str, Any]:
        """``GET /types/T/props``: a bucket type's properties (default: this
        backend's type). Raises ``ConfigError`` if the type does not exist."""
        name = self.bucket_type if bucket_type is None else bucket_type
        return self._props_at(f"/types/{_segment(name, 'bucket type')}/props",
                              f"props of type {name!r}", name)

    def bucket_props(self, bucket: str) -> dict[str, Any]:
        """``GET /types/T/buckets/B/props``: a bucket's effective properties."""
        return self._props_at(
            f"{self._type_path}/buckets/{_segment(bucket, 'bucket')}/props",
            f"props of bucket {bucket!r}",
            self.bucket_type,
        )

    def ping(self) -> bool:
        """``GET /ping``: True if Riak answers OK. Errors map as for any call."""
        response = self._request("GET", "/ping", "ping")
        return response.status == 200

    def _check_size(self, value: bytes, bucket: str, key: str) -> None:
        size = len(value)
        if size > self.max_size:
            raise ValueTooLargeError(
                f"value for {bucket!r}/{key!r} is {size} bytes, over the Riak backend's "
                f"max_size of {self.max_size} (Riak's object.size.maximum is 50 MiB)"
            )
        if size > self.warn_size:
            warnings.warn(
                f"value for {bucket!r}/{key!r} is {size} bytes, over warn_size "
                f"{self.warn_size}; Riak is at its best under 1 MB",
                LargeObjectWarning,
                stacklevel=3,  # the caller of store / store_many
            )

    @staticmethod
    def _vclock_header(context: Any) -> str:
        if not isinstance(context, str) or not _VCLOCK.match(context):
            raise InvalidInputError(
                f"not a Riak context (a vclock from this backend's fetch): {context!r:.80}"
            )
        return context

    # -------------------------------------------------------------- contract

    def fetch(self, bucket: str, key: str) -> Fetched:
        """Every sibling under ``key``; the context is Riak's vclock.

        A key that is missing or holds only tombstones gives ``Fetched([], None)``.
        """
        self._ensure_bucket(bucket)
        return self._fetch(bucket, key)

    def _fetch(self, bucket: str, key: str) -> Fetched:
        where = f"fetch {bucket!r}/{key!r}"
        response = self._request(
            "GET", self._object_path(bucket, key), where,
            query=self._read_query, headers={"Accept": _ACCEPT_SIBLINGS},
        )
        status, data = response.status, response.data
        if status == 404:
            if b"nknown bucket type" in data:
                raise _status_error(status, data, where)
            return Fetched([], None)
        if status not in (200, 300):
            raise _status_error(status, data, where)
        vclock = response.headers.get("X-Riak-Vclock")
        if not vclock:
            raise BackendError(f"Riak {where}: {status} answer without X-Riak-Vclock")
        if status == 200:
            if response.headers.get("X-Riak-Deleted", "").lower() == "true":
                return Fetched([], None)
            return Fetched([data], vclock)
        parts = _parse_multipart(data, response.headers.get("Content-Type", ""))
        if not parts:
            raise BackendError(f"Riak {where}: 300 answer with no parts")
        siblings = [part.body for part in parts if not part.deleted]
        if not siblings:
            return Fetched([], None)
        return Fetched(siblings, vclock)

    def store(
        self, bucket: str, key: str, value: bytes, context: Any = None
    ) -> StoreResult:
        """Write ``value``; with ``context``, replace the siblings it saw.

        Returns the number of siblings under the key after the write
        (tombstone siblings included) for values up to
        ``count_siblings_below`` bytes, else ``None``.
        """
        value = bytes(value)
        self._check_size(value, bucket, key)
        vclock = None if context is None else self._vclock_header(context)
        self._ensure_bucket(bucket)
        return self._store(bucket, key, value, vclock)

    def _store(self, bucket: str, key: str, value: bytes, vclock: str | None) -> StoreResult:
        where = f"store {bucket!r}/{key!r}"
        headers = {"Content-Type": _CONTENT_TYPE}
        if vclock is not None:
            headers["X-Riak-Vclock"] = vclock
        count = len(value) <= self.count_siblings_below
        if count:
            headers["Accept"] = _ACCEPT_COUNT
        response = self._request(
            "PUT", self._object_path(bucket, key), where,
            query=[*self._write_query, ("returnbody", "true" if count else "false")],
            headers=headers, body=value,
        )
        status = response.status
        if status in (200, 201, 204):
            return 1 if count and status == 200 else None
        if status == 300 and count:
            # "Siblings:\n" then one vtag per line (produce_sibling_message_body).
            lines = response.data.decode("latin-1").split("\n")
            if not lines or lines[0].strip() != "Siblings:":
                raise BackendError(
                    f"Riak {where}: unreadable sibling list {_excerpt(response.data)}"
                )
            return sum(1 for line in lines[1:] if line.strip())
        raise _status_error(status, response.data, where)

    def store_many(
        self, bucket: str, entries: Iterable[tuple[str, bytes]]
    ) -> list[StoreResult]:
        """Blind-write every pair, up to ``max_connections`` at a time.

        Sizes are checked before anything is sent. On a failure, any subset of
        the pairs (not only a prefix) may have been written; retrying all is
        safe because timak writes are idempotent.
        """
        pairs = [(key, bytes(value)) for key, value in entries]
        for key, value in pairs:
            self._check_size(value, bucket, key)
        if not pairs:
            return []
        self._ensure_bucket(bucket)
        return self._run_all([(self._store, (bucket, k, v, None)) for k, v in pairs])

    def fetch_many(self, bucket: str, keys: Iterable[str]) -> list[Fetched]:
        """``fetch`` for every key, up to ``max_connections`` at a time, in order."""
        wanted = list(keys)
        if not wanted:
            return []
        self._ensure_bucket(bucket)
        return self._run_all([(self._fetch, (bucket, key)) for key in wanted])

    def delete(self, bucket: str, key: str, context: Any = None) -> None:
        """Write a tombstone over every sibling, or over those ``context`` saw.

        Riak keeps the tombstone until it reaps it (``delete_mode``, 3 s by
        default); siblings written after the context survive beside it.
        """
        vclock = None if context is None else self._vclock_header(context)
        self._ensure_bucket(bucket)
        where = f"delete {bucket!r}/{key!r}"
        response = self._request(
            "DELETE", self._object_path(bucket, key), where,
            query=self._delete_query,
            headers={} if vclock is None else {"X-Riak-Vclock": vclock},
        )
        if response.status in (200, 204):
            return
        if response.status == 404 and b"nknown bucket type" not in response.data:
            return  # nothing there: deleting is idempotent
        raise _status_error(response.status, response.data, where)

    def keys(self, bucket: str) -> Iterator[str]:
        """Every key in ``bucket`` holding at least one live sibling.

        This lists keys across the whole cluster (``?keys=stream``), which Riak
        documents as expensive and not for production traffic: it is for
        ``timak compact`` and other admin sweeps. Riak lists tombstoned keys
        until it reaps them, so each listed key is checked with a ``HEAD``
        (bodies are not sent), ``max_connections`` at a time. Keys are yielded
        lazily, each once; errors surface while iterating.
        """
        self._ensure_bucket(bucket)
        return self._live_keys(bucket)

    def _live_keys(self, bucket: str) -> Iterator[str]:
        batch: list[str] = []
        for key in self._listed_keys(bucket):
            batch.append(key)
            if len(batch) >= _HEAD_BATCH:
                yield from self._keep_live(bucket, batch)
                batch = []
        yield from self._keep_live(bucket, batch)

    def _keep_live(self, bucket: str, keys: list[str]) -> list[str]:
        alive = self._run_all([(self._exists, (bucket, key)) for key in keys])
        return [key for key, live in zip(keys, alive, strict=True) if live]

    def _exists(self, bucket: str, key: str) -> bool:
        where = f"check {bucket!r}/{key!r}"
        response = self._request(
            "HEAD", self._object_path(bucket, key), where,
            query=self._read_query, headers={"Accept": _ACCEPT_SIBLINGS},
        )
        if response.status == 404:
            return False
        if response.status == 200:
            return response.headers.get("X-Riak-Deleted", "").lower() != "true"
        if response.status == 300:
            return True
        raise _status_error(response.status, response.data, where)

    def _listed_keys(self, bucket: str) -> Iterator[str]:
        """Keys from the ``keys=stream`` answer: concatenated ``{"keys":[..]}``."""
        where = f"list keys of {bucket!r}"
        path = f"{self._type_path}/buckets/{_segment(bucket, 'bucket')}/keys"
        response = self._request(
            "GET", path, where, query=[("keys", "stream")],
            headers={"Accept": "application/json"}, stream=True,
        )
        seen: set[str] = set()
        finished = False
        try:
            with _mapped_errors(where):
                if response.status != 200:
                    raise _status_error(response.status, response.read(), where)
                decoder = json.JSONDecoder()
                text = codecs.getincrementaldecoder("utf-8")()
                buffer = ""
                chunks = response.stream(64 * 1024)
                while True:
                    chunk = next(chunks, None)
                    buffer += text.decode(chunk or b"", final=chunk is None)
                    buffer, found = _decode_objects(decoder, buffer)
                    for obj in found:
                        for key in _keys_of(obj, where):
                            if key not in seen:
                                seen.add(key)
                                yield key
                    if chunk is None:
                        break
            if buffer.strip():
                raise BackendError(f"Riak {where}: truncated key stream {buffer[:80]!r}")
            finished = True
        except UnicodeDecodeError as exc:
            raise BackendError(f"Riak {where}: key stream is not UTF-8: {exc}") from exc
        finally:
            if not finished:
                # Unread bytes would corrupt the next request on this
                # connection, so close it rather than pool it. (urllib3 also
                # discards a pooled connection that is readable while idle.)
                response.close()
            response.release_conn()

    def close(self) -> None:
        """Close the connections and the worker threads. Later calls raise."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        self._pool.clear()


def _decode_objects(decoder: json.JSONDecoder, buffer: str) -> tuple[str, list[Any]]:
    """Pull every complete JSON value off the front of ``buffer``."""
    found: list[Any] = []
    index = 0
    while True:
        while index < len(buffer) and buffer[index].isspace():
            index += 1
        if index >= len(buffer):
            return "", found
        try:
            obj, index = decoder.raw_decode(buffer, index)
        except ValueError:
            return buffer[index:], found  # incomplete: wait for more
        except RecursionError:
            # json recurses per nesting level; no real key listing nests.
            raise BackendError("Riak key listing nests too deeply to be one") from None
        found.append(obj)


def _keys_of(obj: Any, where: str) -> list[str]:
    if isinstance(obj, dict) and "error" in obj:
        error = str(obj["error"])
        if "timeout" in error:
            raise BackendTimeoutError(f"Riak {where}: listing timed out: {error}")
        raise BackendError(f"Riak {where}: {error}")
    keys = obj.get("keys") if isinstance(obj, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BackendError(f"Riak {where}: unexpected key listing {str(obj)[:80]!r}")
    return keys


# ----------------------------------------------------------------------- URLs

_OPTIONS = {
    "bucket_type", "r", "pr", "w", "dw", "pw", "timeout", "connect_timeout", "retries",
    "max_connections", "warn_size", "max_size", "count_siblings_below", "check_props",
    "tls", "ca_certs",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(options: Mapping[str, str], name: str, default: bool) -> bool:
    text = options.get(name)
    if text is None:
        return default
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {text!r}")


def _number(options: Mapping[str, str], name: str, default: float) -> float:
    text = options.get(name)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {text!r}") from None


def from_url(url: SplitResult) -> RiakBackend:
    """``riak://[user:pass@]host[:port]/?bucket_type=timak&...``; ``riaks://`` is HTTPS.

    Credentials come from the URL, else ``TIMAK_RIAK_USER`` and
    ``TIMAK_RIAK_PASSWORD``. Unknown options raise ``ConfigError``.
    """
    # Never echo a password back in an error message.
    port = f":{url.port}" if url.port else ""
    shown = url._replace(netloc=f"{url.hostname or ''}{port}").geturl()
    if url.path not in ("", "/"):
        raise ConfigError(f"Riak URLs take options, not a path: {shown!r}")
    try:
        pairs = parse_qsl(url.query, keep_blank_values=True, strict_parsing=bool(url.query))
    except ValueError:
        raise ConfigError(f"malformed query in {shown!r}") from None
    options = dict(pairs)
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigError(
            f"unknown Riak options {sorted(unknown)} in {shown!r}; known: {sorted(_OPTIONS)}"
        )
    if not url.hostname:
        raise ConfigError(f"Riak URL names no host: {shown!r}")
    username = unquote(url.username) if url.username is not None else None
    password = unquote(url.password) if url.password is not None else None
    if username is None:
        username = os.environ.get("TIMAK_RIAK_USER") or None
        password = os.environ.get("TIMAK_RIAK_PASSWORD") if username else None
        if username is not None and password is None:
            raise ConfigError("TIMAK_RIAK_USER is set but TIMAK_RIAK_PASSWORD is not")
    elif password is None:
        password = os.environ.get("TIMAK_RIAK_PASSWORD")
        if password is None:
            raise ConfigError("the Riak URL names a user but no password (nor TIMAK_RIAK_PASSWORD)")
    try:
        return RiakBackend(
            url.hostname,
            url.port or 8098,
            bucket_type=options.get("bucket_type", DEFAULT_BUCKET_TYPE),
            r=options.get("r"),
            pr=options.get("pr"),
            w=options.get("w"),
            dw=options.get("dw"),
            pw=options.get("pw"),
            timeout=_number(options, "timeout", 10.0),
            connect_timeout=_number(options, "connect_timeout", 3.0),
            retries=int(_number(options, "retries", 2)),
            max_connections=int(_number(options, "max_connections", 16)),
            warn_size=parse_size(options.get("warn_size", str(DEFAULT_WARN_SIZE)), "warn_size"),
            max_size=parse_size(options.get("max_size", str(DEFAULT_MAX_SIZE)), "max_size"),
            count_siblings_below=parse_size(
                options.get("count_siblings_below", str(DEFAULT_COUNT_SIBLINGS_BELOW)),
                "count_siblings_below",
            ),
            check_props=_flag(options, "check_props", True),
            tls=url.scheme == "riaks" or _flag(options, "tls", False),
            ca_certs=options.get("ca_certs") or None,
            username=username,
            password=password,
        )
    except ValueError as exc:
        if isinstance(exc, TimakError):
            raise
        raise ConfigError(f"bad Riak URL {shown!r}: {exc}") from exc
