"""Sibling positions and fold contexts: the pure algorithm behind folds.

Pure (no driver, no I/O), so that it is tested as a function in ``tests/``.
The package docstring (``timak.backends.cassandra``) argues why a fold built
from a ``FoldContext`` never deletes a write it did not see.
"""

from __future__ import annotations

import functools
import struct
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..base import pick

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


#: A sibling's position, ``(writer, seq)``.
Position = tuple[uuid.UUID, int]
#: What a fetch knows of one row: ``(writer, seq, covers, writetime)``.
Row = tuple[uuid.UUID, int, bytes | None, int | None]


@dataclass(frozen=True)
class FoldContext:
    """What a fetch saw, ready to be replaced.

    ``rows``: the rows it replaces, in the fetch's order (what
    ``narrow_context`` picks from). ``kept``: positions the fetch saw that it
    does not replace (a narrowed context's other siblings): never deleted.
    The plan is worked out on first use, not at every fetch (a read that
    stores nothing, or a partial fold that narrows first, never needs the
    full context's):

    ``deletes``: ``(writer, lo, hi)`` position intervals, each made only of
    positions of ``rows`` or that a row of ``rows`` covers, and none of the
    ``kept`` positions. ``covers``: those intervals (plus capped idle ones)
    for the new sibling. ``min_timestamp``: microseconds above every write
    time of ``rows``. ``siblings``: how many rows it replaces.
    """

    rows: tuple[Row, ...]
    kept: frozenset[Position] = frozenset()

    @property
    def siblings(self) -> int:
        return len(self.rows)

    @property
    def deletes(self) -> tuple[tuple[uuid.UUID, int, int], ...]:
        return self._planned[0]

    @property
    def covers(self) -> bytes:
        return self._planned[1]

    @property
    def min_timestamp(self) -> int:
        return self._planned[2]

    @functools.cached_property
    def _planned(self) -> tuple[tuple[tuple[uuid.UUID, int, int], ...], bytes, int]:
        return _plan(self.rows, self.kept)


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


def _without(intervals: list[Interval], holes: list[int]) -> list[Interval]:
    """The sorted, disjoint ``intervals`` minus the sorted positions
    ``holes``: an interval holding a hole is split around it."""
    if not holes:
        return intervals
    out: list[Interval] = []
    for lo, hi in intervals:
        for hole in holes:
            if hole < lo:
                continue
            if hole > hi:
                break
            if hole > lo:
                out.append((lo, hole - 1))
            lo = hole + 1
        if lo <= hi:
            out.append((lo, hi))
    return out


def _timeuuid_time(writer: uuid.UUID) -> int:
    return writer.time if writer.version == 1 else 0


def build_context(rows: Sequence[Row], kept: frozenset[Position] = frozenset()) -> FoldContext:
    """The fold context replacing ``(writer, seq, covers, writetime)`` rows
    of one key, and never deleting a position of ``kept`` (siblings the
    fetch saw that are to stay)."""
    return FoldContext(tuple(rows), kept)


def _plan(
    rows: Sequence[Row], kept: frozenset[Position]
) -> tuple[tuple[tuple[uuid.UUID, int, int], ...], bytes, int]:
    """``FoldContext``'s deletes, covers and min_timestamp."""
    seen: dict[uuid.UUID, list[int]] = defaultdict(list)
    pieces: dict[uuid.UUID, list[Interval]] = defaultdict(list)
    holes: dict[uuid.UUID, list[int]] = defaultdict(list)
    for writer, seq in kept:
        holes[writer].append(seq)
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
        # A kept sibling lies outside every interval: a covered interval
        # that holds one (it was folded into a sibling this context
        # replaces, but still lives) is split around it, never bridged.
        intervals = _without(_merge_intervals(writer_pieces), sorted(holes.get(writer, ())))
        if not intervals:
            continue
        touched = _intervals_holding(intervals, sorted(seen.get(writer, ())))
        deletes.extend((writer, lo, hi) for lo, hi in touched)
        # Keep the newest intervals, preferring those this fold deletes.
        deleted = set(touched)
        ranked = sorted(intervals, key=lambda iv: (iv in deleted, iv[1]), reverse=True)
        keep[writer] = sorted(ranked[:_MAX_INTERVALS])
    idle = sorted((w for w in keep if w not in seen), key=_timeuuid_time, reverse=True)
    for writer in idle[_MAX_IDLE_WRITERS:]:
        del keep[writer]
    return tuple(deletes), encode_covers(keep), newest + 1


def narrow_context(context: FoldContext, indices: Iterable[int]) -> FoldContext:
    """``context`` replacing only its rows at ``indices`` (positions in the
    fetch's list); its other rows join the positions that are never
    deleted. ``InvalidInputError`` for an index outside the list."""
    picked = set(pick(range(len(context.rows)), indices))
    chosen = [row for i, row in enumerate(context.rows) if i in picked]
    kept = context.kept | {
        (row[0], row[1]) for i, row in enumerate(context.rows) if i not in picked
    }
    return build_context(chosen, frozenset(kept))
