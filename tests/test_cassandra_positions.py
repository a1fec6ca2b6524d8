"""The Cassandra backend's fold positions, as pure functions (no server).

A fold deletes the position intervals its context names with range
tombstones; these tests and the model below check that it never deletes a
write nobody folded, never bridges a gap, and keeps ``covers`` bounded. See
``timak.backends.cassandra``'s docstring for the argument.
"""

from __future__ import annotations

import random
import uuid

import pytest

pytest.importorskip("cassandra", reason="the Cassandra backend needs cassandra-driver")

from timak.backends.cassandra._positions import (
    build_context,
    decode_covers,
    encode_covers,
    narrow_context,
)
from timak.errors import InvalidInputError

W1, W2 = uuid.uuid1(), uuid.uuid1()


def test_consecutive_positions_become_one_interval() -> None:
    rows = [(W1, s, None, 10 + s) for s in (0, 1, 2, 3)] + [(W2, 5, None, 99)]
    context = build_context(rows)
    assert sorted(context.deletes) == sorted([(W1, 0, 3), (W2, 5, 5)])
    assert context.min_timestamp == 100
    assert decode_covers(context.covers) == {W1: [(0, 3)], W2: [(5, 5)]}


def test_a_gap_is_never_bridged() -> None:
    """Position 2 was not seen (still in flight): it must not be deleted."""
    context = build_context([(W1, s, None, 1) for s in (0, 1, 3, 4)])
    assert sorted(context.deletes) == [(W1, 0, 1), (W1, 3, 4)]


def test_covered_intervals_extend_the_range() -> None:
    """A folded sibling covering 0..15 plus new positions 17..20 (16 is the
    folded sibling itself) gives one interval 0..20."""
    folded = (W1, 16, encode_covers({W1: [(0, 15)]}), 5)
    context = build_context([folded] + [(W1, s, None, 6) for s in range(17, 21)])
    assert context.deletes == ((W1, 0, 20),)


def test_idle_writers_intervals_are_kept_but_not_redeleted() -> None:
    folded = (W1, 7, encode_covers({W1: [(0, 6)], W2: [(0, 9)]}), 5)
    context = build_context([folded])
    assert context.deletes == ((W1, 0, 7),)
    assert decode_covers(context.covers)[W2] == [(0, 9)]


def test_corrupt_covers_mean_covering_nothing() -> None:
    assert decode_covers(b"\x07garbage") == {}
    context = build_context([(W1, 3, b"\x01short", 1)])
    assert context.deletes == ((W1, 3, 3),)


def test_a_narrowed_context_splits_its_interval_around_the_kept_base() -> None:
    """Positions 0..4 of one writer, the base at 2: replacing the others
    deletes 0..1 and 3..4, never 2, and the new sibling covers just those."""
    full = build_context([(W1, s, None, 10 + s) for s in range(5)])
    narrowed = narrow_context(full, [0, 1, 3, 4])
    assert narrowed.deletes == ((W1, 0, 1), (W1, 3, 4))
    assert decode_covers(narrowed.covers) == {W1: [(0, 1), (3, 4)]}
    assert narrowed.siblings == 4 and narrowed.min_timestamp == 15


def test_a_covered_interval_holding_a_kept_sibling_is_split() -> None:
    """A folded sibling covers W1 0..20, yet the base at W1 10 still lives
    (say a lagging replica brought it back): a fold of the others deletes
    around it, and only intervals that hold a replaced row."""
    folded = (W2, 0, encode_covers({W1: [(0, 20)]}), 5)
    base = (W1, 10, None, 4)
    rows = [folded, base] + [(W1, s, None, 6) for s in (21, 22, 23)]
    narrowed = narrow_context(build_context(rows), [0, 2, 3, 4])
    assert sorted(narrowed.deletes) == sorted([(W1, 11, 23), (W2, 0, 0)])
    assert decode_covers(narrowed.covers)[W1] == [(0, 9), (11, 23)]
    assert (W1, 10) in narrowed.kept


def test_narrowing_twice_picks_from_the_narrowed_rows_and_keeps_the_rest() -> None:
    full = build_context([(W1, s, None, 1) for s in range(4)])
    twice = narrow_context(narrow_context(full, [1, 2, 3, 3]), [0, 2])
    assert twice.deletes == ((W1, 1, 1), (W1, 3, 3))
    assert twice.kept == frozenset({(W1, 0), (W1, 2)})
    empty = narrow_context(full, [])
    assert empty.deletes == () and empty.siblings == 0


@pytest.mark.parametrize("bad", [-1, 4, True, "0"])
def test_narrowing_refuses_an_index_outside_the_fetch(bad: object) -> None:
    full = build_context([(W1, s, None, 1) for s in range(4)])
    with pytest.raises(InvalidInputError):
        narrow_context(full, [0, bad])  # type: ignore[list-item]


class Model:
    """Cassandra's range-delete semantics for one partition, with writers
    whose writes land late and reads that miss some rows, to check that the
    fold contexts never delete a value nobody folded."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rows: dict[tuple[uuid.UUID, int], tuple[frozenset[int], bytes | None]] = {}
        self.writers = [uuid.uuid1() for _ in range(3)]
        self.next_seq = dict.fromkeys(self.writers, 0)
        self.in_flight: list[tuple[tuple[uuid.UUID, int], frozenset[int], bytes | None]] = []
        self.items = 0

    def position(self) -> tuple[uuid.UUID, int]:
        writer = self.rng.choice(self.writers)
        self.next_seq[writer] += 1
        return writer, self.next_seq[writer] - 1

    def blind_write(self) -> None:
        self.items += 1
        self.in_flight.append((self.position(), frozenset({self.items}), None))

    def land_some(self) -> None:
        self.rng.shuffle(self.in_flight)
        keep = self.rng.randrange(len(self.in_flight) + 1)
        for pos, content, covers in self.in_flight[keep:]:
            self.rows[pos] = (content, covers)
        del self.in_flight[keep:]

    def fold(self, partial: bool = False) -> None:
        """A fold of what a lagging replica shows; ``partial``: of a random
        subset of it only (a narrowed context), the rest must stay."""
        visible = [p for p in self.rows if self.rng.random() < 0.85]  # a lagging replica
        context = build_context([(w, s, self.rows[(w, s)][1], 0) for w, s in visible])
        chosen = visible
        if partial:
            picked = [i for i in range(len(visible)) if self.rng.random() < 0.6]
            context = narrow_context(context, picked)
            chosen = [visible[i] for i in picked]
        merged = frozenset().union(*(self.rows[p][0] for p in chosen))
        self.rows[self.position()] = (merged, context.covers)
        if self.rng.random() < 0.1:
            return  # crashed between the chunked path's write and its deletes
        for writer, lo, hi in context.deletes:
            for pos in [p for p in self.rows if p[0] == writer and lo <= p[1] <= hi]:
                assert pos not in context.kept, "a narrowed fold deleted a sibling it keeps"
                del self.rows[pos]

    def present(self) -> set[int]:
        return set().union(*(content for content, _ in self.rows.values()))


@pytest.mark.parametrize("partial", [False, True], ids=["full", "narrowed"])
@pytest.mark.parametrize("seed", range(40))
def test_model_folds_never_lose_a_write(seed: int, partial: bool) -> None:
    model = Model(random.Random(seed))
    for _ in range(300):
        step = model.rng.random()
        if step < 0.6:
            model.blind_write()
        elif step < 0.85:
            model.land_some()
        else:
            model.fold(partial=partial and step < 0.95)
    model.in_flight, landing = [], model.in_flight
    for pos, content, covers in landing:
        model.rows[pos] = (content, covers)
    assert model.present() == set(range(1, model.items + 1))


def _maximal(ranges: set[tuple[uuid.UUID, int, int]]) -> dict[uuid.UUID, int]:
    """Per writer, the range tombstones no other one contains: what a read
    still scans once newer, wider ranges shadow the ones inside them."""
    counts: dict[uuid.UUID, int] = {}
    for writer, lo, hi in ranges:
        inside = any(w == writer and (a, b) != (lo, hi) and a <= lo and hi <= b
                     for w, a, b in ranges)
        if not inside:
            counts[writer] = counts.get(writer, 0) + 1
    return counts


@pytest.mark.parametrize("writers", [1, 3])
def test_partial_and_full_folds_keep_two_ranges_per_writer(writers: int) -> None:
    """The engine's pattern on one key: each writer writes 16 blind
    siblings, then folds; the fold is partial (every sibling but the
    largest, the base, into one delta) until the delta would pass 64
    records, then full. After 600 folds every writer's range tombstones
    are shadowed by at most two: one below the base's position, one above
    it (docs/cassandra.md, "Tombstones per partition stay bounded")."""
    rng = random.Random(writers)
    ids = [uuid.uuid1() for _ in range(writers)]
    next_seq = dict.fromkeys(ids, 0)
    rows: dict[tuple[uuid.UUID, int], tuple[frozenset[int], bytes | None]] = {}
    ranges: set[tuple[uuid.UUID, int, int]] = set()
    items = partial_folds = 0

    def put(writer: uuid.UUID, content: frozenset[int], covers: bytes | None) -> None:
        rows[(writer, next_seq[writer])] = (content, covers)
        next_seq[writer] += 1

    for _ in range(600):
        writer = rng.choice(ids)
        for _ in range(16):
            items += 1
            put(writer, frozenset({items}), None)
        seen = sorted(rows)
        context = build_context([(w, s, rows[(w, s)][1], 0) for w, s in seen])
        base = max(range(len(seen)), key=lambda i: len(rows[seen[i]][0]))
        small = [i for i in range(len(seen)) if i != base]
        delta = frozenset().union(*(rows[seen[i]][0] for i in small))
        if len(rows[seen[base]][0]) > 64 and len(delta) <= 64:
            context, chosen = narrow_context(context, small), small
            partial_folds += 1
        else:
            chosen = list(range(len(seen)))
        content = frozenset().union(*(rows[seen[i]][0] for i in chosen))
        put(writer, content, context.covers)
        for w, lo, hi in context.deletes:
            ranges.add((w, lo, hi))
            for pos in [p for p in rows if p[0] == w and lo <= p[1] <= hi]:
                del rows[pos]
    assert frozenset().union(*(c for c, _ in rows.values())) == set(range(1, items + 1))
    assert partial_folds > 300
    assert max(_maximal(ranges).values()) <= 2, _maximal(ranges)
