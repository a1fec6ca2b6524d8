"""Apache Cassandra backend: one row per sibling, folded with range tombstones.

URL::

    cassandra://[user:password@]host1,host2[:9042]/keyspace?option=value&...

See ``docs/cassandra.md`` for every option; ``parse_url`` documents them too.

Data model
==========

One table per keyspace::

    CREATE TABLE siblings (
        bucket text, key text,
        writer timeuuid,   -- who wrote the sibling (one id per backend + key)
        seq    bigint,     -- that writer's 0, 1, 2, ... for this key
        value  blob,       -- the sibling, opaque bytes
        covers blob,       -- on folded siblings only: which positions they contain
        PRIMARY KEY ((bucket, key), writer, seq))

A sibling's *position* is ``(writer, seq)``. A backend draws a fresh random
``writer`` id the first time it writes a key (and again after a failed write,
or when the key falls out of its bounded cache), then numbers its writes to
that key densely: 0, 1, 2, ... So **a position is written at most once**, and
a writer's positions for one key are consecutive clustering rows.

Why not one random id per sibling and a point delete per superseded sibling?
Because of tombstones. A key written 100,000 times and folded every 16 writes
would hold ~100,000 row tombstones until ``gc_grace_seconds`` pass and
compaction runs, and every read scans them: Cassandra warns at 1,000 and
fails the read at 100,000. Instead a fold deletes whole *intervals* of a
writer's positions with one range tombstone each, and each new interval of a
writer contains the previous one, so at read time the newer range tombstone
shadows the older ones: a read scans about two tombstone markers per writer
interval, however many folds came before (measured in docs/cassandra.md).

Why a fold may delete an interval (the safety argument)
-------------------------------------------------------
A folded sibling ``M`` records in ``covers`` a set of intervals
``writer: [lo, hi]``. Invariant: *every position in M's intervals was seen by
the fold that wrote M, or lies in an interval of a folded sibling that fold
saw* — so, by induction, M's value already includes (merges) the value that
was written at each of those positions.

A fetch computes, per writer, the union of (a) the positions it saw and
(b) the intervals recorded by the folded siblings it saw, and merges adjacent
or overlapping pieces into intervals. Every position in such an interval is
therefore contained in the value the caller builds from the siblings it was
given. ``store(..., context)`` writes that value at a *fresh* position, with
the intervals as its ``covers`` (so the invariant holds for it), and deletes
exactly those intervals that contain a seen sibling.

* Nothing unseen is deleted: an interval is made only of positions that were
  seen or are covered, never of positions that merely lie between them, and
  since positions are never rewritten, a write that lands after the fetch is
  at a position outside every interval (a writer's later write has a higher
  ``seq``; a gap in a writer's numbers — a write still in flight, or one that
  failed — splits its intervals instead of being bridged).
* Nothing seen is lost: the new sibling is written atomically with the
  deletes (one single-partition batch, which Cassandra applies atomically and
  in isolation), or, when that batch would be too large, *before* them; a
  crash in between leaves only redundant siblings, which merge away because
  the merge is idempotent.
* No clock is trusted: the argument uses positions only. Timestamps decide
  only whether a delete takes effect on a row written by a writer whose clock
  is ahead; folds therefore delete at ``max(now, newest write time seen + 1)``
  so such a row cannot linger as a (harmless, redundant) sibling.
* Consistency level, replica lag and paging do not matter: a stale or partial
  read sees fewer positions and so deletes less.

Superseded rows still sit in the memtable until it is flushed, and reads step
over them (not counted as tombstones, but ~2.5 us each on a small box); the
table's ``memtable_flush_period_in_ms`` (default 60 s) bounds that.

Dropping a recorded interval is always safe (it only forgets an optimisation),
so ``covers`` is capped: at most ``_MAX_IDLE_WRITERS`` writers without a
sibling in the fold, and ``_MAX_INTERVALS`` intervals per writer.

Errors
======
Every driver exception is mapped inside ``map_errors`` (``cassandra_errors.py``,
with ``error_class``).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import struct
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote

from ..errors import (
    BackendError,
    ConfigError,
    InvalidInputError,
    InvalidKeyError,
    MissingDriverError,
)
from .base import Backend, Fetched, StoreResult

try:
    from cassandra import ConsistencyLevel, ProtocolVersion
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
    from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
    from cassandra.policies import (
        DCAwareRoundRobinPolicy,
        ExponentialReconnectionPolicy,
        TokenAwarePolicy,
        WhiteListRoundRobinPolicy,
    )
    from cassandra.query import BatchStatement, BatchType, PreparedStatement, tuple_factory
    from cassandra.util import uuid_from_time
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise MissingDriverError(
        "the Cassandra backend needs the cassandra-driver package: "
        "pip install 'timak[cassandra]'"
    ) from _exc

from .cassandra_errors import _ERROR_TABLE as _ERROR_TABLE  # re-exported for tests
from .cassandra_errors import error_class, map_errors

__all__ = [
    "CassandraBackend",
    "CassandraOptions",
    "FoldContext",
    "Inspection",
    "build_context",
    "decode_covers",
    "encode_covers",
    "error_class",
    "from_url",
    "map_errors",
    "parse_url",
    "schema_cql",
]

DEFAULT_PORT = 9042
DEFAULT_KEYSPACE = "timak"
TABLE = "siblings"

#: Estimated size above which a fold is not sent as one batch (see
#: ``CassandraBackend._store_folded``). Cassandra's own thresholds are
#: ``batch_size_warn_threshold`` 5 KiB and ``batch_size_fail_threshold``
#: 50 KiB; we stay under the failing one.
DEFAULT_BATCH_LIMIT = 50 * 1024
#: Rough bytes a range delete adds to a batch: two clustering bounds
#: (16-byte timeuuid + 8-byte bigint each), deletion time, framing.
_DELETE_OVERHEAD = 80
#: Fixed per-batch overhead we budget for: partition key, row header, covers.
_BATCH_OVERHEAD = 200

#: Writers with no sibling in a fold whose intervals are still recorded.
_MAX_IDLE_WRITERS = 64
#: Intervals recorded per writer (more only appear while writes are in
#: flight during a fold, or after a writer failed mid-stream).
_MAX_INTERVALS = 8
_COVERS_VERSION = 1
_COVER_ENTRY = struct.Struct(">16sqq")

_KEYSPACE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")
_DC_RE = re.compile(r"[A-Za-z0-9_.\-]+")
_CONSISTENCY_NAMES = {
    name: value
    for name, value in ConsistencyLevel.name_to_value.items()
    if name not in ("SERIAL", "LOCAL_SERIAL")  # only valid for LWT conditions
}


# --------------------------------------------------------------------------
# URL
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CassandraOptions:
    """Everything a ``cassandra://`` URL can say, with the defaults."""

    hosts: tuple[str, ...] = ("127.0.0.1",)
    port: int = DEFAULT_PORT
    keyspace: str = DEFAULT_KEYSPACE
    read_consistency: int = ConsistencyLevel.LOCAL_QUORUM
    write_consistency: int = ConsistencyLevel.LOCAL_QUORUM
    timeout: float = 10.0
    connect_timeout: float = 5.0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca: str | None = None
    tls_check_hostname: bool = True
    local_dc: str | None = None
    #: Send requests only to ``hosts``, never to peers the driver discovers.
    pin_hosts: bool = False
    create: bool = True
    #: ``None``: SimpleStrategy with min(3, nodes) replicas.
    replication: dict[str, str] | None = None
    gc_grace_seconds: int = 864000
    memtable_flush_period_in_ms: int = 60_000
    compaction: str = "auto"
    batch_limit: int = DEFAULT_BATCH_LIMIT
    concurrency: int = 64
    writer_cache: int = 100_000
    protocol_version: int | None = None


_COMPACTIONS = {
    "leveled": {"class": "LeveledCompactionStrategy"},
    # UCS in leveled mode: few overlapping sstables per read, so the
    # superseded range tombstones are merged away early.
    "unified": {"class": "UnifiedCompactionStrategy", "scaling_parameters": "L4"},
    "sizetiered": {"class": "SizeTieredCompactionStrategy"},
}


def _positive_int(name: str, text: str, *, minimum: int = 1) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(f"cassandra URL option {name} must be an integer, got {text!r}") from None
    if number < minimum:
        raise ConfigError(f"cassandra URL option {name} must be >= {minimum}, got {number}")
    return number


def _seconds(name: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"cassandra URL option {name} must be seconds, got {text!r}") from None
    if not 0 < number < 86400:
        raise ConfigError(f"cassandra URL option {name} must be in (0, 86400), got {number}")
    return number


def _flag(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"cassandra URL option {name} must be 0 or 1, got {text!r}")


def _consistency(name: str, text: str) -> int:
    level = _CONSISTENCY_NAMES.get(text.upper())
    if level is None:
        known = ", ".join(sorted(_CONSISTENCY_NAMES))
        raise ConfigError(f"cassandra URL option {name}={text!r} is not one of {known}")
    return int(level)


def _replication(text: str) -> dict[str, str]:
    """``NetworkTopologyStrategy:dc1=3,dc2=2`` or ``SimpleStrategy:3``."""
    strategy, _, spec = text.partition(":")
    if strategy == "SimpleStrategy":
        factor = _positive_int("replication", spec)
        return {"class": "SimpleStrategy", "replication_factor": str(factor)}
    if strategy == "NetworkTopologyStrategy" and spec:
        result = {"class": "NetworkTopologyStrategy"}
        for item in spec.split(","):
            dc, _, dc_factor = item.partition("=")
            if not _DC_RE.fullmatch(dc):
                raise ConfigError(f"bad data center name {dc!r} in replication={text!r}")
            result[dc] = str(_positive_int("replication", dc_factor, minimum=0))
        return result
    raise ConfigError(
        "cassandra URL option replication must look like "
        f"'NetworkTopologyStrategy:dc1=3,dc2=3' or 'SimpleStrategy:3', got {text!r}"
    )


def _split_hosts(hostlist: str) -> tuple[tuple[str, ...], int]:
    """``h1,h2:9042`` / ``h1:9042,h2:9042`` / ``[::1]:9042`` -> hosts, port.

    ``SplitResult.hostname``/``port`` only understand one host, so the
    netloc is parsed here. One port for all hosts (the driver takes one).
    """
    hosts: list[str] = []
    ports: set[int] = set()
    for item in hostlist.split(","):
        item = item.strip()
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else rest
        elif item.count(":") == 1:
            host, port_text = item.split(":")
        else:
            host, port_text = item, ""
        if not host:
            raise ConfigError(f"empty host in cassandra URL host list {hostlist!r}")
        if port_text:
            ports.add(_positive_int("port", port_text))
        hosts.append(host)
    if len(ports) > 1:
        raise ConfigError(f"all cassandra hosts must use one port, got {sorted(ports)}")
    port = ports.pop() if ports else DEFAULT_PORT
    if port > 65535:
        raise ConfigError(f"cassandra port out of range: {port}")
    return tuple(hosts), port


def parse_url(parts: SplitResult) -> CassandraOptions:
    """Parse a ``cassandra://`` URL into options; raise ``ConfigError`` if bad.

    Query options (all optional):

    ``consistency``, ``read_consistency``, ``write_consistency``
        ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE, ANY.
        ``consistency`` sets both; the others override it. Default LOCAL_QUORUM.
    ``timeout`` / ``connect_timeout``
        Seconds a request / a connection attempt may take (10 / 5).
    ``tls=1``, ``tls_ca=/path/ca.pem``, ``tls_check_hostname=0``
        Encrypt; ``tls_ca`` implies ``tls=1`` and trusts that CA bundle
        (else the system's CAs). The certificate chain is always verified;
        ``tls_check_hostname=0`` skips only the check that the certificate
        names the host connected to.
    ``pin_hosts=1``
        Use only the listed hosts as coordinators (a white-list policy):
        the driver still learns the other nodes but never sends them
        requests. Replication is unchanged: the coordinator still writes
        to every replica it can reach.
    ``local_dc``
        Data center whose nodes are preferred (default: the contact points').
    ``create=0``
        Do not create the keyspace and table (``timak cassandra init`` does).
    ``replication_factor=N`` or ``replication=NetworkTopologyStrategy:dc1=3``
        For ``CREATE KEYSPACE IF NOT EXISTS``; default SimpleStrategy with
        min(3, nodes in the cluster).
    ``gc_grace_seconds``, ``memtable_flush_period_in_ms``,
    ``compaction=unified|leveled|sizetiered``
        Table options for ``CREATE TABLE`` (defaults: 864000, 60000, and
        unified on Cassandra 5+, else leveled).
    ``batch_limit``
        Bytes above which a fold is written in two steps (default 51200).
    ``concurrency``
        Requests in flight for ``store_many``/``fetch_many`` (default 64).
    ``writer_cache``
        Keys whose writer id this connection remembers (default 100000).
    ``protocol_version``
        Pin the native protocol version (default: negotiate).

    Credentials come from the URL's userinfo, else ``TIMAK_CASSANDRA_USER``
    and ``TIMAK_CASSANDRA_PASSWORD``.
    """
    if parts.scheme != "cassandra":
        raise ConfigError(f"not a cassandra URL: {parts.scheme}://...")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    hosts, port = _split_hosts(hostlist) if hostlist else (("127.0.0.1",), DEFAULT_PORT)
    username: str | None = None
    password: str | None = None
    if userinfo:
        user_text, has_password, password_text = userinfo.partition(":")
        username = unquote(user_text)
        password = unquote(password_text) if has_password else None
    username = username or os.environ.get("TIMAK_CASSANDRA_USER") or None
    if password is None:
        password = os.environ.get("TIMAK_CASSANDRA_PASSWORD")
    if password is not None and username is None:
        raise ConfigError("a cassandra password was given without a user name")

    keyspace = parts.path.strip("/") or DEFAULT_KEYSPACE
    if not _KEYSPACE_RE.fullmatch(keyspace):
        raise ConfigError(
            f"cassandra keyspace must be a letter then up to 47 letters, digits "
            f"or underscores, got {keyspace!r}"
        )

    query: dict[str, str] = {}
    for name, text in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name in query:
            raise ConfigError(f"cassandra URL option {name} given twice")
        query[name] = text

    values: dict[str, Any] = {"hosts": hosts, "port": port, "keyspace": keyspace}
    values["username"], values["password"] = username, password
    both = query.pop("consistency", None)
    for name in ("read_consistency", "write_consistency"):
        # Errors name the option the URL holds, not the one it feeds.
        given = query.pop(name) if name in query else None
        level = both if given is None else given
        if level is not None:
            values[name] = _consistency("consistency" if given is None else name, level)

    parsers: dict[str, Any] = {
        "timeout": _seconds,
        "connect_timeout": _seconds,
        "tls": _flag,
        "tls_check_hostname": _flag,
        "pin_hosts": _flag,
        "create": _flag,
        "gc_grace_seconds": lambda n, t: _positive_int(n, t, minimum=0),
        "memtable_flush_period_in_ms": lambda n, t: _positive_int(n, t, minimum=0),
        "batch_limit": lambda n, t: _positive_int(n, t, minimum=1024),
        "concurrency": _positive_int,
        "writer_cache": lambda n, t: _positive_int(n, t, minimum=0),
        "protocol_version": _positive_int,
    }
    for name, text in query.items():
        if name in parsers:
            values[name] = parsers[name](name, text)
        elif name == "tls_ca":
            values["tls_ca"], values["tls"] = text, True
        elif name == "local_dc":
            if not _DC_RE.fullmatch(text):
                raise ConfigError(f"bad local_dc {text!r}")
            values["local_dc"] = text
        elif name == "replication_factor":
            factor = _positive_int(name, text)
            values["replication"] = {
                "class": "SimpleStrategy",
                "replication_factor": str(factor),
            }
        elif name == "replication":
            values["replication"] = _replication(text)
        elif name == "compaction":
            if text not in ("auto", *_COMPACTIONS):
                raise ConfigError(f"compaction must be auto, {', '.join(_COMPACTIONS)}")
            values["compaction"] = text
        else:
            raise ConfigError(f"unknown cassandra URL option {name!r}")
    if "replication_factor" in query and "replication" in query:
        raise ConfigError("give replication_factor or replication, not both")
    return CassandraOptions(**values)


# --------------------------------------------------------------------------
# Sibling positions and fold contexts
# --------------------------------------------------------------------------


Interval = tuple[int, int]


def _merge_intervals(pieces: Iterable[Interval]) -> list[Interval]:
    """Union of closed integer intervals; adjacent ones ([1,3],[4,6]) join."""
    merged: list[Interval] = []
    for lo, hi in sorted(pieces):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def encode_covers(covers: dict[uuid.UUID, list[Interval]]) -> bytes:
    """Serialise ``writer -> intervals`` (version byte, then 32-byte entries)."""
    out = bytearray([_COVERS_VERSION])
    for writer in sorted(covers):
        for lo, hi in covers[writer]:
            out += _COVER_ENTRY.pack(writer.bytes, lo, hi)
    return bytes(out)


def decode_covers(blob: bytes | None) -> dict[uuid.UUID, list[Interval]]:
    """Inverse of ``encode_covers``. Unreadable input reads as "covers
    nothing", which is always safe: it only means deleting less."""
    covers: dict[uuid.UUID, list[Interval]] = defaultdict(list)
    if not blob or blob[0] != _COVERS_VERSION or (len(blob) - 1) % _COVER_ENTRY.size:
        return covers
    for raw, lo, hi in _COVER_ENTRY.iter_unpack(blob[1:]):
        if lo <= hi:
            covers[uuid.UUID(bytes=raw)].append((lo, hi))
    return covers


@dataclass(frozen=True)
class FoldContext:
    """What a fetch saw, ready to be replaced.

    ``deletes``: ``(writer, lo, hi)`` position intervals, each made only of
    positions the fetch saw or that a folded sibling it saw covers.
    ``covers``: those intervals (plus capped idle ones) for the new sibling.
    ``min_timestamp``: microseconds above every write time the fetch saw.
    """

    deletes: tuple[tuple[uuid.UUID, int, int], ...]
    covers: bytes
    min_timestamp: int
    siblings: int


def _intervals_holding(intervals: list[Interval], seqs: list[int]) -> list[Interval]:
    """The sorted, disjoint ``intervals`` that hold at least one of the sorted
    ``seqs`` (every seq lies in some interval), in one linear pass."""
    holding: list[Interval] = []
    i = 0
    for seq in seqs:
        while intervals[i][1] < seq:
            i += 1
        if not holding or holding[-1] != intervals[i]:
            holding.append(intervals[i])
    return holding


def _timeuuid_time(writer: uuid.UUID) -> int:
    return writer.time if writer.version == 1 else 0


def build_context(rows: Sequence[tuple[uuid.UUID, int, bytes | None, int | None]]) -> FoldContext:
    """The fold context for ``(writer, seq, covers, writetime)`` rows of one key."""
    seen: dict[uuid.UUID, list[int]] = defaultdict(list)
    pieces: dict[uuid.UUID, list[Interval]] = defaultdict(list)
    newest = 0
    for writer, seq, covers, writetime in rows:
        seen[writer].append(seq)
        pieces[writer].append((seq, seq))
        for covered_writer, intervals in decode_covers(covers).items():
            pieces[covered_writer].extend(intervals)
        newest = max(newest, writetime or 0)
    deletes: list[tuple[uuid.UUID, int, int]] = []
    keep: dict[uuid.UUID, list[Interval]] = {}
    for writer, writer_pieces in pieces.items():
        intervals = _merge_intervals(writer_pieces)
        touched = _intervals_holding(intervals, sorted(seen.get(writer, ())))
        deletes.extend((writer, lo, hi) for lo, hi in touched)
        # Keep the newest intervals, preferring those this fold deletes.
        deleted = set(touched)
        ranked = sorted(intervals, key=lambda iv: (iv in deleted, iv[1]), reverse=True)
        keep[writer] = sorted(ranked[:_MAX_INTERVALS])
    idle = sorted((w for w in keep if w not in seen), key=_timeuuid_time, reverse=True)
    for writer in idle[_MAX_IDLE_WRITERS:]:
        del keep[writer]
    return FoldContext(tuple(deletes), encode_covers(keep), newest + 1, len(rows))


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
# Schema
# --------------------------------------------------------------------------


def _cql_map(options: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in options.items()) + "}"


def schema_cql(
    options: CassandraOptions, *, replication_factor: int = 1, major_version: int = 5
) -> list[str]:
    """The ``CREATE ... IF NOT EXISTS`` statements for ``options``.

    ``gc_grace_seconds`` stays at Cassandra's 10-day default: folds keep the
    tombstones a read scans bounded without relying on purging, and a folded
    sibling that a lagging replica resurrects merges away harmlessly, but a
    whole-key ``delete`` resurrected after gc_grace_seconds without repair
    would bring the key back. Lower it only below your repair interval.
    """
    replication = options.replication or {
        "class": "SimpleStrategy",
        "replication_factor": str(replication_factor),
    }
    compaction = options.compaction
    if compaction == "auto":
        compaction = "unified" if major_version >= 5 else "leveled"
    ks = f'"{options.keyspace}"'
    return [
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {_cql_map(replication)}",
        f"CREATE TABLE IF NOT EXISTS {ks}.{TABLE} ("
        " bucket text, key text, writer timeuuid, seq bigint, value blob, covers blob,"
        " PRIMARY KEY ((bucket, key), writer, seq))"
        f" WITH compaction = {_cql_map(_COMPACTIONS[compaction])}"
        f" AND gc_grace_seconds = {options.gc_grace_seconds}"
        f" AND memtable_flush_period_in_ms = {options.memtable_flush_period_in_ms}",
    ]


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
        limit = self.options.batch_limit
        with map_errors("store"):
            if estimate <= limit:
                batch = self._batch()
                batch.add(self._statements.insert_folded, insert)
                for params in deletes:
                    batch.add(self._statements.delete_range, params)
                self._session.execute(batch)
                return
            self._session.execute(self._statements.insert_folded, insert)
            self._delete_in_chunks(deletes)

    def _batch(self) -> BatchStatement:
        batch = BatchStatement(
            batch_type=BatchType.UNLOGGED, consistency_level=self.options.write_consistency
        )
        batch.is_idempotent = True
        return batch

    def _delete_in_chunks(self, deletes: Sequence[tuple[Any, ...]]) -> None:
        per_batch = max(1, (self.options.batch_limit - _BATCH_OVERHEAD) // _DELETE_OVERHEAD)
        for start in range(0, len(deletes), per_batch):
            batch = self._batch()
            for params in deletes[start : start + per_batch]:
                batch.add(self._statements.delete_range, params)
            self._session.execute(batch)

    def store_many(self, bucket: str, entries: Iterable[tuple[str, bytes]]) -> list[StoreResult]:
        """Blind-write many pairs, ``concurrency`` requests in flight; every
        result is ``None``.

        Each pair is its own sibling. Pairs for the same key go to one
        partition, so they are sent together as single-partition batches
        (one mutation each, up to ``batch_limit`` bytes) rather than as one
        request per pair: a hot key written many times costs a few requests.
        """
        self._check_open()
        pairs = list(entries)
        self._check_key(bucket, *(key for key, _ in pairs))
        by_key: dict[str, list[tuple[Any, ...]]] = {}
        for key, value in pairs:
            position = self._writers.allocate(bucket, key)
            by_key.setdefault(key, []).append((bucket, key, *position, bytes(value)))
        requests: list[tuple[Any, Any]] = []
        for rows in by_key.values():
            if len(rows) == 1:
                requests.append((self._statements.insert, rows[0]))
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
