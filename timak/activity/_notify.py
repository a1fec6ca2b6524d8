"""A notification reader's seen/read state, and why two devices converge. Pure.

The state of one reader of one notification feed is stored as an ordinary
timak timeline (its own bucket, key = the reader) holding *marks*:

===================  =========================================================
mark (item id)       score
===================  =========================================================
``"seen"``           everything with a newest activity at or below it is seen
``"read"``           every group whose newest activity is at or below it is read
``"g:" + group id``  that group is read up to this score
===================  =========================================================

Marking writes marks blind (no read of the state first). Two devices marking
at once leave two siblings, which the timeline merge joins: per mark id, the
higher score wins. So the state is the per-id maximum of every mark ever
written, a join-semilattice (commutative, associative, idempotent: it *is*
the timeline merge, see ``timak.value``), and every interleaving of marks
from any number of devices gives the same state as applying them in any
sequential order. Marks never move back: there is no "mark unread".

A group is *read* when its newest activity is at or below ``"read"`` or its
own ``"g:"`` mark, *seen* when it is at or below ``"seen"`` or read. A new
activity joining a group moves the group's newest score above its marks,
so the group is unseen and unread again, which is what a notification bell
should do ("Bob and 3 others liked your photo" comes back).

The state timeline holds ``max_items + 2`` marks, where ``max_items`` is the
notification feed's capacity: one per group the feed can hold plus the two
"all" marks. Trimming keeps the marks with the highest scores, i.e. those
of the newest groups; a trimmed mark belongs to a group older than every
group still marked, and the "all" marks, written at the feed's newest
score, outlive it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..value import Record, Score
from ._pages import Group

__all__ = ["NotificationState", "mark_items"]

SEEN = "seen"
READ = "read"
GROUP_PREFIX = "g:"


@dataclass(frozen=True)
class NotificationState:
    """The marks of one reader, decoded from the state timeline's records.

    >>> state = NotificationState.of([Record("seen", 5), Record("g:x", 7)])
    >>> (state.seen_up_to, state.read_up_to, state.read_groups)
    (5, None, {'x': 7})
    """

    seen_up_to: Score | None = None
    read_up_to: Score | None = None
    read_groups: dict[str, Score] = field(default_factory=dict)

    @classmethod
    def of(cls, records: Iterable[Record]) -> NotificationState:
        """The state the (merged) mark records describe; tombstones are ignored."""
        seen: Score | None = None
        read: Score | None = None
        groups: dict[str, Score] = {}
        for record in records:
            if record.deleted or not isinstance(record.id, str):
                continue
            if record.id == SEEN:
                seen = record.score
            elif record.id == READ:
                read = record.score
            elif record.id.startswith(GROUP_PREFIX):
                groups[record.id[len(GROUP_PREFIX):]] = record.score
        return cls(seen, read, groups)

    def is_read(self, group: Group) -> bool:
        """Whether ``group`` is read: its newest activity is under a read mark."""
        return self.read_at(group.id, group.newest)

    def is_seen(self, group: Group) -> bool:
        """Whether ``group`` is seen (read groups are seen too)."""
        return self.seen_at(group.id, group.newest)

    def read_at(self, group_id: str, newest: Score) -> bool:
        """Whether the group ``group_id``, whose newest activity is at
        ``newest``, is read (``is_read`` without building the group)."""
        if self.read_up_to is not None and newest <= self.read_up_to:
            return True
        mark = self.read_groups.get(group_id)
        return mark is not None and newest <= mark

    def seen_at(self, group_id: str, newest: Score) -> bool:
        """Whether the group ``group_id`` is seen (``is_seen`` without building it)."""
        return (
            self.seen_up_to is not None and newest <= self.seen_up_to
        ) or self.read_at(group_id, newest)


def mark_items(
    *, seen: Score | None = None, read: Score | None = None,
    groups: Iterable[tuple[str, Score]] = (),
) -> list[tuple[str, Score, None]]:
    """The mark items to write: ``seen``/``read`` up to a score, and each of
    ``groups`` (``(id, newest)``) read up to its newest activity."""
    items: list[tuple[str, Score, None]] = []
    if seen is not None:
        items.append((SEEN, seen, None))
    if read is not None:
        items.append((READ, read, None))
    items.extend((GROUP_PREFIX + group_id, newest, None) for group_id, newest in groups)
    return items
