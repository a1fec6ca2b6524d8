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
)

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

    def fold(self) -> None:
        visible = [p for p in self.rows if self.rng.random() < 0.85]  # a lagging replica
        context = build_context([(w, s, self.rows[(w, s)][1], 0) for w, s in visible])
        merged = frozenset().union(*(self.rows[p][0] for p in visible))
        self.rows[self.position()] = (merged, context.covers)
        for writer, lo, hi in context.deletes:
            for pos in [p for p in self.rows if p[0] == writer and lo <= p[1] <= hi]:
                del self.rows[pos]

    def present(self) -> set[int]:
        return set().union(*(content for content, _ in self.rows.values()))


@pytest.mark.parametrize("seed", range(40))
def test_model_folds_never_lose_a_write(seed: int) -> None:
    model = Model(random.Random(seed))
    for _ in range(300):
        step = model.rng.random()
        if step < 0.6:
            model.blind_write()
        elif step < 0.85:
            model.land_some()
        else:
            model.fold()
    model.in_flight, landing = [], model.in_flight
    for pos, content, covers in landing:
        model.rows[pos] = (content, covers)
    assert model.present() == set(range(1, model.items + 1))
