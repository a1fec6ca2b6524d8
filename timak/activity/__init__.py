"""Activity feeds on top of timelines: follow, unfollow, aggregated and
notification feeds, counts.

A layer above ``Timeline`` (it uses ``Timeline`` and the backend contract,
nothing else). Every feed is one plain timak timeline, so every feature here
converges under concurrent writers with no coordination, on every store.
The guide is ``docs/activity.md``.

>>> from timak.activity import Activity, Feeds
>>> graph = {"alice": ["bob"]}                      # bob follows alice
>>> feeds = Feeds("memory://", followers=lambda actor: graph.get(actor, []))
>>> post = Activity("alice", "post", "post:1", time="2024-05-01T12:00:00Z")
>>> feeds.add_activity(post)                          # alice's feed + bob's home
2
>>> [a.object for a in feeds.read("home", "bob").activities]
['post:1']

Modules (all private; this package's ``__all__`` is the public face):
``_activity`` (the activity shape and its stored form), ``_groups`` (feed
groups), ``_pages`` (flat and aggregated pages, read lazily; cursors),
``_payloads`` (large payloads stored once and referenced), ``_notify``
(seen/read state, a lattice), ``_feeds`` (the ``Feeds`` manager: posting,
removing, following, and the race rule), ``_reading`` (its reads, marks
and counts).
"""

from __future__ import annotations

from ._activity import Activity, Ref, by_verb_object_day
from ._feeds import Feeds, Followers
from ._groups import FeedGroup, Kind, default_groups
from ._notify import NotificationState
from ._pages import ActivityPage, AggregatedPage, Group

__all__ = [
    "Activity",
    "ActivityPage",
    "AggregatedPage",
    "FeedGroup",
    "Feeds",
    "Followers",
    "Group",
    "Kind",
    "NotificationState",
    "Ref",
    "by_verb_object_day",
    "default_groups",
]
