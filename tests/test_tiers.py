"""Partial folds (a delta sibling beside the untouched base) against the
sequential oracle: any interleaving of blind writes, partial and full folds
made from fetches taken at any earlier moment, and reads, reads exactly what
applying every write in order gives, with siblings per key bounded."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples
from test_value import oracle, records

from timak import Timeline
from timak import _encoding as encoding
from timak.backends import Backend, Fetched, connect
from timak.backends.memory import MemoryBackend
from timak.value import Record, TimelineValue

KEY = "k"

ops = st.lists(
    st.one_of(
        st.tuples(st.just("blind"), records()),
        st.tuples(st.just("fetch"), st.integers(0, 2)),
        st.tuples(st.sampled_from(["partial", "full"]), st.integers(0, 2)),
        st.tuples(st.just("read"), st.none()),
    ),
    max_size=40,
)


def _run(backend: Backend, steps: list[tuple[str, Any]], capacity: int, fold_at: int) -> None:
    tl = Timeline(connection=backend, max_items=capacity, fold_at=fold_at)
    history: list[Record] = []
    snapshots: dict[int, Fetched] = {}
    for op, arg in steps:
        if op == "blind":
            history.append(arg)
            tl._engine.blind([KEY], encoding.encode(TimelineValue({arg.id: arg})), arg.arrived)
            assert len(backend.fetch(tl.bucket, KEY).siblings) < fold_at
        elif op == "fetch":
            snapshots[arg] = backend.fetch(tl.bucket, KEY)
        elif op in ("partial", "full") and arg in snapshots:
            # A fold from a fetch that may be stale: later writes must survive.
            tl._engine.fold_fetched(KEY, snapshots.pop(arg), partial=op == "partial")
        elif op == "read":
            assert dict(tl._read(KEY).view) == oracle(history, capacity)
    assert dict(tl._read(KEY, repair=False).view) == oracle(history, capacity)
    # Nothing capacity-less was trimmed at a guessed capacity: every sibling
    # either states the Timeline's capacity or states none.
    for sibling in backend.fetch(tl.bucket, KEY).siblings:
        assert encoding.decode(sibling).capacity in (None, capacity)


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:"])
@settings(max_examples=examples(400), deadline=None)
@given(steps=ops, capacity=st.integers(1, 6), fold_at=st.integers(3, 6))
def test_partial_and_full_folds_read_like_the_oracle(
    url: str, steps: list[tuple[str, Any]], capacity: int, fold_at: int
) -> None:
    backend = connect(url)
    try:
        _run(backend, steps, capacity, fold_at)
    finally:
        backend.close()


def test_a_partial_fold_leaves_the_base_untouched() -> None:
    backend = MemoryBackend()
    tl = Timeline(connection=backend, max_items=200, fold_at=16)
    tl.add_many(KEY, [(i, i, {"n": i}) for i in range(200)])
    [base] = backend.fetch(tl.bucket, KEY).siblings
    for i in range(200, 215):
        tl.fanout([KEY], i, i)
    siblings = backend.fetch(tl.bucket, KEY).siblings
    assert len(siblings) == 2 and base in siblings
    assert tl.stats.partial_folds == 1 and tl.stats.folds == 1
    delta = encoding.decode(next(s for s in siblings if s != base))
    assert sorted(delta) == list(range(200, 215)) and delta.capacity is None
    assert tl.get(KEY)[:3] == [214, 213, 212]


def test_a_delta_past_delta_rows_brings_a_full_fold() -> None:
    from timak._engine import DELTA_ROWS

    backend = MemoryBackend()
    tl = Timeline(connection=backend, max_items=1000, fold_at=16)
    tl.add_many(KEY, [(i, i, None) for i in range(1000)])
    n = 1000
    while tl.stats.folds == tl.stats.partial_folds:
        tl.fanout([KEY], n, n)
        n += 1
    # The full fold came once the delta would pass DELTA_ROWS, not before.
    assert DELTA_ROWS - 16 < n - 1000 <= DELTA_ROWS + 16
    assert len(backend.fetch(tl.bucket, KEY).siblings) == 1
    assert tl.get(KEY)[:2] == [n - 1, n - 2] and len(tl.get(KEY)) == 1000
