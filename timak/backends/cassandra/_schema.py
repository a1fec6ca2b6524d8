"""The one table timak keeps in a keyspace, as CQL."""

from __future__ import annotations

from ._options import _COMPACTIONS, TABLE, CassandraOptions

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


