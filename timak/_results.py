"""What ``Timeline`` calls return (pages, changes, stats) and the clock and
feed interfaces it takes. Pure data: no I/O."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .value import ItemId, Score

__all__ = [
    "Change",
    "Changes",
    "CompactStats",
    "Counters",
    "KeyFeed",
    "Page",
    "TimelineStats",
    "now_us",
]


def now_us() -> int:
    """The local clock in microseconds since the epoch: records' arrival time."""
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Page:
    """One page of a timeline: ``items`` and the ``cursor`` for the next page
    (``None`` when there is no next page). Cursors are plain strings."""

    items: list[Any]
    cursor: str | None


@dataclass(frozen=True)
class Change:
    """One add or delete that arrived on a timeline."""

    key: str
    id: ItemId
    score: Score
    deleted: bool
    data: Any
    arrived: int


@dataclass(frozen=True)
class Changes:
    """What ``Timeline.changes`` found, and the cursor to poll from next."""

    changes: list[Change]
    cursor: str


@dataclass
class CompactStats:
    """What a ``compact`` sweep did."""

    keys: int = 0
    folded: int = 0
    siblings_merged: int = 0
    corrupt: int = 0


@dataclass
class Counters:
    """Integer counters that threads may bump together; subclasses name them."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add each of ``counts`` to the counter of that name."""
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


@dataclass
class TimelineStats(Counters):
    """Counters of one ``Timeline`` object since it was made."""

    reads: int = 0
    writes: int = 0
    blind_writes: int = 0
    siblings_merged: int = 0
    repairs: int = 0
    #: Folds stored (partial or full), not folds tried.
    folds: int = 0
    #: Of ``folds``, the partial ones (small siblings into one delta).
    partial_folds: int = 0
    #: Folds and repairs that failed (store errors, logged) or left a
    #: corrupt sibling out.
    fold_errors: int = 0
    #: Corrupt siblings met by reads (each time one is met).
    corrupt: int = 0


class KeyFeed(Protocol):
    """What a global change feed offers ``Timeline`` (``timak.feed.Feed``)."""

    def written(self, bucket: str, keys: Sequence[str], arrived: int) -> None:
        """Note that ``keys`` of ``bucket`` were written at ``arrived``."""
        ...

    def poll(
        self, cursor: str | None = None, *, bucket: str = "timelines"
    ) -> tuple[list[str], str]:
        """The keys of ``bucket`` written since ``cursor``, and the next cursor."""
        ...

    def floor(self, cursor: str | None = None) -> int:
        """The arrival time (µs) after which ``poll(cursor)`` reports writes."""
        ...
