"""``RiakTestDouble``: a TEST DOUBLE of Riak KV's HTTP API. It is not Riak.

A small threaded HTTP server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1,
port 0) that answers the requests timak's Riak backend makes the way Riak KV
2.x/3.x does, so the backend's protocol handling can be tested without a
Riak cluster. Behaviour follows the documented HTTP API and, where the docs
are silent, ``riak_kv_wm_object.erl`` / ``riak_kv_wm_utils.erl`` (cited in
comments as ``wm_object`` / ``wm_utils``).

What it models:

* bucket types with properties (``allow_mult``, ``last_write_wins``, ...),
  per-bucket overrides, ``GET /types/T/props`` and ``.../buckets/B/props``;
  the ``default`` type has ``allow_mult=false``, a created type ``true``;
* objects as siblings with dotted version vectors (Riak 2's ``dvv_enabled``):
  each write is coordinated by one of three actors, the vclock header is an
  opaque base64 blob of the version vector, a PUT with a vclock replaces
  exactly the siblings that vclock covers, and one without (or with a stale
  one) adds a sibling; with ``allow_mult=false`` or ``last_write_wins`` the
  write replaces everything (the last write wins, and concurrent ones are lost);
* GET: 200 one sibling, 300 ``multipart/mixed`` (one part per sibling with
  Content-Type, Link, Etag, Last-Modified and ``X-Riak-Deleted: true`` for a
  tombstone; ``Vary: Accept, Accept-Encoding`` and a base-62 ETag on the
  answer) or a ``text/plain`` vtag list, chosen by Accept as webmachine
  does; 404 (with ``X-Riak-Vclock`` and ``X-Riak-Deleted`` when only a
  tombstone remains); 304 for If-None-Match / If-Modified-Since; HEAD;
* PUT: 400 without Content-Type, 412 for If-Match / If-None-Match: * that
  fail, ``returnbody`` (with siblings and no Accept: the text/plain vtag
  list), 500 ``{too_large,N}`` above ``max_object_size`` (all siblings
  together) and ``{too_many_siblings,N}`` above ``max_siblings``, as the
  vnode does (Riak itself never answers 413); 204 with a Content-Type;
* DELETE with and without a vclock (tombstones; a stale vclock leaves the
  tombstone as a sibling beside newer values);
* tombstone reaping: an object holding only tombstones is dropped
  ``reap_after`` seconds after the delete (3 s, Riak's ``delete_mode``
  default; ``None`` reaps only on ``reap_tombstones()``); then a GET is a
  plain 404 without vclock and the key leaves listings;
* key listing (``keys=true`` and chunked ``keys=stream``), which includes
  tombstoned keys until they are reaped; a stream comes as one batch per
  vnode (uneven sizes, many empty) and ends with several ``{"keys":[]}``,
  as measured on Riak KV 3.2.1 (``stream_chunk=N`` gives even batches);
* errors as webmachine renders them: HTML bodies for 405/406/412/501 and an
  unknown bucket type's props, 501 for methods webmachine does not know
  (PATCH), a 500 with an Erlang stack trace for a vclock that does not
  decode; Riak's own plain texts where it sets them (404 ``not found``,
  ``Unknown bucket type``, the 400s, ``{too_many_siblings,N}``);
* percent-decoding of path segments like mochiweb's ``unquote`` (``+`` is a
  space) when ``http_url_encoding`` is on (the default) or the request says
  ``X-Riak-URL-Encoding: on``; r/w/pr/pw/dw/rw/timeout validation (400);
* basic auth that, like Riak security, needs TLS (426 over plain HTTP);
* ``/ping``.

What it omits: clusters, replicas and quorums (quorum parameters are
validated and recorded, not enforced), vtag
selection (``?vtag=``), links, secondary indexes, user metadata, MapReduce,
search, CRDT data types, ``POST`` to a bucket, setting props over HTTP.

Test helpers: ``requests`` (everything received, with decoded paths and
query), ``paths()``, ``siblings()``, ``sibling_count()``, ``raw_keys()``,
``set_bucket_type()``, ``set_bucket_props()``, ``reap_tombstones()`` and
failure injection: ``fail_next`` (answer a status), ``hang_next`` (answer
late, to trigger client timeouts), ``drop_next`` (close the connection
before or after applying the request).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import json
import random
import secrets
import socket
import ssl
import string
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

__all__ = ["Recorded", "RiakTestDouble"]

MIB = 1024 * 1024
_ACTORS = ("vnode-a", "vnode-b", "vnode-c")
_QUORUM_PARAMS = ("r", "w", "dw", "rw", "pw", "pr", "node_confirms")
_QUORUM_WORDS = {"one", "quorum", "all", "default", "backend"}
_KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT", "OPTIONS"}

# Props as `riak admin bucket-type create T '{"props":{"allow_mult":true}}'`
# leaves them (Riak 2+: typed buckets get allow_mult and dvv_enabled true).
CREATED_TYPE_PROPS: dict[str, Any] = {
    "active": True,
    "allow_mult": True,
    "basic_quorum": False,
    "big_vclock": 50,
    "chash_keyfun": {"mod": "riak_core_util", "fun": "chash_std_keyfun"},
    "claimant": "riak@127.0.0.1",
    "dvv_enabled": True,
    "dw": "quorum",
    "last_write_wins": False,
    "linkfun": {"mod": "riak_kv_wm_link_walker", "fun": "mapreduce_linkfun"},
    "n_val": 3,
    "notfound_ok": True,
    "old_vclock": 86400,
    "postcommit": [],
    "pr": 0,
    "precommit": [],
    "pw": 0,
    "r": "quorum",
    "rw": "quorum",
    "small_vclock": 50,
    "w": "quorum",
    "write_once": False,
    "young_vclock": 20,
}
# The `default` bucket type keeps Riak 1.x behaviour: no siblings.
DEFAULT_TYPE_PROPS: dict[str, Any] = {
    **CREATED_TYPE_PROPS, "allow_mult": False, "dvv_enabled": False,
}


_BASE62 = string.digits + string.ascii_letters
_WM_SIGNATURE = "<P><HR><ADDRESS>mochiweb+webmachine web server</ADDRESS>"
_REASONS = {404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
            412: "Precondition Failed", 500: "Internal Server Error",
            501: "Not Implemented"}


def html_error(status: int, said: str = "") -> _Answer:
    """An error as webmachine's error handler renders it: a small HTML page
    (Riak answers 406, 412, 501 and unknown bucket types' props like this)."""
    reason = _REASONS.get(status, "Error")
    body = (f"<html><head><title>{status} {reason}</title></head><body><h1>{reason}</h1>"
            f"{said}{_WM_SIGNATURE}</body></html>")
    return _Answer(status, body, {"Content-Type": "text/html"})


def _base62(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 62)
        digits = _BASE62[digit] + digits
        if not number:
            return digits


def _unique_id_62() -> str:
    """Like riak_core_util:unique_id_62: a random base-62 token."""
    return "".join(secrets.choice(_BASE62) for _ in range(22))


def mochiweb_unquote(text: str) -> bytes:
    """mochiweb_util:unquote: ``%XX`` becomes the byte, ``+`` a space."""
    raw = text.encode("latin-1")
    out = bytearray()
    i = 0
    hexdigits = b"0123456789abcdefABCDEF"
    while i < len(raw):
        c = raw[i]
        if c == ord("%") and i + 2 < len(raw) \
                and raw[i + 1] in hexdigits and raw[i + 2] in hexdigits:
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        elif c == ord("+"):
            out.append(0x20)
            i += 1
        else:
            out.append(c)
            i += 1
    return bytes(out)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


@dataclass
class Recorded:
    """One request as the double received it."""

    method: str
    raw_path: str
    segments: list[str]  # decoded as Riak would (see mochiweb_unquote)
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class _Sibling:
    value: bytes
    content_type: str
    deleted: bool
    dot: tuple[str, int]
    vtag: str = field(default_factory=_unique_id_62)
    last_modified: float = field(default_factory=time.time)


@dataclass
class _Object:
    clock: dict[str, int] = field(default_factory=dict)
    siblings: list[_Sibling] = field(default_factory=list)

    @property
    def live(self) -> list[_Sibling]:
        return [s for s in self.siblings if not s.deleted]


@dataclass
class _Fault:
    kind: str  # "status" | "hang" | "drop"
    methods: frozenset[str] | None
    path_contains: str | None
    status: int = 503
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    after_apply: bool = False

    def matches(self, method: str, raw_path: str) -> bool:
        return (self.methods is None or method in self.methods) and (
            self.path_contains is None or self.path_contains in raw_path
        )


class _Answer(Exception):
    """Raised inside a handler to answer at once with a status."""

    def __init__(self, status: int, body: bytes | str = b"",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = {"Content-Type": "text/plain", **(headers or {})}


def encode_vclock(clock: dict[str, int]) -> str:
    """Opaque to clients, as in Riak (there: base64 of a zlib'd Erlang term)."""
    return base64.b64encode(zlib.compress(json.dumps(sorted(clock.items())).encode())).decode()


def decode_vclock(header: str) -> dict[str, int]:
    pairs = json.loads(zlib.decompress(base64.b64decode(header, validate=True)))
    return {str(actor): int(counter) for actor, counter in pairs}


def _parse_accept(header: str | None) -> list[tuple[str, float]]:
    ranges = []
    for position, item in enumerate((header or "*/*").split(",")):
        media, *params = [p.strip() for p in item.split(";")]
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            ranges.append((media.lower(), q, position))
    ranges.sort(key=lambda r: (-r[1], r[2]))
    return [(media, q) for media, q, _ in ranges if q > 0]


def choose_media_type(provided: list[str], accept: str | None) -> str | None:
    """webmachine_util:choose_media_type: the first provided type matching the
    most preferred acceptable range, or None (406)."""
    for media, _ in _parse_accept(accept):
        major, _, minor = media.partition("/")
        for offer in provided:
            o_major, _, o_minor = offer.lower().partition("/")
            if media == "*/*" or (major == o_major and minor in ("*", o_minor)):
                return offer
    return None


class RiakTestDouble:
    """A TEST DOUBLE of Riak KV's HTTP API (see the module docstring).

    ``with RiakTestDouble() as riak: connect(riak.url())``.
    """

    def __init__(
        self,
        *,
        max_object_size: int = 50 * MIB,
        max_siblings: int = 100,
        http_url_encoding: bool = True,
        credentials: tuple[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        stream_chunk: int | None = None,
        reap_after: float | None = 3.0,
    ) -> None:
        self.max_object_size = max_object_size
        self.max_siblings = max_siblings
        self.http_url_encoding = http_url_encoding
        self.credentials = credentials
        self.ssl_context = ssl_context
        #: Keys per ``{"keys":[...]}`` object of a key stream; ``None`` (the
        #: default) streams like a real cluster: one batch per vnode, of
        #: uneven sizes, many of them empty, and several empty ones at the end.
        self.stream_chunk = stream_chunk
        #: Seconds after which an object holding only tombstones is reaped
        #: (Riak's ``delete_mode``: 3 s by default); ``None``: only when
        #: ``reap_tombstones()`` is called.
        self.reap_after = reap_after
        self._reap_at: dict[tuple[bytes, bytes, bytes], float] = {}
        self.types: dict[str, dict[str, Any]] = {
            "default": dict(DEFAULT_TYPE_PROPS),
            "timak": dict(CREATED_TYPE_PROPS),
        }
        self.bucket_overrides: dict[tuple[str, str], dict[str, Any]] = {}
        self.objects: dict[tuple[bytes, bytes, bytes], _Object] = {}
        self.requests: list[Recorded] = []
        self.lock = threading.RLock()
        self._faults: list[_Fault] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._in_flight = 0
        #: Most requests handled at once, to test client-side concurrency bounds.
        self.max_in_flight = 0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> RiakTestDouble:
        double = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            # Riak's listener (mochiweb) keeps a backlog of 128; socketserver's
            # default of 5 overflowed when store_many opened 16 connections
            # at once on a loaded box, and a connection reset failed a PUT
            # that a real Riak would have taken (seen in CI, issue 22's run).
            request_queue_size = 128

            def process_request(self, request: Any, client_address: Any) -> None:
                with double.lock:
                    double._sockets.add(request)
                super().process_request(request, client_address)

            def shutdown_request(self, request: Any) -> None:
                with double.lock:
                    double._sockets.discard(request)
                super().shutdown_request(request)

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that give up (timeouts) are expected here

        server = Server(("127.0.0.1", 0), _Handler)
        server.double = self  # type: ignore[attr-defined]
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        # shutdown() waits for the serving loop's next poll: a short interval
        # keeps stopping a double (once per test) from costing 25 ms on average.
        self._thread = threading.Thread(target=server.serve_forever, name="riak-double",
                                        kwargs={"poll_interval": 0.005}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (so clients see refusals)."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self.lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> RiakTestDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the double first"
        return int(self._server.server_address[1])

    def url(self, bucket_type: str = "timak", **options: Any) -> str:
        """A timak store URL for this double, e.g. ``url(r="quorum")``."""
        scheme = "riaks" if self.ssl_context is not None else "riak"
        query = urlencode({"bucket_type": bucket_type, **options})
        return f"{scheme}://127.0.0.1:{self.port}/?{query}"

    # ------------------------------------------------------- state helpers

    def set_bucket_type(self, name: str, **props: Any) -> None:
        """Create (or change) a bucket type, like ``riak admin bucket-type create``."""
        with self.lock:
            self.types[name] = {**CREATED_TYPE_PROPS, **self.types.get(name, {}), **props}

    def set_bucket_props(self, bucket_type: str, bucket: str, **props: Any) -> None:
        """Override properties for one bucket (``PUT .../buckets/B/props`` in Riak)."""
        with self.lock:
            self.bucket_overrides.setdefault((bucket_type, bucket), {}).update(props)

    def props(self, bucket_type: str, bucket: str | None = None) -> dict[str, Any]:
        with self.lock:
            props = dict(self.types[bucket_type])
            if bucket is not None:
                props.update(self.bucket_overrides.get((bucket_type, bucket), {}))
                props["name"] = bucket
            return props

    def paths(self) -> set[tuple[str, str, str]]:
        """Every (type, bucket, key) holding an object, tombstones included."""
        self._reap_due()
        with self.lock:
            return {(_text(t), _text(b), _text(k)) for t, b, k in self.objects}

    def siblings(self, bucket_type: str, bucket: str, key: str) -> list[tuple[bytes, bool]]:
        """``(value, is_tombstone)`` for every sibling under one key."""
        self._reap_due()
        with self.lock:
            obj = self.objects.get((bucket_type.encode(), bucket.encode(), key.encode()))
            return [] if obj is None else [(s.value, s.deleted) for s in obj.siblings]

    def sibling_count(self, bucket_type: str, bucket: str, key: str) -> int:
        return len(self.siblings(bucket_type, bucket, key))

    def raw_keys(self, bucket_type: str, bucket: str) -> list[str]:
        """What a key listing returns: tombstoned keys included (until reaped)."""
        self._reap_due()
        with self.lock:
            return sorted(_text(k) for t, b, k in self.objects
                          if t == bucket_type.encode() and b == bucket.encode())

    def reap_tombstones(self) -> int:
        """Drop every object that holds only tombstones now, as Riak does
        ``reap_after`` seconds after the delete; return how many went. After
        that a GET is a plain 404 (no ``X-Riak-Vclock``, no
        ``X-Riak-Deleted``) and the key leaves key listings."""
        with self.lock:
            dead = [path for path, obj in self.objects.items() if not obj.live]
            for path in dead:
                del self.objects[path]
                self._reap_at.pop(path, None)
            return len(dead)

    def _reap_due(self) -> None:
        """Reap the tombstones whose time has come (called on every request)."""
        with self.lock:
            if not self._reap_at:
                return
            now = time.monotonic()
            for path, when in list(self._reap_at.items()):
                if when <= now:
                    del self._reap_at[path]
                    obj = self.objects.get(path)
                    if obj is not None and not obj.live:
                        del self.objects[path]

    def recorded(self, method: str | None = None, path_contains: str | None = None
                 ) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method)
                    and (path_contains is None or path_contains in r.raw_path)]

    # ---------------------------------------------------------- injection

    def fail_next(self, status: int = 503, body: bytes | str = b"request timed out\n", *,
                  headers: dict[str, str] | None = None, times: int = 1,
                  methods: Iterable[str] | None = None,
                  path_contains: str | None = None) -> None:
        """Answer the next ``times`` matching requests with ``status`` (and
        ``headers``; Content-Type is text/plain unless given), touching nothing."""
        raw = body.encode() if isinstance(body, str) else body
        self._add(_Fault("status", _methods(methods), path_contains, status=status, body=raw,
                         headers=dict(headers or {})), times)

    def hang_next(self, seconds: float, *, times: int = 1,
                  methods: Iterable[str] | None = None,
                  path_contains: str | None = None) -> None:
        """Wait ``seconds`` before handling the next matching requests (then
        apply them as usual: a timed-out write may still land, as in Riak)."""
        self._add(_Fault("hang", _methods(methods), path_contains, seconds=seconds), times)

    def drop_next(self, *, times: int = 1, methods: Iterable[str] | None = None,
                  path_contains: str | None = None, after_apply: bool = False) -> None:
        """Close the connection without an answer, before or after applying."""
        self._add(_Fault("drop", _methods(methods), path_contains, after_apply=after_apply),
                  times)

    def clear_faults(self) -> None:
        """Forget every fault not yet taken: the store is back."""
        with self.lock:
            self._faults.clear()

    def _add(self, fault: _Fault, times: int) -> None:
        with self.lock:
            self._faults.extend([fault] * times)

    def _take_fault(self, method: str, raw_path: str) -> _Fault | None:
        with self.lock:
            for i, fault in enumerate(self._faults):
                if fault.matches(method, raw_path):
                    return self._faults.pop(i)
        return None

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    # ------------------------------------------------------------ semantics

    def write(self, path: tuple[bytes, bytes, bytes], props: dict[str, Any],
              sibling: _Sibling, context: dict[str, int] | None) -> _Object:
        """Apply one PUT (``sibling``) or tombstone write under the lock.

        With a context, the siblings whose dot it covers are replaced; without
        one, nothing is (the new value becomes a sibling). Without allow_mult,
        or with last_write_wins, every sibling is replaced. Raises ``_Answer``
        (500, like the vnode) above the sibling or size limits; then nothing
        changes.
        """
        obj = self.objects.get(path) or _Object()
        actor = random.choice(_ACTORS)
        clock = dict(obj.clock)
        for a, n in (context or {}).items():
            clock[a] = max(clock.get(a, 0), n)
        clock[actor] = clock.get(actor, 0) + 1
        sibling.dot = (actor, clock[actor])
        if props.get("allow_mult") is True and props.get("last_write_wins") is not True:
            seen = context or {}
            kept = [s for s in obj.siblings if s.dot[1] > seen.get(s.dot[0], 0)]
        else:
            kept = []
        siblings = [*kept, sibling]
        if len(siblings) > self.max_siblings:
            raise _Answer(500, f"Error:\n{{too_many_siblings,{len(siblings)}}}\n")
        size = sum(len(s.value) for s in siblings)
        if size > self.max_object_size:
            raise _Answer(500, f"Error:\n{{too_large,{size}}}\n")
        new = _Object(clock, siblings)
        self.objects[path] = new
        if new.live or self.reap_after is None:
            self._reap_at.pop(path, None)
        else:
            self._reap_at[path] = time.monotonic() + self.reap_after
        return new


def _methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(m.upper() for m in methods)


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _etag(obj: _Object) -> str:
    if len(obj.siblings) == 1:
        return obj.siblings[0].vtag
    # wm_object:generate_etag for siblings: a base-62 token of a hash of the
    # vclock (riak_core_util:integer_to_list(erlang:phash2(...), 62)).
    digest = hashlib.md5(encode_vclock(obj.clock).encode()).digest()
    return _base62(int.from_bytes(digest[:4], "big"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle
    # and delayed ACKs add about 40 ms to every answer.
    disable_nagle_algorithm = True
    server_version = "MochiWeb/1.1 WebMachine/1.10.9 (riak test double)"

    @property
    def double(self) -> RiakTestDouble:
        return self.server.double  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # One entry point for every method.
    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_GET
    do_PUT = do_GET
    do_POST = do_GET
    do_DELETE = do_GET
    do_PATCH = do_GET
    do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        double = self.double
        with double.lock:
            double._in_flight += 1
            double.max_in_flight = max(double.max_in_flight, double._in_flight)
        try:
            self._serve_counted()
        finally:
            with double.lock:
                double._in_flight -= 1

    def _serve_counted(self) -> None:
        double = self.double
        body = self._read_body()
        raw_path, _, query_string = self.path.partition("?")
        decode = double.http_url_encoding or \
            self.headers.get("X-Riak-URL-Encoding", "").lower() == "on"
        # webmachine_dispatcher splits the raw path with string:tokens, which
        # drops empty segments; wm_utils:maybe_decode_uri then decodes each.
        tokens = [t for t in raw_path.split("/") if t]
        segments = [mochiweb_unquote(t) if decode else t.encode("latin-1") for t in tokens]
        record = Recorded(
            self.command, self.path, [_text(s) for s in segments],
            dict(parse_qsl(query_string, keep_blank_values=True)),
            {k.lower(): v for k, v in self.headers.items()}, body,
        )
        with double.lock:
            double.requests.append(record)
        double._reap_due()
        fault = double._take_fault(self.command, self.path)
        try:
            if fault is not None and fault.kind == "hang":
                double._wait(fault.seconds)
            if fault is not None and fault.kind == "drop" and not fault.after_apply:
                self._drop()
                return
            if fault is not None and fault.kind == "status":
                raise _Answer(fault.status, fault.body, fault.headers)
            self._check_auth()
            status, headers, payload = self._route(segments, record)
            if fault is not None and fault.kind == "drop":
                self._drop()
                return
        except _Answer as answer:
            status, headers, payload = answer.status, answer.headers, answer.body
        try:
            self._respond(status, headers, payload)
        except OSError:
            self.close_connection = True  # the client went away (timed out)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _respond(self, status: int, headers: dict[str, str], payload: bytes | Iterator[bytes]
                 ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if isinstance(payload, bytes):
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD" and status not in (204, 304):
                self.wfile.write(payload)
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in payload:
                self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _check_auth(self) -> None:
        double = self.double
        if double.credentials is None:
            return
        if double.ssl_context is None:
            # riak_api_web_security: credentials are refused over plain HTTP.
            raise _Answer(426, "Security is enabled and Riak does not accept credentials "
                               "over HTTP. Try HTTPS instead.")
        user, password = double.credentials
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            raise _Answer(401, "", {"WWW-Authenticate": 'Basic realm="Riak"'})

    # -------------------------------------------------------------- routes

    def _route(self, segments: list[bytes], record: Recorded
               ) -> tuple[int, dict[str, str], bytes | Iterator[bytes]]:
        method = self.command
        if method not in _KNOWN_METHODS:
            # Webmachine's first decision (B12, known_methods): 501 for any path.
            raise html_error(501, f"The server does not support the {method!r} method.<br>")
        if segments == [b"ping"] and method in ("GET", "HEAD"):
            return 200, {"Content-Type": "text/html"}, b"OK"
        if len(segments) < 3 or segments[0] != b"types":
            raise _Answer(404, "<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD></HTML>",
                          {"Content-Type": "text/html"})
        bucket_type = _text(segments[1])
        self._check_params(record.query)
        with self.double.lock:
            known = bucket_type in self.double.types
        if len(segments) == 3 and segments[2] == b"props":
            if not known:
                raise html_error(404, "The requested document was not found on this server.")
            return self._json({"props": self.double.props(bucket_type)})
        if len(segments) >= 4 and segments[2] == b"buckets":
            bucket = segments[3]
            if not known:
                # wm_object:handle_common_error(bucket_type_unknown)
                raise _Answer(404, f"Unknown bucket type: {bucket_type}")
            rest = segments[4:]
            if rest == [b"props"] and method in ("GET", "HEAD"):
                return self._json({"props": self.double.props(bucket_type, _text(bucket))})
            if rest == [b"keys"] and method in ("GET", "HEAD"):
                return self._list_keys(segments[1], bucket, record.query)
            if len(rest) == 2 and rest[0] == b"keys":
                path = (segments[1], bucket, rest[1])
                props = self.double.props(bucket_type, _text(bucket))
                if method in ("GET", "HEAD"):
                    return self._get(path, record.query)
                if method in ("PUT", "POST"):
                    return self._put(path, props, record)
                if method == "DELETE":
                    return self._delete(path, props)
                raise html_error(405)
        raise _Answer(404, "<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD></HTML>",
                      {"Content-Type": "text/html"})

    def _check_params(self, query: dict[str, str]) -> None:
        # wm_object:malformed_rw_params and malformed_timeout_param.
        for name in _QUORUM_PARAMS:
            value = query.get(name)
            if value is not None and not (value.isdigit() or value in _QUORUM_WORDS):
                raise _Answer(400, f"{name} query parameter must be an integer or one of the "
                                   f"following words: 'one', 'quorum' or 'all'\n")
        timeout = query.get("timeout")
        if timeout is not None and not timeout.lstrip("-").isdigit():
            raise _Answer(400, f"Bad timeout value {timeout!r}\n")

    def _json(self, value: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, json.dumps(value).encode()

    def _list_keys(self, bucket_type: bytes, bucket: bytes, query: dict[str, str]
                   ) -> tuple[int, dict[str, str], bytes | Iterator[bytes]]:
        with self.double.lock:
            keys = [_text(k) for (t, b, k) in self.double.objects
                    if t == bucket_type and b == bucket]
        headers = {"Content-Type": "application/json"}
        mode = query.get("keys")
        if mode == "true":
            return 200, headers, json.dumps({"keys": keys}).encode()
        if mode == "stream":
            batches = self._key_batches(keys)

            def chunks() -> Iterator[bytes]:
                # wm_keylist:stream_keys: one {"keys":[...]} per batch from
                # the cluster, then {"keys":[]} when done, no separators.
                for batch in batches:
                    yield json.dumps({"keys": batch}).encode()
                yield b'{"keys":[]}'

            return 200, headers, chunks()
        return 200, headers, b"{}"

    def _key_batches(self, keys: list[str]) -> list[list[str]]:
        step = self.double.stream_chunk
        if step is not None:
            step = max(1, step)
            return [keys[i:i + step] for i in range(0, len(keys), step)]
        # As a real node answers: each vnode's keys in one batch, so sizes
        # vary and many batches are empty (a vnode without keys of the
        # bucket), and the last vnodes to answer often have none.
        vnodes = 8
        batches: list[list[str]] = [[] for _ in range(vnodes)]
        for key in keys:
            batches[zlib.crc32(key.encode("utf-8", "surrogateescape")) % vnodes].append(key)
        random.shuffle(batches)
        return [*batches, *([[]] * random.randint(1, 3))]

    def _current(self, path: tuple[bytes, bytes, bytes]) -> _Object | None:
        with self.double.lock:
            obj = self.double.objects.get(path)
            return None if obj is None else _Object(dict(obj.clock), list(obj.siblings))

    def _get(self, path: tuple[bytes, bytes, bytes], query: dict[str, str]
             ) -> tuple[int, dict[str, str], bytes]:
        obj = self._current(path)
        if obj is None:
            raise _Answer(404, "not found\n")
        if not obj.live:
            # wm_object:handle_common_error({deleted, VClock}): 404 that
            # still carries the tombstone's vclock.
            raise _Answer(404, "not found\n", {"X-Riak-Vclock": encode_vclock(obj.clock),
                                               "X-Riak-Deleted": "true"})
        etag = _etag(obj)
        modified = max(s.last_modified for s in obj.siblings)
        if self.headers.get("If-None-Match", "").strip('"') == etag:
            raise _Answer(304, "", {"ETag": f'"{etag}"'})
        since = self.headers.get("If-Modified-Since")
        if since:
            parsed = email.utils.parsedate_to_datetime(since).timestamp()
            if int(modified) <= parsed:
                raise _Answer(304, "", {"ETag": f'"{etag}"'})
        return self._representation(obj, self.headers.get("Accept"),
                                    ["text/plain", "multipart/mixed"], path[1])

    def _representation(self, obj: _Object, accept: str | None, sibling_types: list[str],
                        bucket: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {"X-Riak-Vclock": encode_vclock(obj.clock),
                   "Vary": "Accept-Encoding"}
        link = f'</buckets/{quote(bucket, safe="")}>; rel="up"'
        if len(obj.siblings) == 1:
            sibling = obj.siblings[0]
            if choose_media_type([sibling.content_type], accept) is None:
                raise html_error(406)
            headers.update({
                "Content-Type": sibling.content_type,
                "ETag": f'"{sibling.vtag}"',
                "Last-Modified": _http_date(sibling.last_modified),
                "Link": link,
            })
            return 200, headers, sibling.value
        chosen = choose_media_type(sibling_types, accept)
        if chosen is None:
            raise html_error(406)
        headers["ETag"] = f'"{_etag(obj)}"'
        headers["Vary"] = "Accept, Accept-Encoding"
        headers["Last-Modified"] = _http_date(max(s.last_modified for s in obj.siblings))
        if chosen == "text/plain":
            # wm_object:produce_sibling_message_body
            lines = "".join(f"{s.vtag}\n" for s in obj.siblings)
            headers["Content-Type"] = "text/plain"
            return 300, headers, f"Siblings:\n{lines}".encode()
        # wm_object:produce_multipart_body and wm_utils:multipart_encode_body
        boundary = _unique_id_62()
        body = bytearray()
        for s in obj.siblings:
            part = (f"Content-Type: {s.content_type}\r\n"
                    f"Link: {link}\r\n"
                    f"Etag: {s.vtag}\r\n"
                    f"Last-Modified: {_http_date(s.last_modified)}\r\n")
            if s.deleted:
                part += "X-Riak-Deleted: true\r\n"
            body += f"\r\n--{boundary}\r\n{part}\r\n".encode() + s.value
        body += f"\r\n--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/mixed; boundary={boundary}"
        return 300, headers, bytes(body)

    def _context(self) -> dict[str, int] | None:
        header = self.headers.get("X-Riak-Vclock")
        if header is None:
            return None
        try:
            return decode_vclock(header)
        except (ValueError, zlib.error, TypeError):
            # Riak's base64:decode / binary_to_term crash, and webmachine
            # renders the crash: a 500 whose HTML body holds an Erlang trace.
            trace = ("{error,{error,badarg,[{erlang,binary_to_term,[&lt;&lt;...&gt;&gt;],[]},"
                     "{riak_object,decode_vclock,1,[{file,\"src/riak_object.erl\"},"
                     "{line,1035}]},{riak_kv_wm_object,decode_vclock_header,1,"
                     "[{file,\"src/riak_kv_wm_object.erl\"},{line,1209}]}]}}")
            raise html_error(500, "The server encountered an error while processing this "
                                  f"request:<br><pre>{trace}</pre>") from None

    def _put(self, path: tuple[bytes, bytes, bytes], props: dict[str, Any], record: Recorded
             ) -> tuple[int, dict[str, str], bytes]:
        content_type = self.headers.get("Content-Type")
        if content_type is None:
            raise _Answer(400, "Missing Content-Type request header")  # malformed_content_type
        media = content_type.split(";")[0].strip()
        accept = self.headers.get("Accept")
        # Webmachine negotiates (C3/C4) before the write: 406 leaves no trace.
        if choose_media_type([media], accept) is None:
            raise html_error(406)
        context = self._context()
        with self.double.lock:
            current = self.double.objects.get(path)
            live = current is not None and bool(current.live)
            if_none_match = self.headers.get("If-None-Match")
            if if_none_match is not None and if_none_match.strip() == "*" and live:
                raise html_error(412)
            if_match = self.headers.get("If-Match")
            if if_match is not None and (
                not live or current is None
                or if_match.strip().strip('"') != _etag(current)
            ):
                raise html_error(412)
            obj = self.double.write(
                path, props, _Sibling(record.body, media, False, ("", 0)), context
            )
            snapshot = _Object(dict(obj.clock), list(obj.siblings))
        if record.query.get("returnbody") == "true":
            # With siblings and no Accept (or */*), a real node answers the
            # text/plain vtag list; multipart/mixed only when asked for.
            return self._representation(snapshot, accept, ["text/plain", "multipart/mixed"],
                                        path[1])
        # Webmachine sets the negotiated Content-Type even on a 204.
        return 204, {"Content-Type": media}, b""

    def _delete(self, path: tuple[bytes, bytes, bytes], props: dict[str, Any]
                ) -> tuple[int, dict[str, str], bytes]:
        context = self._context()
        with self.double.lock:
            current = self.double.objects.get(path)
            if context is None:
                # riak_kv_delete fetches first; a missing key (or only a
                # tombstone) is notfound: 404.
                if current is None or not current.live:
                    raise _Answer(404, "not found\n")
                context = dict(current.clock)
            # With a vclock Riak writes the tombstone even over nothing.
            self.double.write(path, props, _Sibling(b"", "application/octet-stream", True,
                                                    ("", 0)), context)
        return 204, {"Content-Type": "text/html"}, b""
