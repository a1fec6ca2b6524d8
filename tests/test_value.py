"""The merge is a join: commutative, associative, idempotent, and equal to a
simple sequential oracle that applies a whole history at once."""

from __future__ import annotations

import datetime
import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from timak.value import Record, TimelineValue, check_data, check_id, check_score, merge

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


def test_readme_rules_table() -> None:
    a5, a7 = Record("a", 5), Record("a", 7)
    del5, del7 = Record("a", 5, True), Record("a", 7, True)
    assert merge([], 9, extra=[a5, a7])["a"] == a7
    assert merge([], 9, extra=[a5, del5])["a"] == del5
    assert merge([], 9, extra=[del5, a5])["a"] == del5
    assert merge([], 9, extra=[a7, del5])["a"] == a7
    assert merge([], 9, extra=[del7, a5])["a"] == del7
    trimmed = merge([], 2, extra=[Record("a", 1), Record("b", 2), Record("c", 3)])
    assert sorted(trimmed) == ["b", "c"]
    held = merge([], 2, extra=[Record("a", 1), Record("b", 2), Record("b", 2, True)])
    assert [r.id for r in held.visible()] == ["a"]
    stale = merge([], 2, extra=[Record("c", 0)])
    assert "c" not in merge([held, stale], 2)


def test_equal_scores_of_different_types_still_decide_deterministically() -> None:
    one, one_float = Record("a", 1), Record("a", 1.0)
    assert merge([], 3, extra=[one, one_float]) == merge([], 3, extra=[one_float, one])


def test_mixed_id_types_order_without_error() -> None:
    value = merge([], 2, extra=[Record(1, 5), Record("1", 5), Record(2, 5)])
    assert list(value) and sorted(value, key=str) == ["1", 2]


@pytest.mark.parametrize("bad", [True, None, 1.5, b"x", "", 2**63, -(2**63) - 1, "x" * 1025])
def test_bad_ids_are_rejected(bad: object) -> None:
    from timak.errors import InvalidItemError

    with pytest.raises(InvalidItemError):
        check_id(bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), True, "5", 2**63])
def test_bad_scores_are_rejected(bad: object) -> None:
    from timak.errors import InvalidScoreError

    with pytest.raises(InvalidScoreError):
        check_score(bad)


@pytest.mark.parametrize("bad", [{1, 2}, object(), 2**64, {"when": datetime.date(2020, 1, 1)}])
def test_unencodable_data_is_rejected(bad: object) -> None:
    from timak.errors import InvalidDataError

    with pytest.raises(InvalidDataError):
        check_data(bad)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        merge([], 0)
