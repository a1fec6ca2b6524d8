"""Reading feeds: flat pages of activities and aggregated pages of groups. Pure.

Both page by *position*: the ``(score, id)`` order of the timeline's records
(``timak.value.order_key``). A flat page's cursor is the position of its
last activity; an aggregated page's is the position of its last group's
newest activity, and groups are ordered by that position. New activities
arriving on top never shift or repeat later pages. A group that gains an
activity moves to the top (it is not repeated further down); a group whose
newest activity is removed moves down and may show again on a later page.

Aggregation happens on read, over the visible records of the one stored
timeline, so the stored value stays a plain timak value and its merge stays
a lattice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .._cursors import decode_cursor, encode_cursor
from ..errors import InvalidCursorError
from ..value import Record, Score
from ._activity import Activity, Ref, activity_from_record

__all__ = [
    "ActivityPage",
    "AggregatedPage",
    "Group",
    "aggregate",
    "flat_page",
    "group_page",
    "visible_activities",
]

Position = tuple[Score, int, Any]


@dataclass(frozen=True)
class ActivityPage:
    """A page of a flat feed: ``activities`` newest first, and the ``cursor``
    of the next page (``None`` at the end)."""

    activities: list[Activity]
    cursor: str | None


@dataclass(frozen=True)
class Group:
    """Activities of one aggregated feed that share a ``group_by`` key.

    ``id``: that key. ``activities``: the newest ``group_limit`` of them,
    newest first. ``total``: how many the feed holds. ``actors``: distinct
    actors, most recent first (at most ``group_limit``); ``actor_count``:
    how many distinct actors in all. ``newest``: the newest activity's time
    (score). ``seen`` and ``read``: a notification reader's marks (always
    ``None`` in aggregated feeds).
    """

    id: str
    verb: str
    activities: list[Activity]
    total: int
    actors: list[Ref]
    actor_count: int
    newest: Score
    seen: bool | None = None
    read: bool | None = None


@dataclass(frozen=True)
class AggregatedPage:
    """A page of groups, newest group first, and the next page's ``cursor``.
    Notification pages also carry the reader's ``unseen`` and ``unread``
    group counts over the whole feed (``None`` in aggregated feeds)."""

    groups: list[Group]
    cursor: str | None
    unseen: int | None = None
    unread: int | None = None


def visible_activities(
    records: Iterable[Record], limit: int | None = None
) -> list[tuple[Position, Activity]]:
    """The activities among newest-first ``records`` (as ``Timeline.get``
    returns them) that are not deleted, with their positions; at most
    ``limit``. Items that are not activities are skipped."""
    found = []
    for record in records:
        if record.deleted:
            continue
        activity = activity_from_record(record)
        if activity is not None:
            found.append(((record.score, 1, record.id), activity))
            if limit is not None and len(found) >= limit:
                break
    return found


def flat_page(
    activities: list[tuple[Position, Activity]], limit: int, cursor: str | None
) -> ActivityPage:
    """``limit`` activities after ``cursor``, from newest-first ``activities``."""
    rest = _after(activities, cursor, "f")
    taken = rest[:limit]
    more = len(rest) > limit
    return ActivityPage(
        [a for _, a in taken], _cursor("f", taken[-1][0]) if more and taken else None
    )


@dataclass(frozen=True)
class _Grouped:
    position: Position
    group: Group


def aggregate(
    activities: list[tuple[Position, Activity]],
    group_by: Callable[[Activity], str],
    group_limit: int = 10,
) -> list[tuple[Position, Group]]:
    """Group newest-first ``activities`` by ``group_by``; groups come newest
    first, each positioned at its newest activity."""
    members: dict[str, list[tuple[Position, Activity]]] = {}
    for position, activity in activities:
        members.setdefault(group_by(activity), []).append((position, activity))
    groups = []
    for key, found in members.items():  # dicts keep insertion order: newest first
        actors: dict[Ref, None] = {}
        for _, activity in found:
            actors.setdefault(activity.actor, None)
        newest_position, newest = found[0]
        groups.append((newest_position, Group(
            id=key,
            verb=newest.verb,
            activities=[a for _, a in found[:group_limit]],
            total=len(found),
            actors=list(actors)[:group_limit],
            actor_count=len(actors),
            newest=newest.time,
        )))
    return groups


def group_page(
    groups: list[tuple[Position, Group]], limit: int, cursor: str | None
) -> tuple[list[Group], str | None]:
    """``limit`` groups after ``cursor`` and the next cursor."""
    rest = _after(groups, cursor, "g")
    taken = rest[:limit]
    more = len(rest) > limit
    return [g for _, g in taken], _cursor("g", taken[-1][0]) if more and taken else None


def _after(items: list[tuple[Position, Any]], cursor: str | None, kind: str) -> list[Any]:
    if cursor is None:
        return items
    after = _position(cursor, kind)
    return [item for item in items if item[0] < after]


def _cursor(kind: str, position: Position) -> str:
    return encode_cursor(kind, list(position))


def _position(cursor: str, kind: str) -> Position:
    body = decode_cursor(cursor, kind, "feed cursor")
    if (
        len(body) == 4
        and isinstance(body[1], int | float)
        and not isinstance(body[1], bool)
        and body[2] in (0, 1)
        and isinstance(body[3], int | str)
        and isinstance(body[3], str) == (body[2] == 1)
    ):
        return (body[1], body[2], body[3])
    raise InvalidCursorError(f"damaged feed cursor {cursor!r:.80}")
