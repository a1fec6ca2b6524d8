"""Timing: interleaved samples of a subject, its floor and a peer; results.

Method (``measure``): a few warm-up calls of each side, then rounds that run
every side once, rotating which goes first (subject-floor-peer,
floor-peer-subject, peer-subject-floor, ...), until each side has
``min_samples`` samples and ``budget_s`` has passed (or ``max_samples``; a
slow case stops after ``max_s`` once it has ``MIN_SAMPLES``). A sample is one
call timed with ``perf_counter_ns``; the untimed ``setup`` of an ``Op`` runs
before it. Each call's process CPU time (``process_time_ns``) is taken too.

Ratios are *times*: ``vs_floor = subject p50 / floor p50`` (2.0 means timak
takes twice as long as its floor; below 1.0 it is faster). ``cpu_vs_floor``
is the same from CPU medians: on a busy machine it wobbles less, so the two
disagreeing by much marks a disturbed case. For the Redis peer, whose work
is mostly in the server process, ``cpu_vs_peer`` adds the server's CPU per
call (its ``INFO cpu`` over the case, divided by the calls) to the client's;
Cassandra's server CPU is not measured.
"""

from __future__ import annotations

import gc
import itertools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "MIN_SAMPLES",
    "Op",
    "Plan",
    "Result",
    "Samples",
    "Side",
    "TICK_S",
    "Target",
    "measure",
    "p99",
    "percentile",
]

#: The fewest samples per side a case reports, however slow its calls.
MIN_SAMPLES = 5


@dataclass(frozen=True)
class Plan:
    """How many times to run each side of a case (see the module doc)."""

    warmup: int
    min_samples: int
    max_samples: int
    budget_s: float
    max_s: float = float("inf")


@dataclass(frozen=True)
class Op:
    """One side of a case: ``run`` is timed, ``setup`` runs untimed before it."""

    run: Callable[[], object]
    setup: Callable[[], object] | None = None


@dataclass
class Samples:
    """Per-call samples of one side, in nanoseconds: ``wall`` from
    ``perf_counter_ns`` and ``cpu`` from ``process_time_ns``."""

    wall: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)

    def take(self, op: Op) -> None:
        if op.setup is not None:
            op.setup()
        cpu, wall = time.process_time_ns(), time.perf_counter_ns()
        op.run()
        self.wall.append(time.perf_counter_ns() - wall)
        self.cpu.append(time.process_time_ns() - cpu)


#: Seconds between two ``tick`` calls of ``measure``.
TICK_S = 10.0


def measure(sides: Sequence[Op], plan: Plan,
            tick: Callable[[int, float], None] | None = None) -> list[Samples]:
    """Samples of every op in ``sides``, run interleaved (one list per side).
    ``tick(samples, elapsed_s)`` is called every ``TICK_S`` seconds of a
    long case (the progress a slow fan-out shows)."""
    gc.collect()
    for _ in range(plan.warmup):
        for op in sides:
            Samples().take(op)
    taken = [Samples() for _ in sides]
    pairs = list(zip(sides, taken, strict=True))
    started = time.monotonic()
    next_tick = TICK_S
    for round_no in itertools.count():
        first = round_no % len(pairs)
        for op, samples in pairs[first:] + pairs[:first]:
            samples.take(op)
        count, elapsed = len(taken[0].wall), time.monotonic() - started
        if tick is not None and elapsed >= next_tick:
            tick(count, elapsed)
            next_tick = elapsed + TICK_S
        enough = count >= plan.min_samples and elapsed >= plan.budget_s
        too_slow = count >= min(MIN_SAMPLES, plan.min_samples) and elapsed >= plan.max_s
        if enough or too_slow or count >= plan.max_samples:
            return taken
    raise AssertionError("unreachable")  # pragma: no cover


def percentile(samples: Sequence[int], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` 0.99: the 99th)."""
    ordered = sorted(samples)
    return float(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)])


def p99(samples: Sequence[int]) -> float:
    """Nearest-rank 99th percentile: below 100 samples, the slowest one."""
    return percentile(samples, 0.99)


@dataclass(frozen=True)
class Side:
    """One side's figures, in milliseconds per call. ``server_cpu_ms`` is
    the mean CPU a server process spent per call, where it is known (the
    Redis peer: from its ``INFO cpu``)."""

    name: str
    p50_ms: float
    p99_ms: float
    mean_ms: float
    cpu_p50_ms: float
    samples: int
    server_cpu_ms: float | None = None
    p90_ms: float | None = None
    #: Calls per second over all the processes making them (``contended``).
    per_s: float | None = None

    @classmethod
    def of(cls, name: str, samples: Samples, server_cpu_ms: float | None = None,
           per_s: float | None = None) -> Side:
        return cls(
            name=name,
            p50_ms=statistics.median(samples.wall) / 1e6,
            p99_ms=p99(samples.wall) / 1e6,
            mean_ms=statistics.fmean(samples.wall) / 1e6,
            cpu_p50_ms=statistics.median(samples.cpu) / 1e6,
            samples=len(samples.wall),
            server_cpu_ms=server_cpu_ms,
            p90_ms=percentile(samples.wall, 0.90) / 1e6,
            per_s=per_s,
        )


@dataclass(frozen=True)
class Target:
    """``subject p50 / <against> p50`` must be at most ``at_most``.

    ``ratio`` and ``met`` are ``None`` when the other side was not measured
    (no Redis here): a target that was not measured is not met either.
    """

    against: Literal["floor", "peer"]
    at_most: float
    ratio: float | None = None
    met: bool | None = None

    def judged(self, result: Result) -> Target:
        ratio = result.vs_floor if self.against == "floor" else result.vs_peer
        met = None if ratio is None else ratio <= self.at_most
        return Target(self.against, self.at_most, ratio, met)


def _ratio(mine: float, theirs: float) -> float:
    return mine / max(theirs, 1e-9)


@dataclass(frozen=True)
class Result:
    """One case: the subject beside its floor and (when measured) the peer."""

    name: str
    scenario: str
    backend: str
    unit: str
    units: int
    subject: Side
    floor: Side
    peer: Side | None = None
    targets: tuple[Target, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def vs_floor(self) -> float:
        return _ratio(self.subject.p50_ms, self.floor.p50_ms)

    @property
    def vs_floor_p99(self) -> float:
        return _ratio(self.subject.p99_ms, self.floor.p99_ms)

    @property
    def cpu_vs_floor(self) -> float:
        return _ratio(self.subject.cpu_p50_ms, self.floor.cpu_p50_ms)

    @property
    def vs_peer(self) -> float | None:
        return None if self.peer is None else _ratio(self.subject.p50_ms, self.peer.p50_ms)

    @property
    def vs_peer_p99(self) -> float | None:
        return None if self.peer is None else _ratio(self.subject.p99_ms, self.peer.p99_ms)

    @property
    def cpu_vs_peer(self) -> float | None:
        """Subject CPU / (peer client CPU + peer server CPU), per call: a
        cross-check of ``vs_peer`` that a busy machine disturbs less (a
        starved server process costs wall time, not CPU)."""
        if self.peer is None or self.peer.server_cpu_ms is None:
            return None
        return _ratio(self.subject.cpu_p50_ms, self.peer.cpu_p50_ms + self.peer.server_cpu_ms)

    @property
    def missed(self) -> list[Target]:
        """Targets not met, including those that could not be measured."""
        return [t for t in self.targets if not t.met]

    def to_json(self) -> dict[str, Any]:
        def side(s: Side | None) -> dict[str, Any] | None:
            return None if s is None else {
                "name": s.name, "p50_ms": s.p50_ms, "p99_ms": s.p99_ms,
                "mean_ms": s.mean_ms, "cpu_p50_ms": s.cpu_p50_ms, "samples": s.samples,
                "server_cpu_ms": s.server_cpu_ms, "p90_ms": s.p90_ms, "per_s": s.per_s,
            }

        return {
            "name": self.name,
            "scenario": self.scenario,
            "backend": self.backend,
            "unit": self.unit,
            "units": self.units,
            "params": dict(self.params),
            "subject": side(self.subject),
            "floor": side(self.floor),
            "peer": side(self.peer),
            "vs_floor": self.vs_floor,
            "vs_floor_p99": self.vs_floor_p99,
            "cpu_vs_floor": self.cpu_vs_floor,
            "vs_peer": self.vs_peer,
            "vs_peer_p99": self.vs_peer_p99,
            "cpu_vs_peer": self.cpu_vs_peer,
            "targets": [
                {"against": t.against, "at_most": t.at_most, "ratio": t.ratio, "met": t.met}
                for t in self.targets
            ],
        }
