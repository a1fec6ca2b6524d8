"""Sibling positions and fold contexts: the pure algorithm behind folds.

Pure (no driver, no I/O), so that it is tested as a function in ``tests/``.
The package docstring (``timak.backends.cassandra``) argues why a fold built
from a ``FoldContext`` never deletes a write it did not see.
"""

from __future__ import annotations

import struct
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Writers with no sibling in a fold whose intervals are still recorded.
_MAX_IDLE_WRITERS = 64
#: Intervals recorded per writer (more only appear while writes are in
#: flight during a fold, or after a writer failed mid-stream).
_MAX_INTERVALS = 8
_COVERS_VERSION = 1
_COVER_ENTRY = struct.Struct(">16sqq")


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

