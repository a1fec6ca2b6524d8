"""``Feeds``: posting, removing, following and unfollowing over feed groups.

Every feed is one timeline (bucket = its group's, key = its owner). The
follow graph is the application's: ``followers(actor)`` returns the ids of
those who follow ``actor`` now.

The race rule
=============
``add_activity`` writes the author's own feed *before* it asks
``followers``; ``remove_activity`` does the same with its tombstones.
``follow``/``unfollow`` must be called *after* the application changed its
graph, and they read the author's feed after that. Then a post (or remove)
racing a follow or unfollow of the same pair ends as if the two had run one
after the other, in one order or the other:

* a post racing an unfollow (``keep_history=False``) never stays on the
  former follower's feed: either the post's fan-out asked for followers
  after the graph changed, and did not include the former follower; or it
  asked before, and then the post is on the author's feed before the
  unfollow reads it, and either its fan-out was done (marked, see below)
  before the unfollow read the marks, so its write to the follower's feed
  came earlier still and the unfollow's read of that feed saw it, or it
  was not, and the unfollow tombstones it from the author's feed (a
  tombstone wins over an add at the same score, whatever order they land
  in);
* a post racing a follow is never lost: either the fan-out ran after the
  graph changed and includes the new follower, or it ran before, and then
  the author-feed write came before the follow's read, which copies it
  (if it is among the ``copy_limit`` newest);
* a remove racing a follow never resurrects: symmetrically, the follow's
  copy reads the author's feed after the remove's tombstone landed there,
  or the remove's fan-out includes the new follower.

What an unfollow tombstones
===========================
Tombstones hold slots like items (the merge rule), so a tombstone for an
activity the follower's feed never held pushes an older item, perhaps
another author's, off that feed. An unfollow therefore tombstones only:

1. the target's activities the follower's feed holds (read after the graph
   changed), and
2. the target's activities whose fan-out may still be in flight: those on
   the target's own feed *not* marked done (and that could still enter the
   follower's feed: on a full feed, only those above its oldest record).

``add_activity`` marks an activity done when its whole fan-out was
acknowledged: one blind write of the id, at the activity's time, to the
author's key in the *fan-out marks* bucket (the author group's bucket +
``".fanned"``, capacity that group's ``max_items``). The unfollow reads
the marks first, then the follower's feed, then the target's feed: a mark
it sees was written after the fan-out's write to the follower's feed, so
the follower's-feed read sees that write (case 1). Every failure errs on
the safe side: an ``add_activity`` that failed part-way leaves no mark (its
activity is tombstoned by later unfollows, as before, until a retry
completes), a mark trimmed off the marks timeline reads as "not done", and
activities posted before the marks existed have none. The one case it does
not cover: two ``add_activity`` calls for the same activity running at
once, where the second marks it done while the first still fans out to a
follower who unfollows meanwhile. Retry a failed post after the failed
call has returned.

This needs reads that see every write acknowledged before them (on
Cassandra, read and write consistency levels that overlap, e.g. QUORUM).
``tests/test_activity_races.py`` checks every interleaving of the steps of
such pairs against the two sequential orders.

What follows from the merge rule (a tombstone wins at an equal score): an
activity that an unfollow removed from a feed stays removed from that feed
if the follower follows again; the re-follow copies the target's other
activities (those the feed never held) and everything posted later. Use
``keep_history=True`` where that matters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .._options import int_option
from .._records import order_key
from ..backends import Backend, UsesBackend
from ..errors import (
    ConfigError,
    InvalidActivityError,
    InvalidFollowError,
    UnknownFeedGroupError,
)
from ..timelines import Timeline
from ..value import ItemId, Record, Score, check_key
from ._activity import Activity, Ref
from ._groups import FeedGroup, default_groups
from ._pages import activity_records
from ._payloads import (
    INLINE_BYTES,
    PAYLOAD_BUCKET,
    Payload,
    payload_of,
    remove_payload,
    store_payload,
)
from ._reading import FeedReads, _key

__all__ = ["Feeds"]

Followers = Callable[[Ref], Iterable[Ref]]


class Feeds(FeedReads, UsesBackend):
    """Feed groups over one store, and the calls that keep them in step.

    ``connection``: a ``Backend`` or store URL (closed by ``close()`` only if
    opened here). ``followers(actor)``: ids of the actors who follow
    ``actor``, from the application's graph. ``groups``: the ``FeedGroup``
    list (default ``default_groups()``: ``user``, ``home``,
    ``notification``). ``author_group``: the group of actors' own feeds.
    ``chunk``: keys per blind-write batch. ``timeline_options``: more
    ``Timeline`` arguments (``fold_at``, ``max_value_bytes``...).
    ``inline_bytes``: an activity whose ``extra`` encodes to more than this
    is stored once in ``payload_bucket`` and referenced from the feeds
    (``None``: always inline; see ``timak.activity._payloads``). Raises
    ``ConfigError`` for duplicate or dangling group names.
    """

    def __init__(
        self,
        connection: Backend | str | None = None,
        *,
        followers: Followers,
        groups: Iterable[FeedGroup] | None = None,
        author_group: str = "user",
        chunk: int = 1000,
        timeline_options: dict[str, Any] | None = None,
        inline_bytes: int | None = INLINE_BYTES,
        payload_bucket: str = PAYLOAD_BUCKET,
    ) -> None:
        group_list = default_groups() if groups is None else list(groups)
        self.groups = {g.name: g for g in group_list}
        if len(self.groups) != len(group_list):
            raise ConfigError("feed group names must be unique")
        for g in group_list:
            if g.follows is not None and g.follows not in self.groups:
                raise ConfigError(f"feed group {g.name!r} follows unknown group {g.follows!r}")
        if author_group not in self.groups:
            raise ConfigError(f"author_group {author_group!r} is not one of the groups")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ConfigError(f"chunk must be an int of at least 1, got {chunk!r}")
        if inline_bytes is not None:
            int_option("inline_bytes", inline_bytes, 0)
        self.inline_bytes = inline_bytes
        self.payload_bucket = check_key(payload_bucket, "payload_bucket")
        self._use_backend(connection)
        self.author_group = author_group
        self.followers = followers
        self.chunk = chunk
        options = dict(timeline_options or {})
        if "order" in options:
            # Reads rely on Timeline's newest-first order.
            raise ConfigError("feeds are always read newest first; drop 'order'")
        self._timelines = {
            g.name: Timeline(self.connection, g.bucket, max_items=g.max_items, **options)
            for g in group_list
        }
        author = self.groups[author_group]
        #: Fan-out marks: the ids of the author group's activities whose
        #: fan-out completed, per author (see "What an unfollow tombstones").
        self._fanned = Timeline(self.connection, f"{author.bucket}.fanned",
                                max_items=author.max_items, **options)
        self._states = {
            g.name: Timeline(self.connection, g.state_bucket, max_items=g.max_items + 2, **options)
            for g in group_list
            if g.kind == "notification"
        }

    # -- lookups ------------------------------------------------------------

    def _following_groups(self, names: Iterable[str] | None) -> list[FeedGroup]:
        if names is None:
            return [g for g in self.groups.values() if g.follows == self.author_group]
        if isinstance(names, str):
            names = [names]
        return [self.group(n) for n in names]

    # -- posting and removing -------------------------------------------------

    def add_activity(
        self,
        activity: Activity,
        *,
        fanout_to: Iterable[str] | None = None,
        to: Iterable[tuple[str, Ref]] = (),
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Put ``activity`` on its actor's own feed, then on the feeds of
        ``fanout_to`` groups (default: those that follow the author group) of
        every current follower, then on the explicit ``to`` feeds
        (``(group, owner)`` pairs, e.g. ``("notification", "bob")``).

        Every write is blind (no read), in chunks of ``chunk`` keys;
        ``progress(n)`` gets the number of feeds written so far after each.
        Returns how many feeds were written. Group names and the activity
        are checked before anything is written (``check_activity``: an
        activity too large for any of the groups it reaches is refused). If
        the store fails part-way, the writes made so far stay, and calling
        again with the same activity is safe (every write is idempotent).
        """
        return self._spread(activity, fanout_to, to, progress, deleted=False)

    def check_activity(
        self,
        activity: Activity,
        *,
        fanout_to: Iterable[str] | None = None,
        to: Iterable[tuple[str, Ref]] = (),
    ) -> None:
        """Raise what ``add_activity(activity, fanout_to=..., to=...)`` would
        raise for its input, and write nothing: ``InvalidActivityError``,
        ``UnknownFeedGroupError``, ``InvalidKeyError``, or
        ``ValueTooLargeError`` for an activity too large for one of the
        feeds it would reach (each group has its own capacity, so its own
        item limit). ``add_activity`` runs it first; call it yourself to
        refuse an activity before anything else is committed (the Django
        adapter does, in ``post_save``)."""
        self._targets(activity, fanout_to, to)

    def _targets(
        self,
        activity: Activity,
        fanout_to: Iterable[str] | None,
        to: Iterable[tuple[str, Ref]],
        *,
        deleted: bool = False,
    ) -> tuple[list[FeedGroup], dict[str, list[str]]]:
        """The following groups and the explicit feeds (group -> owners) of
        a spread, all checked; an add is sized against every group it reaches."""
        if not isinstance(activity, Activity):
            raise InvalidActivityError(f"expected an Activity, got {type(activity).__name__}")
        targets = self._following_groups(fanout_to)
        explicit: dict[str, list[str]] = {}
        for name, owner in to:
            explicit.setdefault(self.group(name).name, []).append(check_key(_key(owner)))
        if not deleted:  # a tombstone always fits
            item_id, score, data, _ = self._stored(activity)
            for name in {self.author_group, *(g.name for g in targets), *explicit}:
                # No keys: the Timeline checks and sizes the item, writes nothing.
                self._timelines[name].fanout([], item_id, score, data)
        return targets, explicit

    def remove_activity(
        self,
        activity: Activity,
        *,
        fanout_to: Iterable[str] | None = None,
        to: Iterable[tuple[str, Ref]] = (),
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Remove ``activity`` everywhere ``add_activity`` put it: a tombstone
        at the activity's time on its actor's feed first, then on the feeds
        of every current follower and of ``to``: blind writes, no read.
        A tombstone wins over the add whatever order they arrive in, so a
        fan-out still in flight cannot bring it back. Followers who
        unfollowed since lost it with ``unfollow`` (unless ``keep_history``).
        """
        return self._spread(activity, fanout_to, to, progress, deleted=True)

    def _spread(
        self,
        activity: Activity,
        fanout_to: Iterable[str] | None,
        to: Iterable[tuple[str, Ref]],
        progress: Callable[[int], None] | None,
        *,
        deleted: bool,
    ) -> int:
        targets, explicit = self._targets(activity, fanout_to, to, deleted=deleted)
        item_id, score, data, payload = self._stored(activity)
        # The payload before any feed: a reference never points at nothing,
        # and a removal makes the payload unreadable at once (_payloads).
        if payload is not None and deleted:
            remove_payload(self.connection, self.payload_bucket, activity.id)
        elif payload is not None:
            store_payload(self.connection, self.payload_bucket, activity.id, payload)
        written = 0

        def spread(name: str, keys: list[str]) -> None:
            nonlocal written
            base = written
            step = (lambda n: progress(base + n)) if progress else None
            written += self._timelines[name].fanout(
                keys, item_id, score, data, deleted=deleted, chunk=self.chunk, progress=step
            )

        # The author's feed first, acknowledged before the followers are
        # asked: the race rule in the module docstring depends on it.
        spread(self.author_group, [_key(activity.actor)])
        if targets:
            keys = [_key(f) for f in self.followers(activity.actor)]
            for group in targets:
                spread(group.name, keys)
        for name, keys in explicit.items():
            spread(name, keys)
        if not deleted:
            # Every fan-out above was acknowledged: mark it done, so that
            # unfollows need not tombstone it (module docstring).
            self._fanned.fanout([_key(activity.actor)], item_id, score)
        return written

    def _stored(
        self, activity: Activity
    ) -> tuple[ItemId, Score, dict[str, Any], Payload | None]:
        """The item an activity is stored as: its ``extra`` inline, or a
        reference to its payload (returned too, to be stored apart)."""
        item_id, score, data = activity.item()
        payload = payload_of(activity.extra, self.inline_bytes)
        if payload is not None:
            del data["x"]
            data["p"] = payload.reference
        return item_id, score, data, payload

    # -- following ------------------------------------------------------------

    def follow(
        self,
        follower: Ref,
        target: Ref,
        *,
        copy_limit: int = 300,
        feeds: Iterable[str] | None = None,
    ) -> int:
        """Copy ``target``'s newest ``copy_limit`` activities into ``follower``'s
        feeds of the groups that follow the author group (or ``feeds``).

        Call it after the application recorded the follow. One read of the
        target's feed and one blind write per follower feed (all the copies
        in one value). Returns how many activities were copied. Raises
        ``InvalidFollowError`` for a follow of oneself or a ``copy_limit``
        that is not an int of at least 0, before anything is written.
        """
        follower_key, groups = self._check_follow(follower, target, feeds)
        if isinstance(copy_limit, bool) or not isinstance(copy_limit, int) or copy_limit < 0:
            raise InvalidFollowError(f"copy_limit must be an int of at least 0, got {copy_limit!r}")
        copied = 0
        for group in groups:
            assert group.follows is not None
            # Lazily, newest first: only the copies are decoded.
            source = self._timelines[group.follows].scan(_key(target), hint=copy_limit)
            # Copied as stored: a payload reference stays a reference.
            newest = activity_records(source, copy_limit) if copy_limit else []
            copied += self._timelines[group.name].add_many(
                follower_key, [(r.id, r.score, r.data) for r in newest]
            )
        return copied

    def unfollow(
        self,
        follower: Ref,
        target: Ref,
        *,
        keep_history: bool = False,
        feeds: Iterable[str] | None = None,
    ) -> int:
        """Remove ``target``'s activities from ``follower``'s feeds of the
        groups that follow the author group (or ``feeds``), unless
        ``keep_history``. Call it after the application removed the follow.

        Writes a tombstone, at the activity's time, for each of the target's
        activities the follower's feed holds, and for each on the target's
        own feed whose fan-out is not marked done (it may still be in
        flight; on a full feed only those that could still make it into the
        feed). Nothing else: tombstones hold slots like items, so one for an
        activity the feed never held would push an older item, perhaps
        another author's, off the feed (module docstring, "What an unfollow
        tombstones"). Reads the target's fan-out marks, then per group the
        follower's feed and the target's feed; one blind write per group.
        Returns how many tombstones were written.
        """
        follower_key, groups = self._check_follow(follower, target, feeds)
        if keep_history:
            return 0
        # The marks first: one seen here was written after its fan-out's
        # write to the follower's feed, which the reads below then see.
        done = {r.id for r in self._fanned.scan(_key(target)) if not r.deleted}
        gone = 0
        for group in groups:
            timeline = self._timelines[group.name]
            own = list(timeline.scan(follower_key))
            assert group.follows is not None
            source = [r for r in self._timelines[group.follows].scan(_key(target))
                      if r.id not in done]
            tombstones = _unfollow_targets(own, source, _key(target), group.max_items)
            gone += timeline.add_many(follower_key, tombstones, deleted=True)
        return gone

    def _check_follow(
        self, follower: Ref, target: Ref, feeds: Iterable[str] | None
    ) -> tuple[str, list[FeedGroup]]:
        follower_key, target_key = _key(follower), _key(target)
        if follower_key == target_key:
            raise InvalidFollowError(f"{follower!r:.80} cannot follow themself")
        groups = self._following_groups(feeds)
        for group in groups:
            if group.follows is None:
                raise UnknownFeedGroupError(f"feed group {group.name!r} follows no group")
        return follower_key, groups


def _unfollow_targets(
    own: list[Record], source: list[Record], target: str, capacity: int
) -> list[tuple[Any, Any, None]]:
    """The items an unfollow tombstones: the target's visible activities on
    the follower's feed, and those of ``source`` (the target's feed, less
    the activities marked done) that could still enter the follower's (all
    of them, unless that feed is full: then only those above its oldest
    record, since a full feed never takes older)."""
    ids = {}
    gone = {r.id: r.score for r in own if r.deleted}
    for record in own:
        data = record.data
        if not record.deleted and isinstance(data, dict) and _key(data.get("a")) == target:
            ids[record.id] = record.score
    floor = min((order_key(r) for r in own), default=None) if len(own) >= capacity else None
    for record in source:
        if record.deleted or gone.get(record.id, record.score - 1) >= record.score:
            continue  # deleted already, or a tombstone at least as high is there
        if floor is None or order_key(record) > floor:
            ids.setdefault(record.id, record.score)
    return [(i, score, None) for i, score in ids.items()]
