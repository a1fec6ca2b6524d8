"""``Activity``: who did what to what, when; and how it is stored in a timeline.

An activity is stored as one timeline item: its ``id`` is the item id, its
``time`` the item's score (µs since the epoch when given a datetime), and the
rest (actor, verb, object, target, extra) the item's ``obj_data``, a small
dict of JSON-like values. Nothing is pickled.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from .._results import now_us
from .._scores import ScoreLike, to_datetime, to_score
from ..errors import InvalidActivityError, InvalidInputError
from ..value import ItemId, Record, Score, check_data, check_id
from ._payloads import is_reference

__all__ = [
    "Activity",
    "Ref",
    "activity_fields",
    "activity_from_record",
    "by_verb_object_day",
    "checked_activity",
    "verb_object_day",
]

#: An actor, object or target: an id, as a str or an int.
Ref = str | int

# The frozen dataclass's own way to set a field (``object`` is a parameter
# name in ``Activity.__init__``).
_set_field = object.__setattr__


@dataclass(frozen=True, init=False)
class Activity:
    """One activity: ``actor`` did ``verb`` to ``object`` (in ``target``) at ``time``.

    ``actor`` and ``verb`` are required; ``object`` and ``target`` are
    optional ids (str or int). ``time`` is a datetime, ISO string or number
    (default: now); it becomes the activity's score, so feeds are ordered by
    it and a remove must name the same time. ``extra`` is a small dict of
    JSON-like data stored with the activity in every feed it reaches.

    ``id`` is stable for the same activity: left out, it is a hash of actor,
    verb, object, target and time, so building the same activity twice (a
    retried request) gives the same id and the write is idempotent.

    Raises ``InvalidActivityError`` for a missing actor or verb or fields
    of the wrong type, before anything is written.

    >>> a = Activity("alice", "like", "post:1", time="2024-05-01T12:00:00Z")
    >>> a.id == Activity("alice", "like", "post:1", time="2024-05-01T12:00:00Z").id
    True
    >>> a.time
    1714564800000000
    >>> Activity("", "like")
    Traceback (most recent call last):
    ...
    timak.errors.InvalidActivityError: an activity needs an actor (a non-empty str or an int), ...
    """

    actor: Ref
    verb: str
    object: Ref | None
    target: Ref | None
    time: Score  # the score: int µs since the epoch, or a float
    extra: Mapping[str, Any] = field(hash=False)  # a dict: unhashable
    id: str

    # Written out (init=False) so the constructor takes what users pass
    # (datetimes, ISO strings, numbers, None for now) while the attribute is
    # typed as what it holds afterwards, the score.
    def __init__(
        self,
        actor: Ref,
        verb: str,
        object: Ref | None = None,  # shadows the builtin: the activity-streams name
        target: Ref | None = None,
        time: ScoreLike | None = None,
        extra: Mapping[str, Any] | None = None,
        id: str = "",
    ) -> None:
        for name, value in (("actor", actor), ("verb", verb), ("object", object),
                            ("target", target), ("time", time),
                            ("extra", {} if extra is None else extra), ("id", id)):
            _set_field(self, name, value)
        self._check()

    def _check(self) -> None:
        _check_ref(self.actor, "actor", required=True)
        if not isinstance(self.verb, str) or not self.verb:
            raise InvalidActivityError(
                f"an activity needs a verb (a non-empty str), got {self.verb!r:.80}"
            )
        _check_ref(self.object, "object", required=False)
        _check_ref(self.target, "target", required=False)
        try:
            score = now_us() if self.time is None else to_score(self.time)
        except InvalidInputError as exc:
            raise InvalidActivityError(f"activity time: {exc}") from None
        object.__setattr__(self, "time", score)
        if not isinstance(self.extra, Mapping) or not all(isinstance(k, str) for k in self.extra):
            raise InvalidActivityError(
                f"extra must be a dict with str keys, got {self.extra!r:.80}"
            )
        object.__setattr__(self, "extra", dict(self.extra))
        try:
            check_data(self.extra)
        except InvalidInputError as exc:
            raise InvalidActivityError(f"activity extra: {exc}") from None
        if not self.id:
            object.__setattr__(self, "id", self._hash_id())
        elif not isinstance(self.id, str):
            raise InvalidActivityError(f"an activity id must be a str, got {self.id!r:.80}")
        else:
            try:
                check_id(self.id)
            except InvalidInputError as exc:
                raise InvalidActivityError(f"activity id: {exc}") from None

    def _hash_id(self) -> str:
        packed = msgpack.packb([self.actor, self.verb, self.object, self.target, self.time])
        return hashlib.blake2b(packed, digest_size=12).hexdigest()

    def data(self) -> dict[str, Any]:
        """The item's ``obj_data``: short keys, empty fields left out."""
        data: dict[str, Any] = {"a": self.actor, "v": self.verb}
        if self.object is not None:
            data["o"] = self.object
        if self.target is not None:
            data["t"] = self.target
        if self.extra:
            data["x"] = self.extra
        return data

    def item(self) -> tuple[ItemId, Score, dict[str, Any]]:
        """``(id, score, obj_data)``: the timeline item this activity is."""
        return self.id, self.time, self.data()


def activity_fields(record: Record) -> tuple[Ref, str, Ref | None] | None:
    """``(actor, verb, object)`` of the activity a stored record holds, or
    ``None`` for an item that is not one: what grouping needs, without
    building the ``Activity``. Accepts exactly what ``activity_from_record``
    accepts."""
    data = record.data
    if type(data) is not dict or type(record.id) is not str:
        return None
    get = data.get
    actor, verb, obj, target = get("a"), get("v"), get("o"), get("t")
    # What was stored went through Activity's checks on the way in and
    # decoded as plain msgpack: type checks suffice here. Running every
    # check again was most of the cost of reading a feed; the checks are
    # inline because this runs once per record of an aggregated feed.
    if (
        ((type(actor) is str and actor) or type(actor) is int)
        and type(verb) is str and verb
        and (obj is None or (type(obj) is str and obj) or type(obj) is int)
        and (target is None or (type(target) is str and target) or type(target) is int)
        and type(get("x", _EMPTY)) is dict
        and ("p" not in data or is_reference(data["p"]))
    ):
        return actor, verb, obj
    return None


_EMPTY: dict[str, Any] = {}


def activity_from_record(
    record: Record, extra: dict[str, Any] | None = None
) -> Activity | None:
    """The activity a stored record holds, or ``None`` for an item that is
    not one (written to the same bucket by something else): readers skip it.
    ``extra``: the payload hydrated for a record that holds a reference
    (``timak.activity._payloads``); otherwise its ``extra`` is empty."""
    if activity_fields(record) is None:
        return None
    return checked_activity(record, extra)


def checked_activity(record: Record, extra: dict[str, Any] | None = None) -> Activity:
    """``activity_from_record`` for a record ``activity_fields`` accepted."""
    data = record.data
    actor, verb, obj, target = data.get("a"), data.get("v"), data.get("o"), data.get("t")
    if extra is None:
        extra = data.get("x", {})
    made = object.__new__(Activity)
    # A frozen dataclass refuses setattr, not its __dict__: one update.
    made.__dict__.update(actor=actor, verb=verb, object=obj, target=target,
                         time=record.score, extra=extra, id=record.id)
    return made


def _is_ref(value: object) -> bool:
    return (type(value) is str and value != "") or type(value) is int


def by_verb_object_day(activity: Activity) -> str:
    """The default aggregation key: verb, object and UTC day of the activity.

    >>> by_verb_object_day(Activity("bob", "like", "post:1", time="2024-05-01T23:59:00Z"))
    'like|post:1|2024-05-01'
    """
    return verb_object_day(activity.verb, activity.object, activity.time)


def verb_object_day(verb: str, obj: Ref | None, time: Score) -> str:
    """``by_verb_object_day``'s key from the fields it reads."""
    return f"{verb}|{'' if obj is None else obj}|{_day(int(time) // _DAY_US)}"


_DAY_US = 86_400_000_000


@functools.lru_cache(maxsize=4096)
def _day(days: int) -> str:
    # Cached: building a datetime per activity was a third of grouping a feed.
    try:
        return to_datetime(days * _DAY_US).date().isoformat()
    except InvalidInputError:  # a number far outside datetime range
        return str(days)


def _check_ref(value: object, what: str, *, required: bool) -> None:
    if value is None and not required:
        return
    ok = (isinstance(value, str) and value != "") or (
        isinstance(value, int) and not isinstance(value, bool)
    )
    if not ok:
        raise InvalidActivityError(
            f"an activity needs {'an' if what[0] in 'aeiou' else 'a'} {what} "
            f"(a non-empty str or an int), got {value!r:.80}"
        )
    try:
        check_id(value)
    except InvalidInputError as exc:
        raise InvalidActivityError(f"activity {what}: {exc}") from None
