"""``RiakBackend``: the backend contract over Riak's HTTP API.

Over 400 lines on purpose: it is one class whose methods share a connection
pool, an executor and the per-bucket property check, and whose constructor
documents and validates every option. What can stand alone does, beside it:
error mapping (``_errors``), the multipart and key-stream parsers
(``_multipart``, ``_keys``), bucket properties (``_props``), URLs (``_url``).
"""

from __future__ import annotations

import codecs
import json
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import urllib3

from ..._options import flag_option, int_option, number_option
from ..._version import __version__
from ...errors import (
    BackendError,
    ConfigError,
    InvalidInputError,
    LargeObjectWarning,
    ValueTooLargeError,
)
from ..base import Backend, Fetched, MiB, StoreLimits, StoreResult
from ._common import (
    _ACCEPT_COUNT,
    _ACCEPT_SIBLINGS,
    _CONTENT_TYPE,
    _HEAD_BATCH,
    _QUORUM_WORD,
    _READ_PARAMS,
    _VCLOCK,
    _WRITE_PARAMS,
    DEFAULT_BUCKET_TYPE,
    DEFAULT_COUNT_SIBLINGS_BELOW,
    DEFAULT_MAX_SIZE,
    DEFAULT_WARN_SIZE,
    segment,
)
from ._errors import excerpt, mapped_errors, status_error
from ._keys import decode_objects, keys_of
from ._multipart import parse_multipart
from ._props import props_problems, setup_commands


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

    #: Riak refuses an object over 50 MiB (object.size.maximum), all
    #: siblings together: 16 MiB leaves room for three full siblings (a
    #: value written by concurrent read-modify-writes) and the blind ones.
    #: Riak is at its best under 1 MB.
    limits = StoreLimits(value_bytes=16 * MiB, hard_value_bytes=50 * MiB,
                         advised_value_bytes=1_000_000)

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
        self._type_path = "/types/" + segment(bucket_type, "bucket type")
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
        return (f"{self._type_path}/buckets/{segment(bucket, 'bucket')}"
                f"/keys/{segment(key, 'key')}")

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
        with mapped_errors(where):
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
            raise status_error(response.status, response.data, where)
        try:
            props = json.loads(response.data)["props"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"Riak {where}: unreadable props {excerpt(response.data)}") \
                from exc
        if not isinstance(props, dict):
            raise BackendError(f"Riak {where}: props is not an object")
        return props

    def bucket_type_props(self, bucket_type: str | None = None) -> dict[str, Any]:
        """``GET /types/T/props``: a bucket type's properties (default: this
        backend's type). Raises ``ConfigError`` if the type does not exist."""
        name = self.bucket_type if bucket_type is None else bucket_type
        return self._props_at(f"/types/{segment(name, 'bucket type')}/props",
                              f"props of type {name!r}", name)

    def bucket_props(self, bucket: str) -> dict[str, Any]:
        """``GET /types/T/buckets/B/props``: a bucket's effective properties."""
        return self._props_at(
            f"{self._type_path}/buckets/{segment(bucket, 'bucket')}/props",
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
                raise status_error(status, data, where)
            return Fetched([], None)
        if status not in (200, 300):
            raise status_error(status, data, where)
        vclock = response.headers.get("X-Riak-Vclock")
        if not vclock:
            raise BackendError(f"Riak {where}: {status} answer without X-Riak-Vclock")
        if status == 200:
            if response.headers.get("X-Riak-Deleted", "").lower() == "true":
                return Fetched([], None)
            return Fetched([data], vclock)
        parts = parse_multipart(data, response.headers.get("Content-Type", ""))
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
                    f"Riak {where}: unreadable sibling list {excerpt(response.data)}"
                )
            return sum(1 for line in lines[1:] if line.strip())
        raise status_error(status, response.data, where)

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
        raise status_error(response.status, response.data, where)

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
        raise status_error(response.status, response.data, where)

    def _listed_keys(self, bucket: str) -> Iterator[str]:
        """Keys from the ``keys=stream`` answer: concatenated ``{"keys":[..]}``."""
        where = f"list keys of {bucket!r}"
        path = f"{self._type_path}/buckets/{segment(bucket, 'bucket')}/keys"
        response = self._request(
            "GET", path, where, query=[("keys", "stream")],
            headers={"Accept": "application/json"}, stream=True,
        )
        seen: set[str] = set()
        finished = False
        try:
            with mapped_errors(where):
                if response.status != 200:
                    raise status_error(response.status, response.read(), where)
                decoder = json.JSONDecoder()
                text = codecs.getincrementaldecoder("utf-8")()
                buffer = ""
                chunks = response.stream(64 * 1024)
                while True:
                    chunk = next(chunks, None)
                    buffer += text.decode(chunk or b"", final=chunk is None)
                    buffer, found = decode_objects(decoder, buffer)
                    for obj in found:
                        for key in keys_of(obj, where):
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

