"""Folding after blind writes: full folds, and partial folds (a delta sibling
beside an untouched base) on stores that can narrow a context.

``Timeline.fanout`` and ``add_many`` write blind, then call ``blind`` here;
``FoldPolicy`` (``timak._folding``) says which keys are due. Folding is
housekeeping: the blind writes are stored before it starts, and a failure
while folding is logged, never raised.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from . import _encoding as encoding
from .backends import Fetched, Narrowing
from .errors import BackendError, CorruptValueError
from .value import _SMALL as SMALL_VALUE_ROWS
from .value import TimelineValue, merge

if TYPE_CHECKING:
    from .timelines import Timeline

__all__ = ["DELTA_ROWS", "blind", "fold_fetched", "fold_many"]

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

def fold_many(tl: Timeline, keys: list[str], *, counted: bool = True) -> None:
    """Fold ``keys`` after a chunk of blind writes: one ``fetch_many``,
    then a fold and a store with context per key. The blind writes are
    stored already; folding is housekeeping that the next read, write or
    sweep does again, so a failure here is logged, not raised."""
    try:
        fetched_all = tl.connection.fetch_many(tl.bucket, keys)
    except BackendError as exc:
        _log.warning("folding %d keys failed: %s", len(keys), exc)
        return
    partial = isinstance(tl.connection, Narrowing)
    for key, fetched in zip(keys, fetched_all, strict=True):
        if fold_fetched(tl, key, fetched, partial=partial) and partial and not counted:
            # The delta is one sibling beside the base: count it as one
            # of this process's writes, so the key still holds at most
            # about fold_at siblings per writing process.
            tl._folds.left(key, 1)

def fold_fetched(tl: Timeline, key: str, fetched: Fetched, *, partial: bool) -> bool:
    """Fold the siblings of one fetch; whether a fold was stored (only
    then is it counted in ``stats.folds``).

    With ``partial`` (the store can narrow contexts), every sibling but
    the largest is merged into one *delta* sibling that replaces just
    them, and the largest (the full base) is neither read nor rewritten.
    A *full* fold (all siblings into one) is done instead when the delta
    would hold more than ``DELTA_ROWS`` records, when a sibling is in an
    old format, or when the store cannot narrow. A key with a corrupt
    sibling is left alone: nothing is lost.
    """
    if len(fetched.siblings) < 2:
        return False
    if partial and len(fetched.siblings) > 2:
        done = fold_partial(tl, key, fetched)
        if done is not None:
            return done
    try:
        read = tl._merged(key, fetched, skip_corrupt=False)
    except CorruptValueError:
        return False
    stored = tl._repair(key, read.value, fetched)
    if stored:
        tl.stats.add(folds=1)
    return stored

def fold_partial(tl: Timeline, key: str, fetched: Fetched) -> bool | None:
    """The partial fold of ``_fold_fetched``; ``None`` when a full one is due.

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
            return False
        if value.legacy:
            return None  # an old format's capacity rule needs every sibling
        values.append(value)
    # The previous delta (the largest of them) keeps its encoded rows:
    # the new records are usually all newer, so only they are encoded.
    sizes = sorted(map(len, values))
    delta = merge(values, encoding.MAX_CAPACITY, big=sizes[-2])
    if len(delta) > DELTA_ROWS:
        return None
    if all(v.capacity is None for v in values):
        delta = TimelineValue.from_chunks(list(delta.chunks), None)
    try:
        context = cast(Narrowing, tl.connection).narrow(fetched.context, small)
        tl.connection.store(tl.bucket, key, encoding.encode(delta), context)
    except BackendError as exc:
        _log.warning("partial fold of %r failed: %s", key, exc)
        return False
    tl.stats.add(folds=1, partial_folds=1, siblings_merged=len(small))
    return True
