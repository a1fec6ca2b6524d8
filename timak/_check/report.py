"""What a checker run is told and what it reports: configuration, anomalies, reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..value import ItemId, Record, Score


@dataclass(frozen=True)
class CheckConfig:
    """One checker run. ``kills`` SIGKILLs that many workers at random points
    of the run; ``kill_every`` SIGKILLs one about every that many seconds;
    both restart the killed worker, which carries on with the ops left."""

    url: str
    workers: int = 4
    ops: int = 300
    keys: int = 5
    max_items: int = 10
    fold_at: int = 4
    seed: int | None = None
    kills: int = 0
    kill_every: float | None = None
    #: Mutated decodes tried per stored sibling after the run.
    fuzz: int = 20
    #: Bound on the workers' whole run, in seconds; past it they are killed.
    timeout: float = 600.0
    bucket: str | None = None
    #: Where history files go; a temporary directory (removed when the run
    #: is clean) if not given.
    history_dir: str | None = None
    #: More store URLs (e.g. other replicas or consistency levels) that must
    #: read the same values as ``url`` after repair.
    read_urls: tuple[str, ...] = ()
    #: Check every value an operation read against the writes acknowledged
    #: before it began. Right for stores linearizable per key (memory,
    #: SQLite, Cassandra at QUORUM); turn off for eventual consistency (ONE).
    check_reads: bool = True


@dataclass(frozen=True)
class Written:
    """One record an operation wrote or may have written. ``score`` is
    ``None`` for a delete whose score the store looked up and we never saw."""

    key: str
    id: ItemId
    score: Score | None
    deleted: bool
    data: Any = None


@dataclass(frozen=True)
class Anomaly:
    """Something the checker found wrong."""

    kind: str  # lost, resurrected, nonconverged, corrupt, untyped, fuzz, worker
    key: str
    id: ItemId | None
    detail: str

    def __str__(self) -> str:
        where = self.key if self.id is None else f"{self.key} id={self.id!r}"
        return f"{self.kind}: {where}: {self.detail}"




@dataclass
class FinalState:
    """Every key as read after the run, and what the reading found."""

    values: dict[str, list[Record]] = field(default_factory=dict)
    anomalies: list[Anomaly] = field(default_factory=list)
    siblings_left: int = 0
    fuzz_cases: int = 0


@dataclass
class CheckReport:
    """The outcome of one or more runs. ``ok`` when nothing was found."""

    checked: int = 0
    anomalies: list[Anomaly] = field(default_factory=list)
    crashes_survived: int = 0
    fuzz_cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Acknowledged operations per kind.
    kinds: Counter[str] = field(default_factory=Counter)
    siblings_left: int = 0
    runs: int = 0
    history_dir: str | None = None

    def count(self, kind: str) -> int:
        return sum(1 for a in self.anomalies if a.kind == kind)

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def summary(self) -> str:
        return (
            f"checked={self.checked} lost={self.count('lost')} "
            f"resurrected={self.count('resurrected')} "
            f"nonconverged={self.count('nonconverged')} "
            f"crashes_survived={self.crashes_survived} fuzz_cases={self.fuzz_cases}"
        )

    def details(self) -> str:
        other = ("corrupt", "untyped", "fuzz", "worker")
        counts = " ".join(f"{kind}={self.count(kind)}" for kind in other)
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        kinds = " ".join(f"{k}={v}" for k, v in sorted(self.kinds.items()))
        return (f"runs={self.runs} {counts} siblings_left={self.siblings_left} "
                f"outcomes: {outcomes} acked: {kinds}")

    def absorb(self, other: CheckReport) -> None:
        """Add ``other``'s figures to this report (for soak runs)."""
        self.checked += other.checked
        self.anomalies.extend(other.anomalies)
        self.crashes_survived += other.crashes_survived
        self.fuzz_cases += other.fuzz_cases
        self.outcomes.update(other.outcomes)
        self.kinds.update(other.kinds)
        self.siblings_left += other.siblings_left
        self.runs += other.runs



def describe(exc: BaseException) -> str:
    """An exception as one short line for history files and anomalies."""
    return f"{type(exc).__name__}: {str(exc)[:300]}"
