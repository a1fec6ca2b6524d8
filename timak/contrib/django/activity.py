"""Activity feeds (``timak.activity``) kept in step with Django models.

Three pieces, each writing after the transaction commits
(``transaction.on_commit``; a rolled-back transaction writes nothing):

* ``register_activities(Post, feeds=..., activity=...)``: saving a row adds
  its activity (the author's feed, then every follower's); deleting the
  row removes it everywhere it went. The activity is built and checked at
  signal time, inside the transaction (``Feeds.check_activity``: its
  fields, its groups, and its size against every feed it would reach), so
  a row that cannot become one fails its save. ``manage.py
  timak_backfill`` covers these registrations too.
* ``connect_follows(Person.follows, feeds=...)`` (a ``ManyToManyField``) or
  ``connect_follow_model(Follow, follower=..., target=...)`` (a model with one
  row per follow): adding a follow copies the target's newest activities
  into the follower's feeds, removing one removes them. Both directions of
  the m2m (``bob.follows.add(alice)`` and ``alice.followers.add(bob)``) and
  ``clear()`` are followed. The relation must not be symmetrical.
* ``activity_rows`` and ``timeline_rows`` read a page of model instances,
  skipping ids whose rows no longer exist and reading on until the page
  is full or the feed ends, so pages are never short by a deleted row.

``feeds`` is a ``Feeds`` or a callable returning one (called at each use;
cache it yourself, e.g. with ``functools.cache``).

A write that fails after the commit is never raised: the row is committed,
and a request that fails after its data was saved gets retried and
duplicated. It is logged, counted in ``timak.contrib.django.failed_writes()``
and left for ``manage.py timak_backfill`` (activities) or a later follow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models.signals import (  # type: ignore[import-untyped]
    m2m_changed,
    post_delete,
    post_save,
)

from ...activity import Activity, Feeds, Ref
from ...errors import ConfigError, InvalidActivityError
from ...timelines import Timeline
from ...value import ItemId
from . import after_commit

__all__ = [
    "ActivityRegistration",
    "Rows",
    "activity_registrations",
    "activity_rows",
    "connect_follow_model",
    "connect_follows",
    "register_activities",
    "timeline_rows",
]

M = TypeVar("M")
FeedsLike = Feeds | Callable[[], Feeds]
Disconnect = Callable[[], None]


def _feeds(feeds: FeedsLike) -> Feeds:
    made = feeds if isinstance(feeds, Feeds) else feeds()
    if not isinstance(made, Feeds):
        raise ConfigError(f"feeds= callable returned {type(made).__name__}, not Feeds")
    return made


# -- activities ---------------------------------------------------------------


@dataclass(eq=False)
class ActivityRegistration:
    """One ``register_activities`` declaration, as ``timak_backfill`` runs it."""

    model: type[Any]
    feeds: FeedsLike
    activity: Callable[[Any], Activity | None]
    fanout_to: list[str] | None
    to: Callable[[Any], Iterable[tuple[str, Ref]]] | None

    def build(self, row: Any) -> tuple[Activity, list[tuple[str, Ref]]] | None:
        """``row``'s activity and explicit feeds, or ``None`` for no activity."""
        made = self.activity(row)
        if made is None:
            return None
        if not isinstance(made, Activity):
            raise InvalidActivityError(f"activity() returned {type(made).__name__}")
        return made, list(self.to(row)) if self.to is not None else []

    def write(self, row: Any) -> int:
        """Add ``row``'s activity now (idempotent); return how many feeds."""
        built = self.build(row)
        if built is None:
            return 0
        made, extra = built
        return _feeds(self.feeds).add_activity(made, fanout_to=self.fanout_to, to=extra)


_activity_registry: list[ActivityRegistration] = []
_activity_lock = threading.Lock()


def activity_registrations(model: type[Any] | None = None) -> list[ActivityRegistration]:
    """Every ``register_activities`` declaration still connected (of ``model``)."""
    with _activity_lock:
        return [r for r in _activity_registry if model is None or r.model is model]


def register_activities(
    model: type[M],
    *,
    feeds: FeedsLike,
    activity: Callable[[M], Activity | None],
    fanout_to: Iterable[str] | None = None,
    to: Callable[[M], Iterable[tuple[str, Ref]]] | None = None,
    updates: bool = False,
    robust: bool = False,
    background: bool = False,
) -> Disconnect:
    """Saving a ``model`` row adds ``activity(row)`` (``None``: no activity)
    with ``Feeds.add_activity``; deleting it removes it with
    ``remove_activity``, on the same feeds. ``to(row)`` names extra feeds,
    e.g. ``[("notification", post.author_id)]`` for a like. ``updates``:
    also write when an existing row is saved again (the activity id is
    stable, so that rewrites the same item). ``robust``: kept for
    compatibility (a write that fails after the commit is always logged and
    counted, never raised). Returns a function that disconnects the signals
    (and drops the declaration from ``timak_backfill``).

    The activity is built and checked in ``post_save``, inside the
    transaction: an activity ``add_activity`` would refuse (bad fields,
    unknown groups, too large for a feed it would reach) raises there, and
    the save rolls back (inside ``atomic()``: see ``timak.contrib.django``).

    ``background=True`` hands the writes, after the commit, to one worker
    thread per process instead of running them in the request: a post to
    200 followers then costs the request about what a one-row INSERT does,
    and the feeds follow a few milliseconds later, in commit order. What a
    killed process had queued is left for ``timak_backfill``, as a failed
    write is; ``wait_for_background_writes()`` waits for the queue.
    """
    del robust  # failures after the commit are always logged, never raised
    uid = f"timak.contrib.django.activity:{id(model)}:{id(activity)}"
    registration = ActivityRegistration(
        model, feeds, activity, None if fanout_to is None else list(fanout_to), to)

    def write(row: M, using: str | None, *, remove: bool) -> None:
        built = registration.build(row)
        if built is None:
            return
        made, extra = built
        target = _feeds(feeds)  # a bad feeds= fails the save, not the commit
        groups = registration.fanout_to
        if not remove:
            target.check_activity(made, fanout_to=groups, to=extra)
        call = target.remove_activity if remove else target.add_activity
        after_commit(lambda: call(made, fanout_to=groups, to=extra), using,
                     f"{'remove' if remove else 'add'} activity {made.id}",
                     background=background)

    def saved(instance: M, created: bool = False, raw: bool = False,
              using: str | None = None, **_: Any) -> None:
        if not raw and (created or updates):
            write(instance, using, remove=False)

    def deleted(instance: M, using: str | None = None, **_: Any) -> None:
        write(instance, using, remove=True)

    disconnect_signals = _on_save_and_delete(model, uid, saved, deleted)
    with _activity_lock:
        _activity_registry.append(registration)

    def disconnect() -> None:
        disconnect_signals()
        with _activity_lock:
            if registration in _activity_registry:
                _activity_registry.remove(registration)

    return disconnect


# -- follows --------------------------------------------------------------------


def connect_follows(
    relation: Any,
    *,
    feeds: FeedsLike,
    copy_limit: int = 300,
    keep_history: bool = False,
    robust: bool = False,
) -> Disconnect:
    """Follow the ``ManyToManyField`` ``relation`` (e.g. ``Person.follows``,
    where ``bob.follows.add(alice)`` means bob follows alice): each pair
    added is ``Feeds.follow(follower, target, copy_limit=...)``, each pair
    removed (also by ``clear()``) is ``Feeds.unfollow(..., keep_history=...)``,
    after the commit. ``robust`` is kept for compatibility: a failed write
    after the commit is always logged and counted, never raised. Returns a
    function that disconnects the signal.
    """
    del robust
    field = getattr(relation, "field", None)
    through = getattr(relation, "through", None)
    if field is None or through is None or not field.many_to_many:
        raise ConfigError("connect_follows needs a ManyToManyField, e.g. Person.follows")
    if getattr(field.remote_field, "symmetrical", False):
        raise ConfigError(f"{field} is symmetrical: a follow relation must not be")
    source, target = field.m2m_field_name(), field.m2m_reverse_field_name()
    uid = f"timak.contrib.django.activity:follows:{id(through)}"
    cleared: dict[int, list[Any]] = {}

    def changed(instance: Any, action: str, reverse: bool, pk_set: set[Any] | None,
                using: str | None = None, **_: Any) -> None:
        if action == "pre_clear":
            # Who the clear is about to remove: read it before it goes.
            mine, other = (target, source) if reverse else (source, target)
            cleared[id(instance)] = list(
                through.objects.using(using).filter(**{mine: instance.pk})
                .values_list(f"{other}_id", flat=True)
            )
            return
        if action == "post_clear":
            pks = cleared.pop(id(instance), [])
            adding = False
        elif action in ("post_add", "post_remove"):
            pks, adding = sorted(pk_set or ()), action == "post_add"
        else:
            return
        pairs = [(pk, instance.pk) if reverse else (instance.pk, pk) for pk in pks]
        _follow_after_commit(feeds, pairs, adding, copy_limit, keep_history, using)

    m2m_changed.connect(changed, sender=through, weak=False, dispatch_uid=uid)
    return lambda: m2m_changed.disconnect(sender=through, dispatch_uid=uid)


def connect_follow_model(
    model: type[M],
    *,
    feeds: FeedsLike,
    follower: str | Callable[[M], Ref],
    target: str | Callable[[M], Ref],
    copy_limit: int = 300,
    keep_history: bool = False,
    robust: bool = False,
) -> Disconnect:
    """Follow a model with one row per follow: creating a row follows,
    deleting it unfollows (after the commit). ``follower`` and ``target``
    are attribute names (e.g. ``"follower_id"``) or callables of the row.
    ``robust``: as in ``connect_follows``. Returns a function that
    disconnects the signals."""
    del robust
    uid = f"timak.contrib.django.activity:follow-model:{id(model)}"

    def pair(row: M) -> tuple[Ref, Ref]:
        get = [
            (lambda r, name=f: getattr(r, name)) if isinstance(f, str) else f
            for f in (follower, target)
        ]
        return get[0](row), get[1](row)

    def saved(instance: M, created: bool = False, raw: bool = False,
              using: str | None = None, **_: Any) -> None:
        if created and not raw:
            _follow_after_commit(feeds, [pair(instance)], True, copy_limit, keep_history,
                                 using)

    def deleted(instance: M, using: str | None = None, **_: Any) -> None:
        _follow_after_commit(feeds, [pair(instance)], False, copy_limit, keep_history,
                             using)

    return _on_save_and_delete(model, uid, saved, deleted)


def _follow_after_commit(
    feeds: FeedsLike, pairs: list[tuple[Ref, Ref]], adding: bool, copy_limit: int,
    keep_history: bool, using: str | None,
) -> None:
    if not pairs:
        return

    def run() -> None:
        made = _feeds(feeds)
        for follower, target in pairs:
            if adding:
                made.follow(follower, target, copy_limit=copy_limit)
            else:
                made.unfollow(follower, target, keep_history=keep_history)

    verb = "follow" if adding else "unfollow"
    after_commit(run, using, f"{verb} {len(pairs)} pair(s)")


# -- reading rows ---------------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """A page of model instances, in feed order, and the next page's
    ``cursor`` (``None`` at the end). Ids whose rows are gone are skipped."""

    rows: list[Any]
    cursor: str | None


def _fill(
    read: Callable[[int, str | None], tuple[list[ItemId], str | None]],
    queryset: Any,
    limit: int,
    cursor: str | None,
) -> Rows:
    """Read pages of ids until ``limit`` of them resolve to rows or the feed
    ends. Each read asks only for the ids still missing, so the returned
    cursor sits right after the last id used and nothing is skipped over."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"limit must be a positive int, got {limit!r}")
    rows: list[Any] = []
    while len(rows) < limit:
        ids, cursor = read(limit - len(rows), cursor)
        found = queryset.in_bulk(ids) if ids else {}
        rows.extend(found[i] for i in ids if i in found)
        if cursor is None:
            break
    return Rows(rows, cursor)


def timeline_rows(
    timeline: Timeline, key: str, model: Any, limit: int = 20, cursor: str | None = None
) -> Rows:
    """A page of ``model`` rows (a model or a queryset) for the item ids of
    the plain timeline ``key`` (as ``register`` writes them: ids are primary
    keys), skipping rows deleted since, never short."""
    queryset = getattr(model, "_default_manager", model)

    def read(n: int, at: str | None) -> tuple[list[ItemId], str | None]:
        page = timeline.page(key, limit=n, cursor=at, raw=True)
        return [r.id for r in page.items if not r.deleted], page.cursor

    return _fill(read, queryset, limit, cursor)


def activity_rows(
    feeds: FeedsLike,
    feed: str,
    owner: Ref,
    model: Any,
    limit: int = 20,
    cursor: str | None = None,
    *,
    object_id: Callable[[Activity], Any] = lambda a: a.object,
) -> Rows:
    """A page of ``model`` rows for the activities of ``owner``'s ``feed``
    (``object_id(activity)``, default its object, is the primary key),
    skipping rows deleted since, never short."""
    queryset = getattr(model, "_default_manager", model)
    made = _feeds(feeds)

    def read(n: int, at: str | None) -> tuple[list[ItemId], str | None]:
        page = made.read(feed, owner, limit=n, cursor=at)
        return [object_id(a) for a in page.activities], page.cursor

    return _fill(read, queryset, limit, cursor)


def _on_save_and_delete(
    model: Any, uid: str, saved: Callable[..., None], deleted: Callable[..., None]
) -> Callable[[], None]:
    """Connect ``saved``/``deleted`` to ``model``'s post_save/post_delete
    (once per ``uid``); return the function that disconnects both."""
    post_save.connect(saved, sender=model, weak=False, dispatch_uid=uid + ":save")
    post_delete.connect(deleted, sender=model, weak=False, dispatch_uid=uid + ":delete")

    def disconnect() -> None:
        post_save.disconnect(sender=model, dispatch_uid=uid + ":save")
        post_delete.disconnect(sender=model, dispatch_uid=uid + ":delete")

    return disconnect
