"""Feed groups: named kinds of feed, each one timeline per owner.

A feed group is a bucket of timelines with one capacity (timak requires one
``max_items`` per bucket: see ``Timeline``). Its ``kind`` says how it is
read: ``flat`` (activities newest first), ``aggregated`` (grouped on read by
``group_by``) or ``notification`` (aggregated, plus per-reader seen/read
state). ``follows`` names the group whose activities this one receives from
the actors its owner follows: ``home`` follows ``user``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError
from ..value import check_key
from ._activity import Activity, by_verb_object_day

__all__ = ["FeedGroup", "Kind", "default_groups"]

Kind = Literal["flat", "aggregated", "notification"]


@dataclass(frozen=True)
class FeedGroup:
    """One feed group.

    ``name``: how calls name it. ``kind``: ``"flat"``, ``"aggregated"`` or
    ``"notification"``. ``max_items``: the capacity of each of its feeds.
    ``follows``: the group (normally the authors' own, ``"user"``) whose
    activities are fanned out to, copied into and removed from this group's
    feeds by ``add_activity``, ``follow`` and ``unfollow``; ``None`` for
    groups only written explicitly (``to=``). ``group_by``: the aggregation
    key of aggregated and notification groups (default: verb, object, day).
    ``bucket``: where its timelines live (default ``"activity.NAME"``).
    Raises ``ConfigError`` for a bad name, kind or capacity.
    """

    name: str
    kind: Kind = "flat"
    max_items: int = 1000
    follows: str | None = None
    group_by: Callable[[Activity], str] = by_verb_object_day
    bucket: str = ""

    def __post_init__(self) -> None:
        check_key(self.name, "feed group name")
        if self.kind not in ("flat", "aggregated", "notification"):
            raise ConfigError(f"feed group kind must be flat, aggregated or notification, "
                              f"got {self.kind!r}")
        if isinstance(self.max_items, bool) or not isinstance(self.max_items, int) \
                or self.max_items < 1:
            raise ConfigError(f"max_items must be an int of at least 1, got {self.max_items!r}")
        if not self.bucket:
            object.__setattr__(self, "bucket", f"activity.{self.name}")
        check_key(self.bucket, "bucket")

    @property
    def state_bucket(self) -> str:
        """Where a notification group keeps its readers' seen/read marks."""
        return f"{self.bucket}.state"


def default_groups(max_items: int = 1000) -> list[FeedGroup]:
    """``user`` (an actor's own activities), ``home`` (what the people one
    follows did, flat), ``notification`` (written with ``to=``).

    >>> [(g.name, g.kind, g.follows) for g in default_groups()]
    [('user', 'flat', None), ('home', 'flat', 'user'), ('notification', 'notification', None)]
    """
    return [
        FeedGroup("user", "flat", max_items),
        FeedGroup("home", "flat", max_items, follows="user"),
        FeedGroup("notification", "notification", max_items),
    ]
