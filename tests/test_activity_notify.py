"""The notification seen/read state is a lattice: property tests.

A reader's state is the set of mark records in its state timeline, joined by
the timeline merge; ``NotificationState`` reads seen/read from it. Checked
here on random marks from several devices:

* the join is commutative, associative and idempotent on the state;
* any split of the marks into devices' siblings, merged in any order (and
  with duplicates, as retries make), gives the oracle's state: per mark, the
  highest score ever written;
* seen/read of any group is monotone: adding marks never un-reads a group;
* on a real store (memory, SQLite), devices marking blind at once converge.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from timak.activity import Activity, FeedGroup, Feeds, Group, NotificationState
from timak.activity._notify import mark_items
from timak.value import Record, TimelineValue, merge

CAPACITY = 12  # the state timeline's capacity: a feed of 10 plus 2
GROUP_IDS = [f"like|photo:{n}|2024-05-01" for n in range(10)]

scores = st.integers(0, 50)
marks = st.one_of(
    st.tuples(st.just("seen"), scores),
    st.tuples(st.just("read"), scores),
    st.tuples(st.sampled_from(["g:" + g for g in GROUP_IDS]), scores),
)
mark_lists = st.lists(marks, max_size=12)


def value(items: Iterable[tuple[str, int]]) -> TimelineValue:
    """The sibling one device's blind write leaves (one write, many marks)."""
    return TimelineValue.of([Record(i, s) for i, s in items], CAPACITY)


def join(*values: TimelineValue) -> TimelineValue:
    return merge(values, CAPACITY)


def state(v: TimelineValue) -> NotificationState:
    return NotificationState.of(v.values())


def oracle(items: Iterable[tuple[str, int]]) -> NotificationState:
    best: dict[str, int] = {}
    for mark, score in items:
        best[mark] = max(best.get(mark, score), score)
    return NotificationState(
        best.get("seen"), best.get("read"),
        {m[2:]: s for m, s in best.items() if m.startswith("g:")},
    )


def group(gid: str, newest: int) -> Group:
    return Group(gid, "like", [], 1, ["a"], 1, newest)


@given(mark_lists, mark_lists)
def test_join_is_commutative(a: list[tuple[str, int]], b: list[tuple[str, int]]) -> None:
    assert state(join(value(a), value(b))) == state(join(value(b), value(a)))


@given(mark_lists, mark_lists, mark_lists)
def test_join_is_associative(
    a: list[tuple[str, int]], b: list[tuple[str, int]], c: list[tuple[str, int]]
) -> None:
    left = join(join(value(a), value(b)), value(c))
    right = join(value(a), join(value(b), value(c)))
    assert left == right
    assert state(left) == state(right)


@given(mark_lists)
def test_join_is_idempotent(a: list[tuple[str, int]]) -> None:
    assert join(value(a), value(a)) == value(a)


@given(st.lists(mark_lists, min_size=1, max_size=5), st.randoms())
def test_any_interleaving_of_devices_equals_the_oracle(
    devices: list[list[tuple[str, int]]], rnd: object
) -> None:
    # Each device's writes are siblings; read repairs merge subsets of them
    # in some order, with a retry or two duplicating a write.
    import random

    assert isinstance(rnd, random.Random)
    siblings = [value(d) for d in devices]
    siblings += rnd.sample(siblings, k=rnd.randint(0, len(siblings)))
    rnd.shuffle(siblings)
    while len(siblings) > 1:
        i, j = sorted(rnd.sample(range(len(siblings)), 2))
        merged = join(siblings[i], siblings[j])
        siblings = [s for k, s in enumerate(siblings) if k not in (i, j)] + [merged]
    every_mark = [m for d in devices for m in d]
    # 10 groups + 2 marks fit the capacity: nothing is trimmed here.
    assert state(siblings[0]) == oracle(every_mark)


@given(mark_lists, mark_lists, st.sampled_from(GROUP_IDS), scores)
def test_more_marks_never_unread_or_unsee(
    a: list[tuple[str, int]], more: list[tuple[str, int]], gid: str, newest: int
) -> None:
    before, after = state(value(a)), state(join(value(a), value(more)))
    g = group(gid, newest)
    assert not before.is_read(g) or after.is_read(g)
    assert not before.is_seen(g) or after.is_seen(g)
    assert not after.is_read(g) or after.is_seen(g)  # read implies seen


def test_a_newer_activity_makes_a_read_group_unread_again() -> None:
    marked = NotificationState.of(
        Record(i, s) for i, s, _ in mark_items(groups=[("g1", 5)], seen=5))
    assert marked.is_read(group("g1", 5)) and marked.is_seen(group("g1", 5))
    assert not marked.is_read(group("g1", 6)) and not marked.is_seen(group("g1", 6))
    assert not marked.is_read(group("g2", 4)) and marked.is_seen(group("g2", 4))


@settings(deadline=None)  # store I/O: its timing is not the property
@given(st.lists(st.tuples(st.sampled_from(["phone", "laptop", "tablet"]),
                          st.sampled_from(["seen", "read", "read-some"]),
                          st.integers(0, 5)), max_size=8),
       st.sampled_from(["memory", "sqlite"]))
def test_devices_marking_on_a_real_store_converge(
    actions: list[tuple[str, str, int]], store: str
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        url = f"memory://{uuid.uuid4().hex}" if store == "memory" else f"sqlite:///{tmp}/n.db"
        groups = [FeedGroup("user"), FeedGroup("notification", "notification", 10)]
        devices = {d: Feeds(url, followers=lambda a: [], groups=groups)
                   for d in ("phone", "laptop", "tablet")}
        poster = devices["phone"]
        try:
            posted: list[int] = []  # the photo of each activity; its time is its index
            expected: list[tuple[str, int]] = []
            for device, action, n in actions:
                # Activities keep arriving between marks.
                poster.add_activity(Activity(f"u{n}", "like", f"photo:{n % 3}",
                                             time=len(posted)), to=[("notification", "zoe")])
                posted.append(n % 3)
                newest = len(posted) - 1
                feeds = devices[device]
                if action == "seen":
                    feeds.mark_seen("zoe")
                    expected.append(("seen", newest))
                elif action == "read":
                    feeds.mark_read("zoe")
                    expected.append(("read", newest))
                else:
                    ids = [g.id for g in feeds.notifications("zoe", 10).groups]
                    gid = ids[n % len(ids)]
                    feeds.mark_read("zoe", [gid])
                    photo = int(gid.split("|")[1].split(":")[1])
                    kept = range(max(0, len(posted) - 10), len(posted))  # capacity 10
                    expected.append(("g:" + gid, max(t for t in kept if posted[t] == photo)))
            pages = [d.notifications("zoe", 10) for d in devices.values()]
            assert all(p == pages[0] for p in pages)
            for d in devices.values():
                stored = d._states["notification"].get("zoe", raw=True)
                assert NotificationState.of(stored) == oracle(expected)
        finally:
            for d in devices.values():
                d.close()
