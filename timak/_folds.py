"""Folding after blind writes: full folds, and partial folds (a delta sibling
beside an untouched base) on stores that can narrow a context.

``Timeline.fanout`` and ``add_many`` write blind, then call ``blind`` here;
``FoldPolicy`` (``timak._folding``) says which keys are due. Folding is
housekeeping: the blind writes are stored before it starts, and a failure
while folding is logged, never raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from . import _encoding as encoding
from .backends import Fetched, Narrowing
from .backends.base import Replacing
from .errors import BackendError, CorruptValueError
from .value import _SMALL as SMALL_VALUE_ROWS
from .value import TimelineValue, merge

if TYPE_CHECKING:
    from .timelines import Timeline

__all__ = ["DELTA_ROWS", "Fold", "blind", "fold_fetched", "fold_many", "plan_fold"]

_log = logging.getLogger("timak")

#: A partial fold's delta sibling holds at most this many records; a fold
#: that would pass it is a full one. It is the size up to which ``merge``
#: counts a value as small: a full fold then merges the delta onto the base
#: keeping the base's chunks (0.4 ms for a 1,000-item timeline), where a
#: 96-record delta took the general path, re-encoding everything (7-8 ms).
DELTA_ROWS = SMALL_VALUE_ROWS


def blind(tl: Timeline, keys: list[str], value: bytes, arrived: int) -> int:
    """Blind-write ``value`` to ``keys``, then fold the keys that are due."""
    results = tl.connection.store_many(tl.bucket, [(k, value) for k in keys])
    tl.stats.add(blind_writes=len(keys))
    if tl.feed is not None:
        tl.feed.written(tl.bucket, keys, arrived)
    fold_at = tl.fold_at
    # Fan-out's per-key hot loop: a reported count needs only a compare.
    to_fold = [
        key
        for key, count in zip(keys, results, strict=True)
        if (count >= fold_at if count is not None else tl._folds.due(key, None))
    ]
    if to_fold:
        fold_many(tl, to_fold, counted=bool(results) and results[0] is not None)
    return len(keys)


@dataclass(frozen=True)
class Fold:
    """A fold decided and encoded, not yet stored: ``data`` replaces the
    siblings ``context`` names under ``key``."""

    key: str
    data: bytes
    context: Any
    merged: int  # siblings it replaces
    partial: bool


def fold_many(tl: Timeline, keys: list[str], *, counted: bool = True) -> None:
    """Fold ``keys`` after a chunk of blind writes: one ``fetch_many``, a
    fold per key, then the stores: one ``replace_many`` call where the store
    is ``Replacing`` (SQLite: one transaction), else one ``store`` each.
    The blind writes are stored already; folding is housekeeping that the
    next read, write or sweep does again, so a failure here is logged, not
    raised."""
    try:
        fetched_all = tl.connection.fetch_many(tl.bucket, keys)
    except BackendError as exc:
        _log.warning("folding %d keys failed: %s", len(keys), exc)
        return
    partial = isinstance(tl.connection, Narrowing)
    folds = [
        fold
        for key, fetched in zip(keys, fetched_all, strict=True)
        if (fold := plan_fold(tl, key, fetched, partial=partial)) is not None
    ]
    if folds and isinstance(tl.connection, Replacing):
        try:
            tl.connection.replace_many(tl.bucket, [(f.key, f.data, f.context) for f in folds])
        except BackendError as exc:
            _log.warning("storing %d folds failed: %s", len(folds), exc)
            return
        stored = folds
    else:
        stored = [fold for fold in folds if store_fold(tl, fold)]
    for fold in stored:
        _stored(tl, fold)
        if fold.partial and not counted:
            # The delta is one sibling beside the base: count it as one
            # of this process's writes, so the key still holds at most
            # about fold_at siblings per writing process.
            tl._folds.left(fold.key, 1)


def fold_fetched(tl: Timeline, key: str, fetched: Fetched, *, partial: bool) -> bool:
    """Fold the siblings of one fetch and store the fold; whether a fold was
    stored (only then is it counted in ``stats.folds``). See ``plan_fold``."""
    fold = plan_fold(tl, key, fetched, partial=partial)
    if fold is None or not store_fold(tl, fold):
        return False
    _stored(tl, fold)
    return True


def store_fold(tl: Timeline, fold: Fold) -> bool:
    """Store one fold (a read repair is a full fold too); a failure is
    logged and gives ``False``: the siblings it would replace stay."""
    try:
        tl.connection.store(tl.bucket, fold.key, fold.data, fold.context)
    except BackendError as exc:
        kind = "partial fold" if fold.partial else "read repair"
        _log.warning("%s of %r failed: %s", kind, fold.key, exc)
        return False
    return True


def _stored(tl: Timeline, fold: Fold) -> None:
    if fold.partial:
        tl.stats.add(folds=1, partial_folds=1, siblings_merged=fold.merged)
    else:
        tl.stats.add(folds=1, repairs=1, siblings_merged=fold.merged)


def plan_fold(tl: Timeline, key: str, fetched: Fetched, *, partial: bool) -> Fold | None:
    """The fold of the siblings of one fetch, or ``None`` when there is
    nothing to fold (one sibling) or a sibling is corrupt (then the key is
    left alone: nothing is lost).

    With ``partial`` (the store can narrow contexts), every sibling but
    the largest is merged into one *delta* sibling that replaces just
    them, and the largest (the full base) is neither read nor rewritten.
    A *full* fold (all siblings into one) is done instead when the delta
    would hold more than ``DELTA_ROWS`` records, when a sibling is in an
    old format, or when the store cannot narrow.
    """
    if len(fetched.siblings) < 2:
        return None
    if partial and len(fetched.siblings) > 2:
        planned = plan_partial(tl, key, fetched)
        if planned is not False:
            return planned
    try:
        read = tl._merged(key, fetched, skip_corrupt=False)
    except CorruptValueError:
        return None
    return Fold(key, encoding.encode(read.value), fetched.context, len(fetched.siblings), False)


def plan_partial(tl: Timeline, key: str, fetched: Fetched) -> Fold | Literal[False] | None:
    """The partial fold of ``plan_fold``: ``False`` when a full one is due,
    ``None`` when a sibling is corrupt.

    The delta is the join of the siblings it replaces, trimmed only at a
    capacity one of them states (the key's one capacity, since capacities
    only ever shrink in a join); when none states one it states none and
    is not trimmed (it holds at most ``DELTA_ROWS`` records). Any subset
    of siblings joined at the key's capacity joins with the rest to the
    same value, so reads see exactly what a full fold would give.
    """
    siblings = fetched.siblings
    sizes = [len(s) for s in siblings]
    base = sizes.index(max(sizes))
    small = [i for i in range(len(siblings)) if i != base]
    values = []
    for i in small:
        try:
            value = tl._decode(siblings[i])
        except CorruptValueError:
            return None
        if value.legacy:
            return False  # an old format's capacity rule needs every sibling
        values.append(value)
    # The previous delta (the largest of them) keeps its encoded rows:
    # the new records are usually all newer, so only they are encoded.
    sizes = sorted(map(len, values))
    delta = merge(values, encoding.MAX_CAPACITY, big=sizes[-2])
    if len(delta) > DELTA_ROWS:
        return False
    if all(v.capacity is None for v in values):
        delta = TimelineValue.from_chunks(list(delta.chunks), None)
    context = cast(Narrowing, tl.connection).narrow(fetched.context, small)
    return Fold(key, encoding.encode(delta), context, len(small), True)
