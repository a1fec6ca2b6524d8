"""What ``Timeline`` calls return (pages, changes, stats) and the clock and
feed interfaces it takes. Pure data: no I/O."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

from .value import ItemId, Record, Score, TimelineValue

__all__ = [
    "Change",
    "Changes",
    "CompactStats",
    "Counters",
    "KeyFeed",
    "Page",
    "TimelineStats",
    "Visible",
    "now_us",
    "shown",
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


class Visible(Sequence[Any]):
    """The timeline an ``add`` or ``delete`` returns: the visible items (ids,
    or ``obj_data`` where an item has some; every ``Record`` with ``raw``),
    in the ``Timeline``'s order, as timak 0.1's list held them.

    A read-only sequence built on first use, and only as far as it is used:
    ``result[:10]`` decodes ten items, and a result that is never looked at
    costs nothing (building all 1,000 items of a full timeline was ~85% of
    an ``add``). It compares equal to a list of the same items; use
    ``list(result)`` where a real list is needed (``json.dumps``). Nothing
    in it can fail: the value was checked in full before it was stored.
    """

    __slots__ = ("_desc", "_done", "_more", "_raw", "_value")

    def __init__(self, value: TimelineValue, raw: bool, desc: bool) -> None:
        self._value = value
        self._raw = raw
        self._desc = desc
        self._done: list[Any] = []
        self._more: Iterator[Record] | None = None

    def _visible(self, hint: int | None) -> Iterator[Record]:
        records = self._value.iter_newest(hint)
        return records if self._raw else (r for r in records if not r.deleted)

    def _fill(self, count: int | None) -> list[Any]:
        """At least the first ``count`` items (``None``: all of them)."""
        done = self._done
        if not self._desc:  # oldest first: the whole value is needed anyway
            if self._more is None:
                self._more = iter(())
                done += shown(reversed(list(self._visible(None))), self._raw)
            return done
        if self._more is None:
            self._more = self._visible(count)
        if count is None:
            done += shown(self._more, self._raw)
        elif len(done) < count:
            done += shown(itertools.islice(self._more, count - len(done)), self._raw)
        return done

    def __len__(self) -> int:
        return len(self._fill(None))

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            stop, step = index.stop, index.step
            known = (index.start is None or index.start >= 0) and stop is not None and stop >= 0
            return self._fill(stop if known and (step is None or step > 0) else None)[index]
        if not isinstance(index, int):
            raise TypeError(f"indices must be integers or slices, not {type(index).__name__}")
        return self._fill(index + 1 if index >= 0 else None)[index]

    def __iter__(self) -> Iterator[Any]:
        position = 0
        while True:
            done = self._fill(position + 64)
            if position >= len(done):
                return
            yield from done[position:]
            position = len(done)

    def __bool__(self) -> bool:
        return bool(self._fill(1))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Visible):
            return self._fill(None) == other._fill(None)
        if isinstance(other, list):
            return self._fill(None) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Sequence[Any]) -> list[Any]:
        return [*self, *other]

    def __radd__(self, other: Sequence[Any]) -> list[Any]:
        return [*other, *self]

    def __repr__(self) -> str:
        return repr(self._fill(None))


def shown(records: Iterable[Record], raw: bool) -> list[Any]:
    """Records as a read returns them: each ``Record`` with ``raw``, else
    its id, or its data where it has some."""
    if raw:
        return list(records)
    return [r.id if r.data is None else r.data for r in records]
