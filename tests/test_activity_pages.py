"""Activity pages read lazily (issue 20, "One read path"): a flat page decodes
only what it returns, aggregated pages equal a naive model of the docs,
cursors are their own kind, and ``Timeline.scan`` pages by position."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from timak import Timeline
from timak.activity import Activity, FeedGroup, Feeds, by_verb_object_day
from timak.backends.memory import MemoryBackend
from timak.errors import InvalidCursorError
from timak.value import Record

T0 = 1_714_564_800_000_000
HOUR = 3_600_000_000


def feeds_on(backend: MemoryBackend | None = None) -> Feeds:
    return Feeds(backend or MemoryBackend(), followers=lambda a: [], groups=[
        FeedGroup("user"), FeedGroup("digest", "aggregated", follows="user"),
        FeedGroup("notification", "notification")])


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[object]]:
    """The ids of the records whose item data a test read (and so decoded)."""
    seen: set[object] = set()
    original = Record.data

    def counting(record: Record) -> Any:
        seen.add(record.id)
        return original.fget(record)  # type: ignore[attr-defined]

    monkeypatch.setattr(Record, "data", property(counting))
    yield seen


def test_a_flat_page_decodes_only_what_it_returns(decoded: set[object]) -> None:
    feeds = feeds_on()
    feeds.timeline("user").add_many("a", [
        Activity("a", "post", f"p{n}", time=T0 + n, extra={"n": n}).item() for n in range(500)])
    decoded.clear()
    first = feeds.read("user", "a", limit=10)
    assert [a.extra["n"] for a in first.activities] == list(range(499, 489, -1))
    assert len(decoded) <= 11  # the page and the one that says there is more
    decoded.clear()
    second = feeds.read("user", "a", limit=10, cursor=first.cursor)
    assert [a.extra["n"] for a in second.activities] == list(range(489, 479, -1))
    assert len(decoded) <= 11


def test_activity_cursors_are_their_own_kind() -> None:
    feeds = feeds_on()
    for n in range(3):
        feeds.add_activity(Activity(f"u{n}", "like", f"o{n}", time=T0 + n),
                           to=[("notification", "z")])
    flat = feeds.read("user", "u0", limit=1).cursor
    assert flat is None
    flat = feeds.read("notification", "z", limit=1).cursor
    groups = feeds.aggregated("notification", "z", limit=1).cursor
    assert flat is not None and groups is not None
    assert flat.startswith("g1.") and groups.startswith("g1.")
    with pytest.raises(InvalidCursorError,
                       match=r"expected a group page cursor .*, got an activity page"):
        feeds.aggregated("notification", "z", cursor=flat)
    with pytest.raises(InvalidCursorError,
                       match=r"expected an activity page cursor .*, got a group page"):
        feeds.read("notification", "z", cursor=groups)
    tl = Timeline(MemoryBackend())
    tl.add("k", "a", 1)
    tl.add("k", "b", 2)
    page_cursor = tl.page("k", 1).cursor
    with pytest.raises(InvalidCursorError, match="got a page cursor"):
        feeds.read("notification", "z", cursor=page_cursor)
    with pytest.raises(InvalidCursorError, match="damaged"):
        feeds.read("notification", "z", cursor=flat[:-3])


def test_timeline_scan_pages_by_position_newest_first() -> None:
    tl = Timeline(MemoryBackend(), order="asc", max_items=10)
    for n in range(5):
        tl.add("k", f"i{n}", n, {"n": n})
    tl.delete("k", "i3", 3)
    assert [(r.id, r.deleted) for r in tl.scan("k")] == [
        ("i4", False), ("i3", True), ("i2", False), ("i1", False), ("i0", False)]
    assert [r.id for r in tl.scan("k", (2, 1, "i2"))] == ["i1", "i0"]
    assert [r.id for r in tl.scan("k", (2, 1, "i2z"), hint=1)] == ["i2", "i1", "i0"]
    assert list(tl.scan("nothing")) == []


def _naive(records: list[tuple[str, int, str, str, bool]]) -> list[tuple[str, int, int, list[str]]]:
    """Groups as docs/activity.md defines them: (id, total, actor_count,
    activity ids newest first), newest group first."""
    winners: dict[str, tuple[int, bool, str, str]] = {}
    for item_id, score, actor, obj, deleted in records:
        old = winners.get(item_id)
        if old is None or (score, deleted) > (old[0], old[1]):
            winners[item_id] = (score, deleted, actor, obj)
    live = sorted(((s, i, a, o) for i, (s, d, a, o) in winners.items() if not d), reverse=True)
    groups: dict[str, list[tuple[str, str]]] = {}
    for score, item_id, actor, obj in live:
        key = by_verb_object_day(Activity(actor, "like", obj, time=score))
        groups.setdefault(key, []).append((item_id, actor))
    return [(key, len(found), len({a for _, a in found}), [i for i, _ in found])
            for key, found in groups.items()]


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 72), st.booleans()),
                max_size=40),
       st.integers(1, 4), st.integers(1, 3))
def test_aggregated_pages_equal_the_naive_model(
    history: list[tuple[str, int, bool]], limit: int, group_limit: int
) -> None:
    feeds = feeds_on()
    tl = feeds.timeline("digest")
    records = []
    for item_id, hours, deleted in history:
        # Actor and object follow from the id: one id's adds at one score
        # never differ in data (that tie is the merge's, not this test's).
        actor, obj = f"u{ord(item_id) % 3}", f"o{ord(item_id) % 2}"
        activity = Activity(actor, "like", obj, time=T0 + hours * HOUR, id=item_id)
        records.append((item_id, activity.time, actor, obj, deleted))
        tl.add_many("z", [activity.item()], deleted=deleted)
    tl.add_many("z", [("not-an-activity", T0 + 5, {"text": "x"})])
    expected = _naive(records)
    got: list[tuple[str, int, int, list[str]]] = []
    cursor = None
    while True:
        page = feeds.aggregated("digest", "z", limit=limit, cursor=cursor,
                                group_limit=group_limit)
        for group in page.groups:
            assert len(group.activities) == min(group_limit, group.total)
            assert group.newest == group.activities[0].time
            got.append((group.id, group.total, group.actor_count,
                        [a.id for a in group.activities]))
        cursor = page.cursor
        if cursor is None:
            break
    assert [g[:3] for g in got] == [g[:3] for g in expected]
    assert [g[3] for g in got] == [g[3][:group_limit] for g in expected]
