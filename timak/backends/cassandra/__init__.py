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

Narrowed contexts (``narrow``: replace a subset)
------------------------------------------------
``narrow(ctx, indices)`` gives a context replacing only the rows ``S`` at
``indices``; the fetch's other rows ``K`` are *kept*. It is built as above
from ``S`` alone (its positions and its rows' ``covers``), and then every
position of ``K`` is taken out of the intervals, splitting an interval that
holds one. So:

* The invariant holds for the new sibling: its value is the join of ``S``
  (the caller builds it from the named siblings only), and every position in
  its ``covers`` is a position of ``S`` or lies in the ``covers`` of a row of
  ``S``, hence (by induction) inside that row's value.
* Nothing unseen is deleted, for the reasons above; nothing kept is deleted,
  because no interval holds a position of ``K`` (not even one that a row of
  ``S`` covers: such a row is redundant, but the contract says it stays).
* The engine narrows in two places: a partial fold or read repair (every
  sibling but the largest, the *base*, into one small delta) and a full fold
  that leaves a corrupt sibling out. The base is neither rewritten nor
  deleted; only the small siblings' positions are.

Tombstones stay bounded with narrowed folds too. Per writer: (1) a full
fold's context has no kept positions, and its intervals contain every range
any earlier fold deleted for that writer, since each such range is recorded
in the ``covers`` of the sibling that fold wrote and carried forward by every
fold that replaced it; so after a full fold one range tombstone per writer
interval is unshadowed. (2) A partial fold replaces the previous delta,
whose ``covers`` hold the ranges of every partial fold since the base was
written, so its interval contains all of them; it holds none of the ranges
recorded in the base (the base's own position splits them), so at most two
ranges per writer are unshadowed: the base's fold's and the partial chain's
(for the base's writer, one below the base's position and one above). (3)
The next full fold holds the base's position and both ranges, and joins
them into one again. A read therefore scans about four tombstone markers per
writer, however many folds of either kind came before; a corrupt sibling
left out adds one split while it stays. ``docs/cassandra.md`` has the
measurement.

Superseded rows still sit in the memtable until it is flushed, and reads step
over them (not counted as tombstones, but ~2.5 us each on a small box); the
table's ``memtable_flush_period_in_ms`` (default 60 s) bounds that.

Dropping a recorded interval is always safe (it only forgets an optimisation),
so ``covers`` is capped: at most ``_MAX_IDLE_WRITERS`` writers without a
sibling in the fold, and ``_MAX_INTERVALS`` intervals per writer.

Errors
======
Every driver exception is mapped inside ``map_errors`` (``_errors.py``,
with ``error_class``).
"""


from __future__ import annotations

from ...errors import MissingDriverError

try:
    import cassandra.cluster  # noqa: F401 - checked here, used by the modules below
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise MissingDriverError(
        "the Cassandra backend needs the cassandra-driver package: pip install "
        "'cassandra-driver>=3.29' (the timak[cassandra] extra; in a checkout of timak, "
        "pip install '.[cassandra]')"
    ) from _exc

from ._backend import CassandraBackend, Inspection, from_url
from ._errors import _ERROR_TABLE as _ERROR_TABLE  # re-exported for tests
from ._errors import error_class, map_errors
from ._options import CassandraOptions, parse_url
from ._positions import FoldContext, build_context, decode_covers, encode_covers
from ._schema import schema_cql

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
