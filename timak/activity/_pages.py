"""Reading feeds: flat pages of activities and aggregated pages of groups. Pure.

Both page by *position*: the ``(score, id)`` order of the timeline's records
(``timak.value.order_key``). A flat page's cursor is the position of its
last activity; an aggregated page's is the position of its last group's
newest activity, and groups are ordered by that position. New activities
arriving on top never shift or repeat later pages. A group that gains an
activity moves to the top (it is not repeated further down); a group whose
newest activity is removed moves down and may show again on a later page.

Both read records lazily, newest first (``Timeline.scan``), and decode only
what they need: a flat page reads from its cursor until it has ``limit + 1``
activities and builds an ``Activity`` for the ``limit`` it returns; an
aggregated page reads every record (a group's ``total`` and the unseen and
unread counts cover the whole feed) but only each one's actor, verb, object
and time, and builds ``Activity`` objects only for the groups it returns.

Aggregation happens on read, over the visible records of the one stored
timeline, so the stored value stays a plain timak value and its merge stays
a lattice.

Cursors are kind ``g`` (``timak._cursors``), their body
``["read" or "groups", score, id kind, id]``: a flat page's cursor is
refused by an aggregated read and the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .._cursors import damaged, decode_cursor, encode_cursor
from .._records import order_key
from ..errors import InvalidCursorError
from ..value import Record, Score
from ._activity import (
    Activity,
    Ref,
    activity_fields,
    by_verb_object_day,
    checked_activity,
    verb_object_day,
)

_DAY_US = 86_400_000_000

__all__ = [
    "ActivityPage",
    "AggregatedPage",
    "Group",
    "Grouping",
    "Hydrate",
    "activity_records",
    "cursor_position",
    "flat_page",
    "no_payloads",
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


#: Payloads of the records that hold a reference (``timak.activity._payloads``):
#: per record id, its ``extra``, or ``None`` to leave the activity out (its
#: payload was removed). Given the records a page returns.
Hydrate = Callable[[list[Record]], dict[Any, "dict[str, Any] | None"]]


def no_payloads(records: list[Record]) -> dict[Any, dict[str, Any] | None]:
    """``Hydrate`` for records that hold no references."""
    return {}


def activity_records(records: Iterable[Record], limit: int | None = None) -> list[Record]:
    """The records among newest-first ``records`` (as ``Timeline.scan``
    yields them) that hold activities and are not deleted; at most
    ``limit``, reading no further than that. Items that are not activities
    are skipped."""
    found = []
    for record in records:
        if not record.deleted and activity_fields(record) is not None:
            found.append(record)
            if limit is not None and len(found) >= limit:
                break
    return found


def _activity(record: Record, extra: dict[str, Any] | None = None) -> Activity:
    # Only records activity_fields accepted get here (activity_records).
    return checked_activity(record, extra)


def _hydrated(records: list[Record], hydrate: Hydrate) -> list[tuple[Position, Activity]]:
    extras = hydrate(records)
    found = []
    for record in records:
        if record.id not in extras:
            found.append((order_key(record), _activity(record)))
        elif (extra := extras[record.id]) is not None:
            found.append((order_key(record), _activity(record, extra)))
    return found


def flat_page(records: Iterable[Record], limit: int, hydrate: Hydrate) -> ActivityPage:
    """The first ``limit`` activities of newest-first ``records`` (those
    after the cursor), and the next cursor if there is one more. Payloads
    are fetched for the page only; an activity whose payload was removed
    is left out, and the page reads on so it is not short."""
    rest = iter(records)
    taken: list[tuple[Position, Activity]] = []
    while len(taken) <= limit:
        batch = activity_records(rest, limit + 1 - len(taken))
        if not batch:
            break
        taken.extend(_hydrated(batch, hydrate))
    more = len(taken) > limit
    del taken[limit:]
    return ActivityPage(
        [a for _, a in taken], _cursor("read", taken[-1][0]) if more else None
    )


@dataclass
class _Members:
    """One group while the feed is read: its members' records, newest first,
    and their distinct actors in order."""

    position: Position
    key: str
    newest: Score
    records: list[Record]
    actors: dict[Ref, None]


class Grouping:
    """The groups of one aggregated feed, newest first, made from every
    visible record of it (newest first) with ``group_by``.

    Only the fields grouping needs are read from each record (its actor,
    verb, object and time, for the default ``group_by``); ``Group`` objects,
    with their ``Activity`` members, are built only for ``page``.
    """

    def __init__(
        self, records: Iterable[Record], group_by: Callable[[Activity], str]
    ) -> None:
        by_key: dict[str, list[Record]] = {}
        actors: dict[str, dict[Ref, None]] = {}
        default = group_by is by_verb_object_day
        # The default key of (verb, object, day), made once per distinct
        # triple: formatting it per record was a quarter of a page. The loop
        # runs once per record of the feed: everything in it is local.
        keys: dict[tuple[str, Ref | None, int], str] = {}
        fields_of, get_key, get_records = activity_fields, keys.get, by_key.get
        for record in records:
            if record.deleted:
                continue
            fields = fields_of(record)
            if fields is None:
                continue
            actor, verb, obj = fields
            if default:
                triple = (verb, obj, int(record.score) // _DAY_US)
                key = get_key(triple)
                if key is None:
                    key = keys[triple] = verb_object_day(verb, obj, record.score)
            else:
                key = group_by(checked_activity(record))
            found = get_records(key)
            if found is None:
                by_key[key] = [record]
                actors[key] = {actor: None}
            else:
                found.append(record)
                actors[key][actor] = None  # kept at its first (newest) place
        #: Newest group first (dicts keep insertion order).
        self.groups = [
            _Members(order_key(found[0]), key, found[0].score, found, actors[key])
            for key, found in by_key.items()
        ]

    def newest(self) -> Score | None:
        """The newest activity's time, or ``None`` for an empty feed."""
        return max((g.newest for g in self.groups), default=None)

    def ids(self) -> list[tuple[str, Score]]:
        """Every group's ``(id, newest)``, newest group first."""
        return [(g.key, g.newest) for g in self.groups]

    def page(
        self, limit: int, after: Position | None, group_limit: int,
        hydrate: Hydrate = no_payloads,
    ) -> tuple[list[Group], str | None]:
        """``limit`` groups after the position ``after`` (a group cursor's:
        ``cursor_position(cursor, "groups")``) and the next cursor. The
        payloads of the activities shown are fetched at once; an activity
        whose payload was removed is left out of its group's list."""
        rest = self.groups
        if after is not None:
            rest = [g for g in rest if g.position < after]
        taken = rest[:limit]
        more = len(rest) > limit
        shown = [r for g in taken for r in g.records[:group_limit]]
        activities = dict(_hydrated(shown, hydrate) if shown else [])
        return ([_group(g, group_limit, activities) for g in taken],
                _cursor("groups", taken[-1].position) if more and taken else None)


def _group(
    members: _Members, group_limit: int, activities: dict[Position, Activity]
) -> Group:
    shown = [order_key(r) for r in members.records[:group_limit]]
    first = activity_fields(members.records[0])
    assert first is not None  # Grouping took only activities
    return Group(
        id=members.key,
        verb=first[1],
        activities=[activities[p] for p in shown if p in activities],
        total=len(members.records),
        actors=list(members.actors)[:group_limit],
        actor_count=len(members.actors),
        newest=members.newest,
    )


def _cursor(what: str, position: Position) -> str:
    return encode_cursor("g", [what, *position])


_WHAT = {"read": "activity page cursor (from Feeds.read)",
         "groups": "group page cursor (from Feeds.aggregated)"}


def _a(what: str) -> str:
    return f"{'an' if what[0] in 'aeiou' else 'a'} {what}"


def cursor_position(cursor: str, what: str) -> Position:
    """The position a cursor of ``what`` pages (``"read"`` or ``"groups"``)
    holds; ``InvalidCursorError`` for anything else."""
    body = decode_cursor(cursor, "g", _WHAT[what].split(" (")[0])
    if (
        len(body) == 5
        and body[1] in _WHAT
        and isinstance(body[2], int | float)
        and not isinstance(body[2], bool)
        and body[3] in (0, 1)
        and isinstance(body[4], int | str)
        and isinstance(body[4], str) == (body[3] == 1)
    ):
        if body[1] != what:
            raise InvalidCursorError(
                f"expected {_a(_WHAT[what])}, got {_a(_WHAT[body[1]])}: {cursor!r:.80}")
        return (body[2], body[3], body[4])
    raise damaged(cursor, _WHAT[what].split(" (")[0])
