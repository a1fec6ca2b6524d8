"""Keep timelines in step with Django model rows.

Declare which model feeds which timelines, once, from an ``AppConfig.ready``::

    from timak.contrib.django import register

    register(
        Post,
        keys=lambda post: [f"user:{post.author_id}:posts"],
        score="created_at",
        data=lambda post: {"text": post.text},
    )

Then saving a ``Post`` adds it to those timelines and deleting it deletes it
there. The adapter only decides *when* to write; ``Timeline`` does the
writing:

* the item (keys, id, score, data) is computed and checked when the signal
  fires, inside the transaction, so a declaration that cannot be stored
  fails the save and rolls it back: a bad key, id, score or data, and an
  item too large for its timeline (``ValueTooLargeError``). Django sends
  ``post_save`` after the row's INSERT, so only a save inside
  ``transaction.atomic()`` (or ``ATOMIC_REQUESTS``) is rolled back; in
  autocommit the row is already committed and the error still raises;
* the write runs after the transaction commits (``transaction.on_commit``):
  a rolled-back transaction, or savepoint, writes nothing; outside a
  transaction (autocommit) it runs at once;
* ``blind=True`` writes with ``Timeline.fanout`` (one blind write per key, no
  read): the choice for many keys, such as every follower's home timeline;
  otherwise each key gets ``Timeline.add``/``delete`` (read, merge, write);
* a write that fails after the commit never raises (the row is committed,
  and the request must not fail after its data was saved, or a retry
  duplicates it): it is logged to the ``timak.contrib.django`` logger,
  counted in ``failed_writes()``, and left for ``manage.py
  timak_backfill``;
* saves with ``raw=True`` (``loaddata``) are skipped: backfill after loading.

Without ``timeline=``, the timeline comes from the optional setting::

    TIMAK = {"URL": "sqlite:///timak.db", "BUCKET": "timelines",
             "MAX_ITEMS": 1000, "FEED": False, "OPTIONS": {}}

(``URL`` defaults to ``$TIMAK_URL`` or ``sqlite:///timak.db``; ``FEED: True``
attaches a ``timak.feed.Feed``; ``OPTIONS`` are more ``Timeline`` arguments.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.conf import settings  # type: ignore[import-untyped]
from django.core.signals import setting_changed  # type: ignore[import-untyped]
from django.db import close_old_connections, transaction  # type: ignore[import-untyped]
from django.db.models.signals import post_delete, post_save  # type: ignore[import-untyped]

from ..._options import flag_option, int_option
from ..._scores import ScoreLike, to_score
from ...backends import connect, default_url
from ...errors import BackendError, ConfigError
from ...feed import Feed
from ...timelines import Timeline
from ...value import ItemId, Score, check_data, check_id, check_key
from . import _background

__all__ = [
    "Item",
    "Registration",
    "failed_writes",
    "register",
    "registrations",
    "settings_timeline",
    "unregister",
    "wait_for_background_writes",
]

logger = logging.getLogger("timak.contrib.django")

M = TypeVar("M")

_failed = 0
_failed_lock = threading.Lock()


def failed_writes() -> int:
    """How many timak writes failed after their transaction committed, in
    this process (this module's and ``timak.contrib.django.activity``'s).
    Each was logged and skipped; ``manage.py timak_backfill`` catches up."""
    return _failed


def wait_for_background_writes(timeout: float | None = None) -> bool:
    """Wait until the writes handed to the background worker so far
    (``register_activities(..., background=True)``) are done; whether they
    were within ``timeout`` seconds. For tests and orderly shutdowns."""
    return _background.wait(timeout)


def after_commit(run: Callable[[], Any], using: str | None, what: str, *,
                 background: bool = False) -> None:
    """Run ``run`` once the transaction commits (at once in autocommit);
    with ``background``, hand it to the process's background worker then
    (``_background``). The row is committed by then, so a failure is never
    raised: it is logged, counted in ``failed_writes()``, and left for the
    backfill."""

    def guarded() -> None:
        global _failed
        try:
            run()
        except Exception:
            with _failed_lock:
                _failed += 1
            logger.exception("timak: could not %s (the row is committed; "
                             "manage.py timak_backfill catches up)", what)

    def in_background() -> None:
        # The worker's own database connection: closed when Django would
        # close a request's (broken, or older than CONN_MAX_AGE).
        close_old_connections()
        try:
            guarded()
        finally:
            close_old_connections()

    if background:
        transaction.on_commit(lambda: _background.submit(in_background), using=using)
    else:
        transaction.on_commit(guarded, using=using)


@dataclass(frozen=True)
class Item:
    """What one row puts on its timelines, computed and checked at signal time."""

    keys: list[str]
    id: ItemId
    score: Score
    data: Any = None


@dataclass(eq=False)
class Registration(Generic[M]):
    """One declaration: rows of ``model`` feed the timelines ``keys(row)`` names.
    Made by ``register``; ``disconnect()`` undoes it."""

    model: type[M]
    keys: Callable[[M], Iterable[str] | str]
    score: str | Callable[[M], ScoreLike]
    id: Callable[[M], ItemId] | None = None
    data: Callable[[M], Any] | None = None
    timeline: Timeline | Callable[[], Timeline] | None = None
    blind: bool = False
    robust: bool = False
    updates: bool = True
    chunk: int = 1000
    _resolved: Timeline | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def uid(self) -> str:
        return f"timak.contrib.django:{id(self)}"

    def get_timeline(self) -> Timeline:
        """The Timeline this registration writes to (made on first use)."""
        if isinstance(self.timeline, Timeline):
            return self.timeline
        if self.timeline is None:
            return settings_timeline()
        with self._lock:
            if self._resolved is None:
                made = self.timeline()
                if not isinstance(made, Timeline):
                    raise ConfigError(f"timeline= callable returned {type(made).__name__}")
                self._resolved = made
            return self._resolved

    def item(self, row: M) -> Item:
        """The item ``row`` puts on its timelines; raises ``InvalidInputError``
        subclasses for keys, ids, scores or data timak cannot store."""
        keys = self.keys(row)
        key_list = [keys] if isinstance(keys, str) else list(keys)
        item_id = self.id(row) if self.id is not None else _default_id(row)
        raw_score = getattr(row, self.score) if isinstance(self.score, str) else self.score(row)
        data = self.data(row) if self.data is not None else None
        if data is not None:
            check_data(data)
        return Item(
            [check_key(k) for k in key_list], check_id(item_id), to_score(raw_score), data
        )

    def write(self, item: Item, *, deleted: bool = False, blind: bool | None = None) -> int:
        """Add (or delete) ``item`` on its timelines now; return how many keys.
        ``blind`` overrides the registration's choice of blind writes."""
        if not item.keys:
            return 0
        tl = self.get_timeline()
        if self.blind if blind is None else blind:
            return tl.fanout(
                item.keys, item.id, item.score, item.data, deleted=deleted, chunk=self.chunk
            )
        for key in item.keys:
            if deleted:
                tl.delete(key, item.id, item.score)
            else:
                tl.add(key, item.id, item.score, item.data)
        return len(item.keys)

    def disconnect(self) -> None:
        """Stop following the model's saves and deletes."""
        post_save.disconnect(sender=self.model, dispatch_uid=self.uid + ":save")
        post_delete.disconnect(sender=self.model, dispatch_uid=self.uid + ":delete")
        with _registry_lock:
            if self in _registry:
                _registry.remove(self)

    # -- signal handlers --------------------------------------------------

    def check(self, item: Item) -> None:
        """Raise ``ValueTooLargeError`` if ``item`` is too large for the
        timeline (its ``item_limit``); write nothing. A delete always fits."""
        if not item.keys:
            return
        try:
            timeline = self.get_timeline()
        except BackendError:
            # The store is unreachable (a Timeline opening its URL): the
            # save must not depend on it; the write after the commit fails,
            # is logged and counted, and the backfill catches up.
            return
        # No keys: the Timeline checks and sizes the item, writes nothing.
        timeline.fanout([], item.id, item.score, item.data)

    def _saved(self, instance: M, created: bool = False, raw: bool = False,
               using: str | None = None, **_: Any) -> None:
        if raw or not (created or self.updates):
            return
        item = self.item(instance)
        self.check(item)  # in the transaction: a refusal rolls the save back
        self._after_commit(item, deleted=False, using=using)

    def _deleted(self, instance: M, using: str | None = None, **_: Any) -> None:
        self._after_commit(self.item(instance), deleted=True, using=using)

    def _after_commit(self, item: Item, *, deleted: bool, using: str | None) -> None:
        after_commit(
            lambda: self.write(item, deleted=deleted), using,
            f"{'delete' if deleted else 'add'} item {item.id!r} on {len(item.keys)} "
            f"timeline(s) of {self.model.__name__}",
        )


_registry: list[Registration[Any]] = []
_registry_lock = threading.Lock()


def register(
    model: type[M],
    *,
    keys: Callable[[M], Iterable[str] | str],
    score: str | Callable[[M], ScoreLike],
    id: Callable[[M], ItemId] | None = None,
    data: Callable[[M], Any] | None = None,
    timeline: Timeline | Callable[[], Timeline] | None = None,
    blind: bool = False,
    robust: bool = False,
    updates: bool = True,
    chunk: int = 1000,
) -> Registration[M]:
    """Make rows of ``model`` feed timelines; return the ``Registration``.

    ``keys(row)``: the timeline keys the row belongs on (a list, or one str).
    ``score``: a field name or ``callable(row)`` giving a number, datetime or
    ISO string. ``id(row)``: the item id (default: the primary key, as a str
    unless it is an int). ``data(row)``: the item's ``obj_data`` (default
    none; keep it small, since every timeline stores a copy). ``timeline``: a
    ``Timeline``, a callable returning one (called once, on first use), or
    ``None`` for the ``TIMAK`` setting. ``blind``: write with ``fanout``.
    ``robust``: kept for compatibility (a write that fails after the commit
    is always logged and counted, never raised). ``updates``: also write
    when an existing row is saved again (off when edits never change keys,
    score or data: it saves a write per key per save).

    A model may be registered several times (its author's timeline, read and
    written; its followers' home timelines, blind).
    """
    if not isinstance(model, type):
        raise ConfigError(f"register() takes a model class, got {model!r:.80}")
    if isinstance(score, str) and not hasattr(model, score):
        raise ConfigError(f"{model.__name__} has no field {score!r} to score by")
    if not isinstance(score, str) and not callable(score):
        raise ConfigError("score must be a field name or a callable taking a row")
    if not callable(keys):
        raise ConfigError("keys must be a callable taking a row and returning timeline keys")
    for name, hook in (("id", id), ("data", data)):
        if hook is not None and not callable(hook):
            raise ConfigError(f"{name} must be a callable taking a row, or None")
    if timeline is not None and not isinstance(timeline, Timeline) and not callable(timeline):
        raise ConfigError("timeline must be a Timeline, a callable returning one, or None")
    for name, flag in (("blind", blind), ("robust", robust), ("updates", updates)):
        flag_option(name, flag)
    int_option("chunk", chunk, 1)
    registration = Registration(
        model=model, keys=keys, score=score, id=id, data=data, timeline=timeline,
        blind=blind, robust=robust, updates=updates, chunk=chunk,
    )
    post_save.connect(
        registration._saved, sender=model, weak=False, dispatch_uid=registration.uid + ":save"
    )
    post_delete.connect(
        registration._deleted, sender=model, weak=False,
        dispatch_uid=registration.uid + ":delete",
    )
    with _registry_lock:
        _registry.append(registration)
    return registration


def registrations(model: type[Any] | None = None) -> list[Registration[Any]]:
    """Every registration (of ``model``), in the order they were made."""
    with _registry_lock:
        return [r for r in _registry if model is None or r.model is model]


def unregister(model: type[Any] | None = None) -> int:
    """Disconnect every registration (of ``model``); return how many."""
    found = registrations(model)
    for registration in found:
        registration.disconnect()
    return len(found)


# -- the TIMAK setting ------------------------------------------------------

_settings_timeline: Timeline | None = None
_settings_lock = threading.Lock()


def settings_timeline() -> Timeline:
    """The Timeline the ``TIMAK`` setting describes (made once per process,
    and again when the setting changes in tests)."""
    global _settings_timeline
    with _settings_lock:
        if _settings_timeline is None:
            config: dict[str, Any] = dict(getattr(settings, "TIMAK", None) or {})
            unknown = set(config) - {"URL", "BUCKET", "MAX_ITEMS", "FEED", "OPTIONS"}
            if unknown:
                raise ConfigError(f"unknown TIMAK setting(s): {', '.join(sorted(unknown))}")
            options = config.get("OPTIONS", {})
            if not isinstance(options, dict):
                raise ConfigError("TIMAK['OPTIONS'] must be a dict of Timeline options")
            backend = connect(config.get("URL") or default_url())
            _settings_timeline = Timeline(
                backend,
                config.get("BUCKET", "timelines"),
                max_items=config.get("MAX_ITEMS", 1000),
                feed=Feed(backend) if config.get("FEED") else None,
                **options,
            )
        return _settings_timeline


def _reset_settings_timeline(*, setting: str, **_: Any) -> None:
    global _settings_timeline
    if setting == "TIMAK":
        with _settings_lock:
            if _settings_timeline is not None:
                _settings_timeline.connection.close()
            _settings_timeline = None


setting_changed.connect(_reset_settings_timeline, dispatch_uid="timak.contrib.django:settings")


def _default_id(row: Any) -> ItemId:
    pk = row.pk
    return pk if isinstance(pk, int) and not isinstance(pk, bool) else str(pk)
