"""Property tests for the safety rules of ``timak._engine``, against the
sequential oracle of ``test_value``:

* a damaged sibling beside good ones, whatever mix of ``get``, ``page``,
  ``fanout``, ``fold``, ``compact`` and activity-feed calls follows, stays
  in the store byte for byte, and ``skip_corrupt=True`` reads exactly what
  the good writes give;
* a key only ever written blind, read in between by readers of any
  ``max_items`` (``get``, ``page``, ``count``, ``fold``, ``compact``), reads
  for its writer exactly what applying its writes in order gives.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples
from test_value import oracle

from timak import Timeline
from timak.activity import Activity, Feeds
from timak.backends.memory import MemoryBackend
from timak.errors import CorruptValueError
from timak.testing_safety import DAMAGES, damage, source_value
from timak.value import Record

WRITER_CAPACITY = 8

steps = st.lists(
    st.one_of(
        st.tuples(st.just("fanout"), st.integers(0, 30), st.integers(0, 50)),
        st.tuples(st.just("delete"), st.integers(0, 30), st.integers(0, 50)),
        st.tuples(st.sampled_from(["get", "page", "count", "fold", "compact"]),
                  st.sampled_from([1, 3, WRITER_CAPACITY, 20, None]), st.just(0)),
    ),
    max_size=40,
)


def _expected(history: list[Record], capacity: int) -> list[Any]:
    kept = oracle(history, capacity).values()
    ranked = sorted(kept, key=lambda r: (r.score, isinstance(r.id, str), r.id), reverse=True)
    return [r.id for r in ranked if not r.deleted]


def _read(tl: Timeline, op: str, key: str, **options: Any) -> None:
    if op == "get":
        tl.get(key, **options)
    elif op == "page":
        tl.page(key, 2)
    elif op == "count":
        tl.count(key)
    elif op == "fold":
        tl.fold(key)
    else:
        tl.compact([key])


def _writer(store: MemoryBackend, bucket: str, fold_at: int) -> Timeline:
    clock = iter(range(1, 10**6))
    return Timeline(store, bucket=bucket, max_items=WRITER_CAPACITY, fold_at=fold_at,
                    clock=lambda: next(clock))


def _run(writer: Timeline, steps: list[tuple[str, Any, int]],
         read: Callable[[str, Any], None], after: Callable[[], None]) -> list[Record]:
    """Apply ``steps``: blind writes by ``writer`` (the history it returns),
    and ``read(op, capacity)`` for the others; ``after()`` after each."""
    history: list[Record] = []
    for op, arg, score in steps:
        if op in ("fanout", "delete"):
            writer.fanout(["k"], arg, score, deleted=op == "delete")
            history.append(Record(arg, score, op == "delete", None, 0))
        else:
            read(op, arg)
        after()
    return history


@settings(max_examples=examples(300), deadline=None)
@given(steps=steps, fold_at=st.integers(2, 6))
def test_blind_only_keys_read_at_any_capacity_lose_nothing(
    steps: list[tuple[str, Any, int]], fold_at: int
) -> None:
    store = MemoryBackend()
    writer = _writer(store, "timelines", fold_at)

    def read(op: str, capacity: Any) -> None:
        _read(Timeline(store, max_items=capacity, fold_at=fold_at), op, "k")

    history = _run(writer, steps, read, lambda: None)
    assert writer.get("k") == _expected(history, WRITER_CAPACITY)


@settings(max_examples=examples(200), deadline=None)
@given(name=st.sampled_from(sorted(DAMAGES)), steps=steps, fold_at=st.integers(2, 6))
def test_a_damaged_sibling_stays_and_the_rest_reads_like_the_oracle(
    name: str, steps: list[tuple[str, Any, int]], fold_at: int
) -> None:
    store = MemoryBackend()
    bucket = f"b{uuid.uuid4().hex[:8]}"
    bad = damage(name, source_value(store, bucket))
    tl = _writer(store, bucket, fold_at)
    store.store(bucket, "k", bad)

    def read(op: str, _: Any) -> None:
        with contextlib.suppress(CorruptValueError):
            _read(tl, op, "k")

    def still_there() -> None:
        assert bad in store.fetch(bucket, "k").siblings

    history = _run(tl, steps, read, still_there)
    assert tl.get("k", skip_corrupt=True) == _expected(history, WRITER_CAPACITY)


@settings(max_examples=examples(100), deadline=None)
@given(name=st.sampled_from(sorted(DAMAGES)), posts=st.integers(1, 20),
       fold_at=st.integers(2, 6))
def test_feeds_go_on_beside_a_damaged_sibling(name: str, posts: int, fold_at: int) -> None:
    store = MemoryBackend()
    feeds = Feeds(store, followers=lambda actor: ["bob"] if actor == "alice" else [],
                  timeline_options={"fold_at": fold_at})
    home = feeds.timeline("home")
    bad = damage(name, source_value(store, "scratch"))
    store.store(home.bucket, "bob", bad)
    for i in range(posts):
        feeds.add_activity(Activity("alice", "post", f"p{i}", time=1 + i))
        assert bad in store.fetch(home.bucket, "bob").siblings
    with contextlib.suppress(CorruptValueError):
        feeds.read("home", "bob")
    assert bad in store.fetch(home.bucket, "bob").siblings
    kept = [r for r in home.get("bob", raw=True, skip_corrupt=True) if not r.deleted]
    assert len(kept) == min(posts, feeds.group("home").max_items)
