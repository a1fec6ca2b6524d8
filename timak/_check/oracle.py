"""The sequential oracle: what the store must and may show, given a history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..value import ItemId, Record, Score
from .history import _NEVER, History, _Read, _Write
from .report import Anomaly, Written

# Plain code, deliberately independent of timak.value.merge, so that it can
# catch a bug there: per id the largest record by (score, deleted), then the
# `capacity` largest by (score, id), tombstones included.


def _rank(item_id: ItemId, score: Score) -> tuple[Score, int, ItemId]:
    """Which records a timeline keeps: the largest ranks (ints below strings)."""
    return (score, 1 if isinstance(item_id, str) else 0, item_id)


def _beats(a: Written, b: Written) -> bool:
    assert a.score is not None and b.score is not None
    return (a.score, a.deleted) > (b.score, b.deleted)


def _absorb(best: dict[ItemId, Written], w: Written) -> None:
    if w.score is None:
        return
    current = best.get(w.id)
    if current is None or _beats(w, current):
        best[w.id] = w


def _ranks_above(best: dict[ItemId, Written], item_id: ItemId, score: Score) -> int:
    """How many other ids have a record ranked above ``(score, item_id)``."""
    mine = _rank(item_id, score)
    return sum(
        1 for other, w in best.items()
        if other != item_id and w.score is not None and _rank(other, w.score) > mine
    )


def _data_key(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=repr)


def _score(w: Written) -> Score:
    assert w.score is not None
    return w.score


def analyze(
    history: History,
    final: dict[str, list[Record]],
    capacity: int,
    *,
    check_reads: bool = True,
) -> list[Anomaly]:
    """Compare what the store holds, and (``check_reads``) every value an
    operation read, with the oracle of ``history``.

    A read must reflect every write acknowledged before the read began, and
    may reflect writes not acknowledged by then that began before it ended.
    That holds for a store that is linearizable per key (memory, SQLite,
    Cassandra at QUORUM); pass ``check_reads=False`` for weaker settings,
    where only the final values, read after the run, are checked.
    """
    by_key: dict[str, list[_Write]] = {}
    first_written: dict[tuple[str, ItemId, Score | None, str], int] = {}
    for write in history.writes:
        w = write.record
        by_key.setdefault(w.key, []).append(write)
        if not w.deleted:
            mark = (w.key, w.id, w.score, _data_key(w.data))
            first_written[mark] = min(first_written.get(mark, _NEVER), write.invoke)
    reads = [r for r in history.reads if check_reads]
    reads += [_Read(_NEVER, _NEVER, key, "final read", records) for key, records in final.items()]
    found: dict[tuple[str, str, ItemId | None], Anomaly] = {}
    for key in sorted({r.key for r in reads} | set(by_key)):
        writes = by_key.get(key, [])
        acked = sorted((w for w in writes if w.acked), key=lambda w: w.complete)
        before: dict[ItemId, Written] = {}
        done = 0
        key_reads = sorted((r for r in reads if r.key == key), key=lambda r: r.invoke)
        if key not in final:
            key_reads.append(_Read(_NEVER, _NEVER, key, "final read (key missing)", []))
        for read in key_reads:
            while done < len(acked) and acked[done].complete < read.invoke:
                _absorb(before, acked[done].record)
                done += 1
            window = [
                w.record for w in writes
                if w.invoke < read.complete and not (w.acked and w.complete < read.invoke)
            ]
            for anomaly in _compare(key, read, before, window, first_written, capacity):
                found.setdefault((anomaly.kind, key, anomaly.id), anomaly)
    return list(found.values())


def _compare(
    key: str,
    read: _Read,
    before: dict[ItemId, Written],
    window: list[Written],
    first_written: dict[tuple[str, ItemId, Score | None, str], int],
    capacity: int,
) -> Iterator[Anomaly]:
    """Anomalies of one read: ``before`` is the best acknowledged record per id
    before it began, ``window`` the records that may or may not show."""
    held = {r.id: r for r in read.records}
    either = dict(before)
    maybes: dict[ItemId, list[Written]] = {}
    for w in window:
        _absorb(either, w)
        maybes.setdefault(w.id, []).append(w)
    kept = sorted(before.values(), key=lambda w: _rank(w.id, _score(w)), reverse=True)
    for w in kept[:capacity]:
        if not w.deleted:
            why = _lost(w, held.get(w.id), maybes.get(w.id, []), either, capacity)
            if why:
                yield Anomaly("lost", key, w.id, f"{why} ({read.what})")
    for r in read.records:
        if not r.deleted:
            why = _resurrected(r, before, capacity)
            if why is None and first_written.get(
                (key, r.id, r.score, _data_key(r.data)), _NEVER
            ) >= read.complete:
                why = f"visible at {r.score} with data {r.data!r:.60}, which no write wrote"
            if why:
                yield Anomaly("resurrected", key, r.id, f"{why} ({read.what})")


def _lost(
    w: Written, held: Record | None, maybes: list[Written],
    either: dict[ItemId, Written], capacity: int,
) -> str | None:
    """Why the acknowledged, visible record ``w`` is missing, or None if it is not."""
    score = _score(w)
    if held is not None and not held.deleted:
        if held.score >= score:
            return None
        return f"acked add at {score}, but read at {held.score}"
    if any(m.score is None or _beats(m, w) for m in maybes):
        return None  # a maybe-write of this id beat it
    if held is not None:
        return f"acked add at {score}, but read as a tombstone at {held.score}"
    if _ranks_above(either, w.id, score) >= capacity:
        return None  # maybe-writes ranked above it may have trimmed it
    return f"acked add at {score} is missing"


def _resurrected(r: Record, before: dict[ItemId, Written], capacity: int) -> str | None:
    """Why the visible record ``r`` should not be visible, or None."""
    best = before.get(r.id)
    if best is not None and (_score(best), best.deleted) > (r.score, False):
        what = "deleted" if best.deleted else "moved"
        return f"visible at {r.score}, but acked writes {what} it at {best.score}"
    above = _ranks_above(before, r.id, r.score)
    if above >= capacity:
        return f"visible at {r.score}, but {above} acked items rank above it (trimmed)"
    return None


