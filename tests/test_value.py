"""The merge is a join: commutative, associative, idempotent, and equal to a
simple sequential oracle that applies a whole history at once."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from timak.value import Record, Score, TimelineValue, merge

CAPACITY = st.integers(min_value=1, max_value=6)
ids = st.one_of(st.integers(0, 8), st.sampled_from(["a", "b", "c", "d"]))
scores = st.one_of(st.integers(0, 6), st.sampled_from([1.0, 2.5, 3.0]))
data = st.one_of(st.none(), st.integers(0, 2), st.sampled_from(["x", "y"]))


@st.composite
def records(draw: st.DrawFn) -> Record:
    deleted = draw(st.booleans())
    return Record(
        draw(ids), draw(scores), deleted, None if deleted else draw(data), draw(st.integers(0, 3))
    )


histories = st.lists(records(), max_size=25)


def oracle(history: list[Record], capacity: int) -> dict[Any, Record]:
    """Apply every write in order to a plain dict, then keep the top items.

    Written without timak.value: per id, a write replaces the current record
    when its score is higher, or equal and it is a delete, or equal with the
    same delete flag and larger (score, data) packing, or identical but later.
    """
    import msgpack

    state: dict[Any, Record] = {}
    for w in history:
        cur = state.get(w.id)
        if cur is None:
            state[w.id] = w
            continue
        key_w = (w.score, w.deleted, msgpack.packb([w.score, w.data]), w.arrived)
        key_c = (cur.score, cur.deleted, msgpack.packb([cur.score, cur.data]), cur.arrived)
        if key_w > key_c:
            state[w.id] = w
    ranked = sorted(
        state.values(),
        key=lambda r: (r.score, isinstance(r.id, str), r.id),
        reverse=True,
    )
    return {r.id: r for r in ranked[:capacity]}


def value_of(history: list[Record], capacity: int) -> TimelineValue:
    """Apply a history one write at a time, trimming after every write, as
    a single writer doing read-modify-write would."""
    value = TimelineValue()
    for w in history:
        value = merge([value], capacity, extra=[w])
    return value


@settings(max_examples=examples(3000))
@given(histories, histories, CAPACITY)
def test_merge_is_commutative(h1: list[Record], h2: list[Record], k: int) -> None:
    a, b = value_of(h1, k), value_of(h2, k)
    assert merge([a, b], k) == merge([b, a], k)


@settings(max_examples=examples(2000))
@given(histories, histories, histories, CAPACITY)
def test_merge_is_associative(
    h1: list[Record], h2: list[Record], h3: list[Record], k: int
) -> None:
    a, b, c = value_of(h1, k), value_of(h2, k), value_of(h3, k)
    assert merge([merge([a, b], k), c], k) == merge([a, merge([b, c], k)], k)


@settings(max_examples=examples(2000))
@given(histories, CAPACITY)
def test_merge_is_idempotent(h: list[Record], k: int) -> None:
    a = value_of(h, k)
    assert merge([a, a], k) == a
    assert merge([a], k) == a


@settings(max_examples=examples(3000))
@given(histories, CAPACITY, st.data())
def test_any_split_of_a_history_merges_to_the_oracle(
    history: list[Record], k: int, draw: st.DataObject
) -> None:
    """Split a history among replicas in any way, apply each part in order on
    its replica, merge the replicas in any order: the oracle's answer."""
    replicas = draw.draw(st.integers(1, 4))
    owner = [draw.draw(st.integers(0, replicas - 1)) for _ in history]
    parts = [[w for w, o in zip(history, owner, strict=True) if o == r] for r in range(replicas)]
    values = [value_of(p, k) for p in parts]
    order = draw.draw(st.permutations(range(replicas)))
    merged = functools.reduce(lambda acc, i: merge([acc, values[i]], k), order, TimelineValue())
    assert dict(merged) == oracle(history, k)


@settings(max_examples=examples(1000))
@given(histories, CAPACITY)
def test_tombstones_hold_slots_so_nothing_trimmed_comes_back(
    history: list[Record], k: int
) -> None:
    """An item trimmed on one replica never reappears after merging with a
    stale replica that still holds it: the result is the oracle's."""
    stale = value_of(history[: len(history) // 2], k)
    fresh = value_of(history, k)
    assert dict(merge([stale, fresh], k)) == oracle(history, k)


def test_equal_scores_of_different_types_still_decide_deterministically() -> None:
    one, one_float = Record("a", 1), Record("a", 1.0)
    assert merge([], 3, extra=[one, one_float]) == merge([], 3, extra=[one_float, one])


def test_mixed_id_types_order_without_error() -> None:
    value = merge([], 2, extra=[Record(1, 5), Record("1", 5), Record(2, 5)])
    assert list(value) and sorted(value, key=str) == ["1", 2]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        merge([], 0)


# -- issue 10, defect 1: records Python calls equal but that encode differently


def test_equal_but_differently_encoded_records_merge_alike_in_any_order() -> None:
    a = TimelineValue({"x": Record("x", 5, False, 1)})
    b = TimelineValue({"x": Record("x", 5, False, True)})
    assert merge([a, b], 10)["x"].data is True
    assert merge([b, a], 10)["x"].data is True
    c = TimelineValue({"x": Record("x", 0.0)})
    d = TimelineValue({"x": Record("x", -0.0)})
    assert repr(merge([c, d], 10)["x"].score) == repr(merge([d, c], 10)["x"].score) == "-0.0"
    assert Record("x", 5, False, 1) != Record("x", 5, False, True)
    assert Record("x", 1) != Record("x", 1.0) and Record("x", 1) == Record("x", 1)


look_alikes = st.sampled_from([0, 1, True, False, 1.0, 0.0, -0.0, None])


def exact(value: TimelineValue) -> list[tuple[Any, ...]]:
    """A value as what it would store: type-exact, sign-exact."""
    return [(r.id, r.deleted, r.arrived, r.tiebreak()) for r in value.newest_first()]


@settings(max_examples=examples(1000))
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([1, 1.0, 0, 0.0, -0.0]),
                  look_alikes, st.sampled_from([0, 1])),
        min_size=1, max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_look_alike_records_converge_whatever_the_read_order(
    rows: list[tuple[str, Score, Any, int]], rnd: Any
) -> None:
    values = [TimelineValue({i: Record(i, s, False, d, t)}) for i, s, d, t in rows]
    first = merge(values, 5)
    rnd.shuffle(values)
    assert exact(merge(values, 5)) == exact(first)
    assert exact(functools.reduce(lambda acc, v: merge([acc, v], 5), values, TimelineValue())) \
        == exact(first)


# -- capacity: the smallest stated capacity wins, blind records state none


capacities = st.one_of(st.none(), st.integers(1, 6))


def value_at(history: list[Record], capacity: int | None) -> TimelineValue:
    """A replica that applied ``history`` in order at ``capacity`` (``None``:
    a value of blind writes that states no capacity)."""
    if capacity is None:
        return TimelineValue({r.id: r for r in merge([], 10**6, extra=history).newest_first()})
    return merge([value_of(history, capacity)], capacity)  # states it even when empty


@settings(max_examples=examples(1500))
@given(histories, histories, histories, capacities, capacities, capacities)
def test_capacity_join_is_a_lattice(
    h1: list[Record], h2: list[Record], h3: list[Record],
    k1: int | None, k2: int | None, k3: int | None,
) -> None:
    a, b, c = value_at(h1, k1), value_at(h2, k2), value_at(h3, k3)
    ab, ba = merge([a, b], 7), merge([b, a], 7)
    assert (ab.capacity, dict(ab)) == (ba.capacity, dict(ba))
    left, right = merge([ab, c], 7), merge([a, merge([b, c], 7)], 7)
    assert (left.capacity, dict(left)) == (right.capacity, dict(right))
    assert (merge([a, a], 7).capacity, dict(merge([a, a], 7))) == (
        merge([a], 7).capacity, dict(merge([a], 7)))
    assert left.capacity == min(k for k in (k1, k2, k3, 7) if k is not None)


@settings(max_examples=examples(1500))
@given(histories, st.data())
def test_any_split_at_several_capacities_merges_to_the_oracle_at_the_smallest(
    history: list[Record], draw: st.DataObject
) -> None:
    """Replicas with different capacities (and blind ones with none) join to
    the oracle at the smallest capacity any of them (or the merge) states."""
    replicas = draw.draw(st.integers(1, 4))
    caps = [draw.draw(capacities) for _ in range(replicas)]
    owner = [draw.draw(st.integers(0, replicas - 1)) for _ in history]
    parts = [[w for w, o in zip(history, owner, strict=True) if o == r] for r in range(replicas)]
    values = [value_at(p, c) for p, c in zip(parts, caps, strict=True)]
    order = draw.draw(st.permutations(range(replicas)))
    merged = functools.reduce(lambda acc, i: merge([acc, values[i]], 9), order, TimelineValue())
    assert dict(merged) == oracle(history, min(c for c in [*caps, 9] if c is not None))


def test_a_blind_record_never_shrinks_a_timeline() -> None:
    big = merge([], 5000, extra=[Record(i, i) for i in range(1500)])
    blind = TimelineValue({"new": Record("new", 10**6)})
    joined = merge([blind, big], 5000)
    assert joined.capacity == 5000 and len(joined) == 1501
    assert merge([big], 1000).capacity == 1000  # the caller's capacity joins too


# -- format 3: merging encoded values is merging the records


@st.composite
def big_and_small(draw: st.DrawFn) -> tuple[list[Record], list[list[Record]], int]:
    """A history of 65-200 records (over the threshold where a merge reuses
    the largest value's chunks) and a few small siblings: newer records,
    older ones, and ones for ids the big value holds."""
    size = draw(st.integers(65, 200))
    scores = draw(st.lists(st.integers(0, 400), min_size=size, max_size=size))
    base = [Record(i, s, False, {"n": i} if i % 3 else None, i) for i, s in enumerate(scores)]
    small = draw(st.lists(st.lists(st.builds(
        Record,
        st.one_of(st.integers(0, 260), st.sampled_from(["s", "t"])),
        st.integers(0, 500), st.booleans(), st.just(None), st.integers(0, 3),
    ), max_size=3), max_size=4))
    return base, small, draw(st.integers(60, 220))


@settings(max_examples=examples(400))
@given(big_and_small(), st.sampled_from([(96, 48), (4, 3), (0, 1)]))
def test_merging_encoded_values_equals_the_oracle(
    case: tuple[list[Record], list[list[Record]], int], layout: tuple[int, int]
) -> None:
    from timak._encoding import decode, encode

    base, small, k = case
    hot_rows, chunk_rows = layout
    big = decode(
        encode(merge([], k, extra=base), compress_at=0, hot_rows=hot_rows, chunk_rows=chunk_rows),
        lazy=True,
    )
    siblings = [decode(encode(TimelineValue({r.id: r for r in s[:1]})), lazy=True) for s in small]
    extra = [r for s in small for r in s[1:]]
    merged = merge([big, *siblings], k, extra=extra)
    history = base + [r for s in small for r in s[:1]] + extra
    assert dict(merged) == oracle(history, k) and merged.capacity == k
    again = decode(encode(merged, hot_rows=hot_rows, chunk_rows=chunk_rows))
    assert again == merged and again.newest_first() == merged.newest_first()


@settings(max_examples=examples(300))
@given(big_and_small(), st.sampled_from([(96, 48), (4, 3), (10, 2)]), st.data())
def test_siblings_written_from_one_value_merge_to_the_oracle(
    case: tuple[list[Record], list[list[Record]], int], layout: tuple[int, int],
    draw: st.DataObject,
) -> None:
    """Concurrent writers that each read one value and wrote it back with
    their own records leave siblings that share chunks: merging them (which
    keeps the shared chunks undecoded) gives the oracle's answer."""
    from timak._encoding import decode, encode

    base, small, k = case
    hot_rows, chunk_rows = layout
    stored = encode(merge([], k, extra=base), compress_at=0, hot_rows=hot_rows,
                    chunk_rows=chunk_rows)
    siblings = []
    for writes in small:
        grown = merge([decode(stored, lazy=True)], k, extra=writes)
        siblings.append(encode(grown, compress_at=0, hot_rows=hot_rows, chunk_rows=chunk_rows))
    if draw.draw(st.booleans()):
        siblings.append(stored)
    if not siblings:
        return
    merged = merge([decode(s, lazy=True) for s in siblings], k)
    assert dict(merged) == oracle(base + [r for s in small for r in s], k)
    assert merged.capacity == k
    again = decode(encode(merged, hot_rows=hot_rows, chunk_rows=chunk_rows))
    assert again == merged and again.newest_first() == merged.newest_first()


@pytest.mark.parametrize("late", ["older", "delete", "rescore"])
def test_a_write_that_reaches_into_the_tail_keeps_the_chunks_below_it(late: str) -> None:
    """A record a little older than the newest (a writer that lost a race by
    microseconds), a delete of an item near the top, or one moved up: the
    merge decodes only the chunks those records reach into and keeps the
    older compressed chunks as the stored bytes, and equals the oracle."""
    from timak._encoding import decode, encode

    base = [Record(f"i{n}", n * 10, False, {"n": n}, n) for n in range(1000)]
    big = decode(encode(merge([], 1000, extra=base)), lazy=True)
    newest = 999 * 10
    record = {
        "older": Record("late", newest - 15, False, None, 5),
        "delete": Record("i990", 9900, True, None, 5),
        "rescore": Record("i950", newest + 1, False, None, 5),
    }[late]
    blind = decode(encode(TimelineValue({record.id: record})), lazy=True)
    merged = merge([big, blind])
    assert dict(merged) == oracle([*base, record], 1000) and merged.capacity == 1000
    kept = [c for c in merged.chunks if c.blob is not None]
    assert len(kept) >= len([c for c in big.chunks if c.blob is not None]) - 1
    assert all(any(c.blob is b.blob for b in big.chunks) for c in kept)
    assert decode(encode(merged)) == merged
