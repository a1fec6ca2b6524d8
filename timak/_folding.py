"""When blind writes fold a key: the one policy ``Timeline`` and the change
feed (``timak.feed``) both follow.

A store that reports the sibling count after a write (memory, SQLite, Riak)
says when: a key is due once it holds ``fold_at`` siblings. A store that
cannot (Cassandra) leaves each writing process to count its own blind writes
per key since its last fold of that key (counting the folded sibling); one
process alone keeps a key below ``fold_at`` siblings, and W writing
processes at most about W * ``fold_at``. The counts are
bounded (least recently written keys are forgotten first), so a fan-out to
millions of keys keeps this small; a forgotten key only folds a little later.
"""

from __future__ import annotations

import collections
import threading

__all__ = ["FoldPolicy"]

#: Keys whose blind writes a process counts at most (least recently written
#: ones are forgotten first).
MAX_COUNTED_KEYS = 65536


class FoldPolicy:
    """Says when a key that just took a blind write is due for a fold."""

    def __init__(self, fold_at: int, *, max_keys: int = MAX_COUNTED_KEYS) -> None:
        self.fold_at = fold_at
        self._max_keys = max_keys
        self._counts: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._lock = threading.Lock()

    def due(self, key: str, reported: int | None) -> bool:
        """Whether ``key`` should fold now, given the sibling count the store
        reported for the write (``None``: it cannot say, so count this
        process's writes; a due key starts again from the one sibling its
        fold leaves)."""
        if reported is not None:
            return reported >= self.fold_at
        with self._lock:
            seen = self._counts.pop(key, 0) + 1
            # A due key folds into one sibling, which this process then
            # counts: so one process alone keeps the key below fold_at.
            self._counts[key] = 1 if seen >= self.fold_at else seen
            if len(self._counts) > self._max_keys:
                self._counts.popitem(last=False)
        return seen >= self.fold_at

    def left(self, key: str, siblings: int) -> None:
        """A fold of ``key`` left ``siblings`` of this process's making (a
        partial fold's delta beside the base): count them toward the next."""
        with self._lock:
            self._counts[key] = siblings
