"""``CassandraBackend``: siblings as rows of one partition per key.

Over 400 lines on purpose: one class whose methods share the session, the
prepared statements and the writer positions, and whose folds (single batch
or chunked) must be read together with the package docstring's safety
argument. What stands alone does, beside it: URL options (``_options``),
the pure position algorithm (``_positions``), the schema (``_schema``) and
the error mapping (``_errors``).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult

from cassandra import ProtocolVersion
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
    WhiteListRoundRobinPolicy,
)
from cassandra.query import (
    BatchStatement,
    BatchType,
    BoundStatement,
    PreparedStatement,
    tuple_factory,
)
from cassandra.util import uuid_from_time

from ...errors import (
    BackendError,
    ConfigError,
    InvalidInputError,
    InvalidKeyError,
)
from ..base import Backend, Capabilities, Fetched, MiB, StoreLimits, StoreResult
from ._errors import map_errors
from ._options import TABLE, CassandraOptions, parse_url
from ._positions import FoldContext, build_context, narrow_context
from ._schema import schema_cql

#: Rough bytes a range delete adds to a batch: two clustering bounds
#: (16-byte timeuuid + 8-byte bigint each), deletion time, framing.
_DELETE_OVERHEAD = 80
#: Fixed per-batch overhead we budget for: partition key, row header, covers.
_BATCH_OVERHEAD = 200
#: Blind writes to distinct keys share a batch this many at most, and up to
#: this many bytes (see ``CassandraBackend._grouped_inserts``).
_KEYS_PER_BATCH = 10
_GROUPED_BATCH_BYTES = 4096


class _Writers:
    """This connection's writer id and next ``seq`` per key (bounded LRU).

    A key that falls out of the cache, or whose write failed (so a ``seq``
    may be missing for good), gets a fresh writer id next time: positions are
    never reused, and gaps never sit inside a writer's live sequence.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._next: OrderedDict[tuple[str, str], tuple[uuid.UUID, int]] = OrderedDict()

    def allocate(self, bucket: str, key: str) -> tuple[uuid.UUID, int]:
        with self._lock:
            slot = (bucket, key)
            writer, seq = self._next.pop(slot, None) or (uuid_from_time(time.time()), 0)
            if self._capacity:
                self._next[slot] = (writer, seq + 1)
                if len(self._next) > self._capacity:
                    self._next.popitem(last=False)
            return writer, seq

    def forget(self, bucket: str, key: str) -> None:
        with self._lock:
            self._next.pop((bucket, key), None)



# --------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Inspection:
    """What one traced read of a key scanned (``CassandraBackend.inspect``)."""

    siblings: int
    writers: int
    live_rows: int
    tombstones: int
    warnings: tuple[str, ...]
    consistency: str | None


_TRACE_READ = re.compile(r"Read (\d+) live rows and (\d+) tombstone cells")


@dataclass
class _Statements:
    fetch: PreparedStatement
    insert: PreparedStatement
    insert_folded: PreparedStatement
    delete_range: PreparedStatement
    delete_key: PreparedStatement
    keys: PreparedStatement


def _connection_class() -> Any:
    """libev when the driver was built with it, else asyncio.

    The driver's own default falls back to asyncore, which warns
    (DeprecationWarning) on Python 3.10-3.11 and is gone in 3.12.
    """
    try:
        from cassandra.io.libevreactor import LibevConnection
    except ImportError:  # pragma: no cover - depends on the driver build
        from cassandra.io.asyncioreactor import AsyncioConnection

        return AsyncioConnection
    return LibevConnection


class CassandraBackend(Backend):
    """Siblings as rows of one Cassandra partition per key; see the module doc.

    ``store`` returns ``None`` (the sibling count is not known without a
    read). Reads use ``read_consistency``, writes ``write_consistency``.
    """

    #: Cassandra refuses a mutation over max_mutation_size, half of
    #: commitlog_segment_size (32 MiB by default): 16 MiB. A store with a
    #: context is one batch (the value, its key and range tombstones), so a
    #: value keeps 1 MiB below that.
    limits = StoreLimits(value_bytes=15 * MiB, hard_value_bytes=16 * MiB)
    #: ``keys`` (a full scan, for admin sweeps), ``narrow`` (partial
    #: folds: the small siblings are replaced, the large base stays) and
    #: ``replace_many`` (the folds after a fan-out, stored concurrently).
    capabilities = Capabilities(keys=True, narrow=True, replace_many=True)

    def __init__(self, options: CassandraOptions, *, create: bool | None = None) -> None:
        self.options = options
        self._writers = _Writers(options.writer_cache)
        self._closed = False
        with map_errors("connect", options):
            self._cluster = self._make_cluster(options)
            self._session: Session = self._cluster.connect()
        #: What opening did to the schema (``ensure_schema``); empty with create=0.
        self.schema_actions: list[str] = []
        try:
            if options.create if create is None else create:
                self.schema_actions = self.ensure_schema()
            self._statements = self._prepare()
        except BaseException:
            self._cluster.shutdown()
            raise

    # -- setup ------------------------------------------------------------

    @staticmethod
    def _make_cluster(options: CassandraOptions) -> Cluster:
        child: Any = (
            WhiteListRoundRobinPolicy(list(options.hosts))
            if options.pin_hosts
            else DCAwareRoundRobinPolicy(options.local_dc)
        )
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(child),
            request_timeout=options.timeout,
            consistency_level=options.read_consistency,
            row_factory=tuple_factory,
        )
        kwargs: dict[str, Any] = {}
        if options.protocol_version is not None:
            kwargs["protocol_version"] = options.protocol_version
        if options.username is not None:
            kwargs["auth_provider"] = PlainTextAuthProvider(
                options.username, options.password or ""
            )
        if options.tls:
            try:
                context = ssl.create_default_context(cafile=options.tls_ca)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load tls_ca {options.tls_ca!r}: {exc}") from exc
            context.check_hostname = options.tls_check_hostname
            kwargs["ssl_context"] = context
        cluster = Cluster(
            contact_points=list(options.hosts),
            port=options.port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=options.connect_timeout,
            # A node that comes back is used again within ~10 s, not the
            # driver's default of up to 10 minutes.
            reconnection_policy=ExponentialReconnectionPolicy(0.5, 10.0),
            connection_class=_connection_class(),
            # The reactor writes a request in 4 KiB pieces; with Nagle on,
            # every request over 4 KiB (a fold or repair of a 1,000-item
            # value) waited for the server's 40 ms delayed ACK: 43-51 ms
            # instead of ~8 (issue 11, docs/benchmarks.md).
            sockopts=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            **kwargs,
        )
        if options.protocol_version is None:
            # Negotiate, but from v5 (the newest non-beta Apache version)
            # rather than the driver's DSE-only v66/v65, which every Apache
            # Cassandra refuses with a logged warning per connect. Setting the
            # attribute (not the constructor argument) keeps the driver's
            # step-down to v4/v3 for older servers.
            cluster.protocol_version = ProtocolVersion.V5
        return cluster

    def ensure_schema(self) -> list[str]:
        """Create the keyspace and table if missing; return what was done."""
        self._check_open()
        ks = self.options.keyspace
        with map_errors("schema"):
            metadata = self._cluster.metadata
            had_keyspace = ks in metadata.keyspaces
            had_table = had_keyspace and TABLE in metadata.keyspaces[ks].tables
            if had_table:  # the common case: no DDL, no schema agreement wait
                return [f"keyspace {ks}: exists", f"table {ks}.{TABLE}: exists"]
            release = self._session.execute("SELECT release_version FROM system.local").one()
            major = int(str(release[0]).split(".")[0]) if release else 5
            nodes = max(1, len(metadata.all_hosts()))
            for statement in schema_cql(
                self.options, replication_factor=min(3, nodes), major_version=major
            ):
                self._session.execute(statement, timeout=max(self.options.timeout, 60.0))
        return [
            f"keyspace {ks}: {'exists' if had_keyspace else 'created'}",
            f"table {ks}.{TABLE}: {'exists' if had_table else 'created'}",
        ]

    def _prepare(self) -> _Statements:
        table = f'"{self.options.keyspace}".{TABLE}'
        where = "WHERE bucket = ? AND key = ?"
        texts = {
            "fetch": f"SELECT writer, seq, value, covers, WRITETIME(value) FROM {table} {where}",
            "insert": f"INSERT INTO {table} (bucket, key, writer, seq, value)"
            " VALUES (?, ?, ?, ?, ?)",
            "insert_folded": f"INSERT INTO {table} (bucket, key, writer, seq, value, covers)"
            " VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
            "delete_range": f"DELETE FROM {table} USING TIMESTAMP ? {where}"
            " AND writer = ? AND seq >= ? AND seq <= ?",
            "delete_key": f"DELETE FROM {table} {where}",
            "keys": f"SELECT DISTINCT bucket, key FROM {table}",
        }
        prepared: dict[str, PreparedStatement] = {}
        try:
            with map_errors("prepare"):
                for name, text in texts.items():
                    statement = self._session.prepare(text)
                    statement.is_idempotent = True  # positions are never rewritten
                    statement.consistency_level = (
                        self.options.read_consistency
                        if name in ("fetch", "keys")
                        else self.options.write_consistency
                    )
                    prepared[name] = statement
        except BackendError as exc:
            if "unconfigured table" in str(exc) or "does not exist" in str(exc):
                raise ConfigError(
                    f"table {table} does not exist; run `timak cassandra init` "
                    "or drop create=0 from the URL"
                ) from exc
            raise
        prepared["keys"].fetch_size = 1000
        return _Statements(**prepared)

    # -- helpers -----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("cassandra backend is closed")

    @staticmethod
    def _check_key(*names: str) -> None:
        for name in names:
            try:
                name.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidKeyError(f"key or bucket is not valid UTF-8 text: {exc}") from None

    @property
    def session(self) -> Session:
        """The driver session, for diagnostics and tests."""
        return self._session

    @property
    def statements(self) -> _Statements:
        """The prepared statements, for diagnostics and tests."""
        return self._statements

    @staticmethod
    def _fetched(rows: Iterable[tuple[Any, ...]]) -> Fetched:
        siblings: list[bytes] = []
        positions: list[tuple[uuid.UUID, int, bytes | None, int | None]] = []
        for writer, seq, value, covers, writetime in rows:
            siblings.append(bytes(value) if value is not None else b"")
            positions.append((writer, seq, covers, writetime))
        if not siblings:
            return Fetched([], None)
        return Fetched(siblings, build_context(positions))

    # -- the contract ------------------------------------------------------

    def fetch(self, bucket: str, key: str) -> Fetched:
        """Every sibling of ``key``; the context is a ``FoldContext`` (or ``None``)."""
        self._check_open()
        self._check_key(bucket, key)
        with map_errors("fetch"):
            return self._fetched(self._session.execute(self._statements.fetch, (bucket, key)))

    def fetch_many(self, bucket: str, keys: Iterable[str]) -> list[Fetched]:
        """``fetch`` for many keys with ``concurrency`` requests in flight, in order."""
        self._check_open()
        params = [(bucket, key) for key in keys]
        self._check_key(bucket, *(key for _, key in params))
        with map_errors("fetch_many"):
            results = execute_concurrent_with_args(
                self._session,
                self._statements.fetch,
                params,
                concurrency=self.options.concurrency,
                raise_on_first_error=True,
            )
            return [self._fetched(result) for _, result in results]

    def narrow(self, context: Any, indices: Iterable[int]) -> FoldContext:
        """A context replacing only the siblings at ``indices`` of the fetch
        that made ``context`` (see ``timak.backends.base.Narrowing``).

        Its range deletes never reach a position of the fetch's other
        siblings (an interval that holds one is split around it), and the
        new sibling's ``covers`` records only what the named siblings hold;
        the package docstring argues why that is safe and keeps tombstones
        bounded. Raises ``InvalidInputError`` for a context this backend
        did not make or an index outside the fetch's list.
        """
        if not isinstance(context, FoldContext):
            raise InvalidInputError(
                f"not a context from CassandraBackend.fetch: {context!r:.80}"
            )
        return narrow_context(context, indices)

    def store(self, bucket: str, key: str, value: bytes, context: Any = None) -> StoreResult:
        """Add ``value`` at a fresh position; with a context, also delete the
        intervals it saw (atomically, or after the write when too large).

        Returns ``None``: the sibling count is unknown without a read.
        """
        self._check_open()
        self._check_key(bucket, key)
        if context is not None and not isinstance(context, FoldContext):
            raise InvalidInputError(f"not a context from CassandraBackend.fetch: {context!r}")
        writer, seq = self._writers.allocate(bucket, key)
        try:
            if context is None:
                with map_errors("store"):
                    self._session.execute(
                        self._statements.insert, (bucket, key, writer, seq, bytes(value))
                    )
            else:
                self._store_folded(bucket, key, writer, seq, bytes(value), context)
        except BaseException:
            self._writers.forget(bucket, key)
            raise
        return None

    def _store_folded(
        self,
        bucket: str,
        key: str,
        writer: uuid.UUID,
        seq: int,
        value: bytes,
        context: FoldContext,
    ) -> None:
        first, later = self._fold_requests(bucket, key, writer, seq, value, context)
        with map_errors("store"):
            for statement, params in first:
                self._session.execute(statement, params)
            if later:
                self._delete_in_chunks(later)

    def _fold_requests(
        self,
        bucket: str,
        key: str,
        writer: uuid.UUID,
        seq: int,
        value: bytes,
        context: FoldContext,
    ) -> tuple[list[tuple[Any, Any]], list[tuple[Any, ...]]]:
        """One fold's requests to run first, as ``(statement, params)``, and
        the range deletes to send only once they succeeded (empty when the
        whole fold is one batch)."""
        # One timestamp for the fold, above every write time it saw, so a row
        # written by a writer whose clock runs ahead is still deleted.
        stamp = max(time.time_ns() // 1000, context.min_timestamp)
        insert = (bucket, key, writer, seq, value, context.covers, stamp)
        deletes = [(stamp, bucket, key, w, lo, hi) for w, lo, hi in context.deletes]
        # Single-partition batches are atomic and isolated, and Cassandra
        # (since CASSANDRA-10876) does not apply batch_size_*_threshold to
        # them; but a server configured otherwise, or a mutation over
        # max_mutation_size, would reject it. Above batch_limit we therefore
        # do not risk a rejected fold: write the new sibling first, then
        # delete in chunks. A crash in between leaves only siblings the new
        # one already contains, which the next fold merges away (the merge is
        # idempotent) - never a lost write.
        estimate = (
            len(value) + len(context.covers) + _BATCH_OVERHEAD + _DELETE_OVERHEAD * len(deletes)
        )
        if estimate <= self.options.batch_limit:
            batch = self._batch()
            batch.add(self._statements.insert_folded, insert)
            for params in deletes:
                batch.add(self._statements.delete_range, params)
            return [(batch, None)], []
        return [(self._statements.insert_folded, insert)], deletes

    def _batch(self) -> BatchStatement:
        batch = BatchStatement(
            batch_type=BatchType.UNLOGGED, consistency_level=self.options.write_consistency
        )
        batch.is_idempotent = True
        return batch

    def _delete_batches(self, deletes: Sequence[tuple[Any, ...]]) -> list[tuple[Any, Any]]:
        per_batch = max(1, (self.options.batch_limit - _BATCH_OVERHEAD) // _DELETE_OVERHEAD)
        requests: list[tuple[Any, Any]] = []
        for start in range(0, len(deletes), per_batch):
            batch = self._batch()
            for params in deletes[start : start + per_batch]:
                batch.add(self._statements.delete_range, params)
            requests.append((batch, None))
        return requests

    def _delete_in_chunks(self, deletes: Sequence[tuple[Any, ...]]) -> None:
        for batch, _ in self._delete_batches(deletes):
            self._session.execute(batch)

    def replace_many(
        self, bucket: str, entries: Sequence[tuple[str, bytes, Any]]
    ) -> list[StoreResult]:
        """``store(bucket, key, value, context)`` for every entry, with
        ``concurrency`` requests in flight; every result is ``None``.

        Every context is checked before anything is written
        (``InvalidInputError``). A fold that takes two steps (over
        ``batch_limit``) has its deletes sent only after every first step
        succeeded, so each new sibling is written before what it replaces
        is deleted, as in ``store``. A failure may leave any of the entries
        stored (they run at once, not in order); each is a store of its
        own, safe alone, so retrying or leaving the rest is safe.
        """
        self._check_open()
        self._check_key(bucket, *(key for key, _, _ in entries))
        for _, _, context in entries:
            if context is not None and not isinstance(context, FoldContext):
                raise InvalidInputError(
                    f"not a context from CassandraBackend.fetch: {context!r:.80}"
                )
        first: list[tuple[Any, Any]] = []
        then: list[tuple[Any, Any]] = []
        for key, value, context in entries:
            writer, seq = self._writers.allocate(bucket, key)
            if context is None:
                first.append((self._statements.insert, (bucket, key, writer, seq, bytes(value))))
                continue
            now, later = self._fold_requests(bucket, key, writer, seq, bytes(value), context)
            first += now
            then += self._delete_batches(later)
        try:
            with map_errors("replace_many"):
                for requests in (first, then):
                    if requests:
                        execute_concurrent(
                            self._session,
                            requests,
                            concurrency=self.options.concurrency,
                            raise_on_first_error=True,
                        )
        except BaseException:
            for key, _, _ in entries:
                self._writers.forget(bucket, key)
            raise
        return [None] * len(entries)

    def store_many(self, bucket: str, entries: Iterable[tuple[str, bytes]]) -> list[StoreResult]:
        """Blind-write many pairs, ``concurrency`` requests in flight; every
        result is ``None``.

        Each pair is its own sibling. Pairs for the same key go to one
        partition, so they are sent together as single-partition batches
        (one mutation each, up to ``batch_limit`` bytes) rather than as one
        request per pair: a hot key written many times costs a few requests.
        Keys written once (a fan-out) share small batches, up to 10 keys
        with the same replicas each (``_grouped_inserts``). A failure may
        leave any of the pairs written.
        """
        self._check_open()
        pairs = list(entries)
        self._check_key(bucket, *(key for key, _ in pairs))
        by_key: dict[str, list[tuple[Any, ...]]] = {}
        for key, value in pairs:
            position = self._writers.allocate(bucket, key)
            by_key.setdefault(key, []).append((bucket, key, *position, bytes(value)))
        requests: list[tuple[Any, Any]] = []
        singles: list[tuple[Any, ...]] = []
        for rows in by_key.values():
            if len(rows) == 1:
                singles.append(rows[0])
                continue
            batch, size = self._batch(), 0
            for row in rows:
                row_size = len(row[4]) + _DELETE_OVERHEAD
                if size and size + row_size > self.options.batch_limit:
                    requests.append((batch, None))
                    batch, size = self._batch(), 0
                batch.add(self._statements.insert, row)
                size += row_size
            requests.append((batch, None))
        requests += self._grouped_inserts(singles)
        try:
            with map_errors("store_many"):
                execute_concurrent(
                    self._session,
                    requests,
                    concurrency=self.options.concurrency,
                    raise_on_first_error=True,
                )
        except BaseException:
            for key in by_key:
                self._writers.forget(bucket, key)
            raise
        return [None] * len(pairs)

    def _grouped_inserts(self, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, Any]]:
        """One-row inserts for distinct keys, as requests: up to
        ``_KEYS_PER_BATCH`` keys whose partitions have the same replicas in
        one ``UNLOGGED`` batch, kept under ``_GROUPED_BATCH_BYTES``.

        The Python driver costs ~0.3 ms of CPU per request, which made a
        fan-out to 1,000 keys 410 ms of one-row requests; batches of 10 took
        81 ms (docs/benchmarks.md). Grouping by replica set sends each batch
        to a node that owns all its partitions (the driver routes a batch by
        its first statement), so no coordinator forwards another's writes.
        Such a batch is not atomic across its partitions, which a blind
        write never needs (each row is a sibling of its own; a failure may
        leave some written, as ``store_many`` says). The limits stay under
        Cassandra's defaults for multi-partition batches:
        ``unlogged_batch_across_partitions_warn_threshold`` (warns above 10)
        and ``batch_size_warn_threshold`` (5 KiB)."""
        groups: dict[frozenset[Any], list[tuple[BoundStatement, int]]] = {}
        requests: list[tuple[Any, Any]] = []
        keyspace = self.options.keyspace
        metadata = self._cluster.metadata
        for row in rows:
            bound = self._statements.insert.bind(row)
            if len(row[4]) + _DELETE_OVERHEAD > _GROUPED_BATCH_BYTES:
                requests.append((bound, None))
                continue
            replicas = frozenset(metadata.get_replicas(keyspace, bound.routing_key))
            groups.setdefault(replicas, []).append((bound, len(row[4])))
        for bounds in groups.values():
            batch, size = self._batch(), 0
            for bound, value_size in bounds:
                row_size = value_size + _DELETE_OVERHEAD
                if len(batch) == _KEYS_PER_BATCH or size + row_size > _GROUPED_BATCH_BYTES:
                    requests.append((batch, None))
                    batch, size = self._batch(), 0
                batch.add(bound)
                size += row_size
            requests.append((batch if len(batch) > 1 else bound, None))
        return requests

    def delete(self, bucket: str, key: str, context: Any = None) -> None:
        """Without a context: one partition tombstone (every sibling goes, and
        so would a write with an older timestamp, e.g. from a slow clock).
        With one: the intervals the fetch saw, as range tombstones."""
        self._check_open()
        self._check_key(bucket, key)
        with map_errors("delete"):
            if context is None:
                self._session.execute(self._statements.delete_key, (bucket, key))
                return
            if not isinstance(context, FoldContext):
                raise InvalidInputError(f"not a context from CassandraBackend.fetch: {context!r}")
            stamp = max(time.time_ns() // 1000, context.min_timestamp)
            self._delete_in_chunks(
                [(stamp, bucket, key, w, lo, hi) for w, lo, hi in context.deletes]
            )

    def keys(self, bucket: str) -> Iterator[str]:
        """Every key of ``bucket`` with a live sibling.

        This scans every partition of the table (``SELECT DISTINCT``, paged):
        an admin operation for ``timak compact``, not for request paths.
        """
        self._check_open()
        self._check_key(bucket)
        return self._scan_keys(bucket)

    def _scan_keys(self, bucket: str) -> Iterator[str]:
        with map_errors("keys"):
            for row_bucket, key in self._session.execute(self._statements.keys):
                if row_bucket == bucket:
                    yield key

    def inspect(self, bucket: str, key: str) -> Inspection:
        """Fetch ``key`` with tracing on and report what the read scanned:
        live rows, tombstone cells (the figure Cassandra's
        ``tombstone_warn_threshold`` applies to), server warnings and the
        consistency level the coordinator used."""
        self._check_open()
        self._check_key(bucket, key)
        with map_errors("inspect"):
            result = self._session.execute(self._statements.fetch, (bucket, key), trace=True)
            rows = list(result)
            trace = result.get_query_trace(max_wait_sec=10.0)
            live = tombstones = 0
            for event in trace.events:
                match = _TRACE_READ.search(str(event.description))
                if match:
                    live += int(match.group(1))
                    tombstones += int(match.group(2))
            parameters = trace.parameters or {}
            warnings = tuple(result.response_future.warnings or ())
        return Inspection(
            siblings=len(rows),
            writers=len({row[0] for row in rows}),
            live_rows=live,
            tombstones=tombstones,
            warnings=warnings,
            consistency=parameters.get("consistency_level"),
        )

    def __enter__(self) -> CassandraBackend:
        return self

    def close(self) -> None:
        """Shut the driver's connections down; later calls raise ``BackendError``."""
        if not self._closed:
            self._closed = True
            self._cluster.shutdown()


def from_url(parts: SplitResult, *, create: bool | None = None) -> CassandraBackend:
    """Open ``cassandra://hosts/keyspace?...`` (see ``parse_url``).

    ``create`` overrides the URL's ``create`` option.
    """
    return CassandraBackend(parse_url(parts), create=create)

