"""Cassandra store URLs and their options: ``parse_url`` and ``CassandraOptions``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, unquote

from cassandra import ConsistencyLevel

from ...errors import (
    ConfigError,
)
from .._query import flag, number, query_options, whole

DEFAULT_PORT = 9042
DEFAULT_KEYSPACE = "timak"
TABLE = "siblings"

#: Estimated size above which a fold is not sent as one batch (see
#: ``CassandraBackend._store_folded``). Cassandra's own thresholds are
#: ``batch_size_warn_threshold`` 5 KiB and ``batch_size_fail_threshold``
#: 50 KiB; we stay under the failing one.
DEFAULT_BATCH_LIMIT = 50 * 1024

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
    return whole("cassandra", name, text, minimum=minimum)


def _seconds(name: str, text: str) -> float:
    return number("cassandra", name, text, below=86400)


def _flag(name: str, text: str) -> bool:
    return flag("cassandra", name, text)


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


_PARSERS: dict[str, Any] = {
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
_KNOWN = frozenset({
    *_PARSERS, "consistency", "read_consistency", "write_consistency", "tls_ca", "local_dc",
    "replication_factor", "replication", "compaction",
})


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

    query = query_options(parts, "cassandra", _KNOWN)

    values: dict[str, Any] = {"hosts": hosts, "port": port, "keyspace": keyspace}
    values["username"], values["password"] = username, password
    both = query.pop("consistency", None)
    for name in ("read_consistency", "write_consistency"):
        # Errors name the option the URL holds, not the one it feeds.
        given = query.pop(name) if name in query else None
        level = both if given is None else given
        if level is not None:
            values[name] = _consistency("consistency" if given is None else name, level)

    for name, text in query.items():
        if name in _PARSERS:
            values[name] = _PARSERS[name](name, text)
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
    if "replication_factor" in query and "replication" in query:
        raise ConfigError("give replication_factor or replication, not both")
    return CassandraOptions(**values)


