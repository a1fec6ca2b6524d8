"""Reading feeds: flat, aggregated and notification pages, marks and counts.

``FeedReads`` is the reading half of ``Feeds`` (``timak.activity._feeds``),
kept apart so each module stays small; it only reads timelines, except the
seen/read marks, which are blind writes to the readers' state timelines
(see ``timak.activity._notify``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..backends import Backend
from ..errors import (
    ConfigError,
    CorruptValueError,
    UnknownActivityGroupError,
    UnknownFeedGroupError,
)
from ..timelines import Timeline
from ..value import Record
from ._activity import Ref
from ._groups import FeedGroup
from ._notify import NotificationState, mark_items
from ._pages import (
    ActivityPage,
    AggregatedPage,
    Group,
    Grouping,
    Hydrate,
    cursor_position,
    flat_page,
)
from ._payloads import hydrate

__all__ = ["FeedReads"]


class FeedReads:
    """Reads, marks and counts over the feed groups of a ``Feeds``."""

    groups: dict[str, FeedGroup]
    connection: Backend
    payload_bucket: str
    _timelines: dict[str, Timeline]
    _states: dict[str, Timeline]

    def group(self, name: str) -> FeedGroup:
        """The ``FeedGroup`` called ``name``; ``UnknownFeedGroupError`` if none."""
        found = self.groups.get(name) if isinstance(name, str) else None
        if found is None:
            raise UnknownFeedGroupError(
                f"unknown feed group {name!r:.80}; the groups are {', '.join(self.groups)}"
            )
        return found

    def timeline(self, name: str) -> Timeline:
        """The ``Timeline`` that stores the feeds of group ``name``."""
        return self._timelines[self.group(name).name]

    def read(
        self, feed: str, owner: Ref, limit: int = 25, cursor: str | None = None,
        *, skip_corrupt: bool = False,
    ) -> ActivityPage:
        """A page of ``owner``'s feed of group ``feed``, newest first, as
        activities (any kind of group can be read flat).

        Reads lazily from the cursor and decodes only the activities it
        returns; their payloads stored apart (``inline_bytes``) are fetched
        with one ``fetch_many``. A payload that is missing or does not match
        its reference raises ``CorruptValueError``, as does a corrupt
        sibling of the feed; ``skip_corrupt=True`` leaves those out instead.
        Nothing is deleted either way."""
        _check_limit(limit)
        after = None if cursor is None else cursor_position(cursor, "read")
        records = self.timeline(feed).scan(_key(owner), after, hint=limit + 1,
                                           skip_corrupt=skip_corrupt)
        return flat_page(records, limit, self._hydrator(skip_corrupt))

    def aggregated(
        self,
        feed: str,
        owner: Ref,
        limit: int = 10,
        cursor: str | None = None,
        *,
        group_limit: int = 10,
        skip_corrupt: bool = False,
    ) -> AggregatedPage:
        """A page of groups of an aggregated or notification feed, newest
        group first. Notification feeds add the reader's marks and counts
        (see ``notifications``). Every record of the feed is read (counts
        cover the whole feed), activities are built for the groups returned
        only, and their payloads fetched with one ``fetch_many``.
        ``skip_corrupt``: as in ``read``."""
        _check_limit(limit)
        group = self.group(feed)
        if group.kind == "flat":
            raise UnknownFeedGroupError(f"feed group {feed!r} is flat, not aggregated")
        after = None if cursor is None else cursor_position(cursor, "groups")
        grouping = self._grouping(group, owner, skip_corrupt)
        taken, next_cursor = grouping.page(limit, after, group_limit,
                                           self._hydrator(skip_corrupt))
        if group.kind != "notification":
            return AggregatedPage(taken, next_cursor)
        state = self._state(group, owner)
        every = grouping.ids()
        return AggregatedPage(
            [_marked(g, state) for g in taken],
            next_cursor,
            unseen=sum(1 for gid, newest in every if not state.seen_at(gid, newest)),
            unread=sum(1 for gid, newest in every if not state.read_at(gid, newest)),
        )

    def notifications(
        self,
        reader: Ref,
        limit: int = 10,
        cursor: str | None = None,
        *,
        feed: str = "notification",
        skip_corrupt: bool = False,
    ) -> AggregatedPage:
        """A page of ``reader``'s notification groups, each with ``seen`` and
        ``read``, and the feed's ``unseen``/``unread`` group counts.
        ``skip_corrupt``: as in ``read``."""
        self._notification_group(feed)
        return self.aggregated(feed, reader, limit, cursor, skip_corrupt=skip_corrupt)

    def mark_seen(self, reader: Ref, *, feed: str = "notification") -> int:
        """Mark everything now in ``reader``'s notification feed seen (one read
        of the feed, one blind write). Returns how many marks were written
        (0 for an empty feed)."""
        group = self._notification_group(feed)
        newest = self._grouping(group, reader).newest()
        if newest is None:
            return 0
        return self._states[group.name].add_many(_key(reader), mark_items(seen=newest))

    def mark_read(
        self, reader: Ref, groups: Iterable[str] | None = None, *, feed: str = "notification"
    ) -> int:
        """Mark all of ``reader``'s notification groups read, or only the
        groups with the ids in ``groups`` (each read up to its newest
        activity). Raises ``UnknownActivityGroupError`` for an id the feed
        does not hold, before writing. Returns how many marks were written."""
        group = self._notification_group(feed)
        present = dict(self._grouping(group, reader).ids())
        if groups is None:
            if not present:
                return 0
            items = mark_items(read=max(present.values()))
        else:
            wanted = [groups] if isinstance(groups, str) else list(groups)
            missing = [gid for gid in wanted if gid not in present]
            if missing:
                raise UnknownActivityGroupError(
                    f"no group {missing[0]!r:.80} in {_key(reader)!r}'s {feed} feed"
                )
            items = mark_items(groups=[(gid, present[gid]) for gid in wanted])
        return self._states[group.name].add_many(_key(reader), items)

    def unseen_count(self, reader: Ref, *, feed: str = "notification") -> int:
        """How many of ``reader``'s notification groups are not seen."""
        self._notification_group(feed)
        return self.aggregated(feed, reader, 1, group_limit=1).unseen or 0

    def unread_count(self, reader: Ref, *, feed: str = "notification") -> int:
        """How many of ``reader``'s notification groups are not read."""
        self._notification_group(feed)
        return self.aggregated(feed, reader, 1, group_limit=1).unread or 0

    def count(self, feed: str, owner: Ref) -> int:
        """How many activities ``owner``'s feed of group ``feed`` holds."""
        return self.timeline(feed).count(_key(owner))

    def _notification_group(self, feed: str) -> FeedGroup:
        group = self.group(feed)
        if group.kind != "notification":
            raise UnknownFeedGroupError(f"feed group {feed!r} is not a notification feed")
        return group

    def _grouping(self, group: FeedGroup, owner: Ref, skip_corrupt: bool = False) -> Grouping:
        records = self._timelines[group.name].scan(_key(owner), skip_corrupt=skip_corrupt)
        return Grouping(records, group.group_by)

    def _hydrator(self, skip_corrupt: bool) -> Hydrate:
        """Fetches the payloads of the records of a page that reference one."""

        def hydrate_page(records: list[Record]) -> dict[Any, dict[str, Any] | None]:
            wanted = [(str(r.id), r.data["p"]) for r in records if "p" in r.data]
            found: dict[Any, dict[str, Any] | None] = {}
            for item_id, extra in hydrate(self.connection, self.payload_bucket, wanted).items():
                if isinstance(extra, CorruptValueError):
                    if not skip_corrupt:
                        raise extra
                    extra = None
                found[item_id] = extra
            return found

        return hydrate_page

    def _state(self, group: FeedGroup, reader: Ref) -> NotificationState:
        return NotificationState.of(self._states[group.name].get(_key(reader), raw=True))


def _marked(group: Group, state: NotificationState) -> Group:
    return replace(group, seen=state.is_seen(group), read=state.is_read(group))


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"limit must be a positive int, got {limit!r}")


def _key(owner: object) -> str:
    """The timeline key of a feed owner (an actor id: str or int)."""
    return owner if isinstance(owner, str) else str(owner)
