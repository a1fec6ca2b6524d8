"""Running the cases: modes, stores, the Redis peer, byte figures, JSON."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ..backends import Backend, connect
from ..backends.memory import MemoryBackend
from ..backends.sqlite import SQLiteBackend
from ..errors import ConfigError
from . import data
from .cases import Case, Processes, Sizes, cases
from .contended import Run
from .harness import Plan, Result, Side, measure
from .names import BACKENDS, SCENARIOS
from .redis_peer import RedisPeer

__all__ = [
    "BACKENDS",
    "FULL",
    "QUICK",
    "Bytes",
    "Mode",
    "environment",
    "iter_results",
    "measure_bytes",
    "open_backends",
    "results_json",
]

#: ``stored / Redis MEMORY USAGE`` must be at most this (issue 11).
BYTES_TARGET = 0.35


@dataclass(frozen=True)
class Mode:
    """A named set of sizes and a plan: ``FULL`` or ``QUICK``."""

    name: str
    sizes: Sizes
    plan: Plan


FULL = Mode(
    "full",
    Sizes(fanout_keys=1_000, items=1_000, limit=50, pending=(0, 8)),
    Plan(warmup=2, min_samples=25, max_samples=300, budget_s=4.0, max_s=60.0),
)
QUICK = Mode(
    "quick",
    Sizes(fanout_keys=40, items=200, limit=50, pending=(0, 8), writers=(2,),
          contended_s=0.2),
    Plan(warmup=1, min_samples=5, max_samples=40, budget_s=0.05),
)


def iter_results(
    backends: Mapping[str, Backend],
    mode: Mode = FULL,
    *,
    peer: RedisPeer | None = None,
    only: Collection[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Iterator[Result]:
    """Run every scenario (or those in ``only``) on every backend, yielding
    each result as its case finishes, so a caller keeps what was measured
    when a store fails half-way. ``peer`` adds the Redis side to the cases
    that have one. An unknown scenario raises ``ConfigError``."""
    unknown = sorted(set(only or ()) - set(SCENARIOS))
    if unknown:
        raise ConfigError(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    todo = [c for c in cases(backends, mode.sizes) if not only or c.scenario in only]
    for number, case in enumerate(todo, 1):
        tag = f"[{number}/{len(todo)}] {case.name} ({case.backend})"
        if progress:
            progress(f"{tag} ...")
        def tick(samples: int, elapsed: float, tag: str = tag) -> None:
            if progress:
                progress(f"{tag}: {samples} samples a side, {elapsed:.0f} s")

        result = run_case(case, mode.plan, peer, tick)
        if progress:
            progress(f"{tag}: " + "; ".join(
                _summary(label, side)
                for label, side in (("timak", result.subject), ("floor", result.floor),
                                    ("redis", result.peer)) if side is not None))
        yield result


def _summary(label: str, side: Side) -> str:
    rate = "" if side.per_s is None else f" {side.per_s:,.0f}/s"
    return f"{label}{rate} p50 {side.p50_ms:.3f} ms p99 {side.p99_ms:.3f} ms"


def run_case(case: Case, plan: Plan, peer: RedisPeer | None,
             tick: Callable[[int, float], None] | None = None) -> Result:
    """Measure one case: its sides interleaved (``measure``, which calls
    ``tick`` on long cases), or, for a case that runs processes, each side
    in turn."""
    if case.processes is not None:
        return _run_processes(case, case.processes(peer))
    prepared = case.prepare(peer)
    server_cpu_s = 0.0
    try:
        sides = [prepared.subject, prepared.floor]
        if prepared.peer is not None and peer is not None:
            sides.append(prepared.peer)
            server_cpu_s = -peer.server_cpu_s()
        taken = measure(sides, plan, tick)
        if len(sides) == 3 and peer is not None:
            server_cpu_s += peer.server_cpu_s()
    finally:
        prepared.cleanup()
    peer_side = None
    if len(taken) == 3 and peer is not None:
        # Mean server CPU per call, over the warm-up calls and the samples.
        calls = plan.warmup + len(taken[2].wall)
        peer_side = Side.of(peer.name, taken[2], server_cpu_s * 1e3 / calls)
    result = Result(
        name=case.name, scenario=case.scenario, backend=case.backend, unit=case.unit,
        units=case.units, subject=Side.of("timak", taken[0]),
        floor=Side.of(case.floor_name, taken[1]), peer=peer_side, params=dict(case.params),
    )
    judged = tuple(t.judged(result) for t in case.targets)
    return dataclasses.replace(result, targets=judged)


def _run_processes(case: Case, done: Processes) -> Result:
    """The result of a case that ran its own writer processes."""
    def side(name: str, run: Run, server_cpu_ms: float | None = None) -> Side:
        return Side.of(name, run.samples, server_cpu_ms, per_s=run.per_s)

    peer_side = None
    if done.peer is not None:
        peer_side = side(f"redis {done.peer.writers} writer(s)", done.peer, done.server_cpu_ms)
    lost = {"lost": done.subject.lost + done.floor.lost}
    if done.peer is not None:
        lost["peer_lost"] = done.peer.lost
    result = Result(
        name=case.name, scenario=case.scenario, backend=case.backend, unit=case.unit,
        units=case.units, subject=side("timak", done.subject),
        floor=side(case.floor_name, done.floor), peer=peer_side,
        params={**case.params, **lost},
    )
    return dataclasses.replace(result, targets=tuple(t.judged(result) for t in case.targets))


@contextlib.contextmanager
def open_backends(names: Sequence[str], url: str | None = None) -> Iterator[dict[str, Backend]]:
    """Open the named backends for a run; close (and delete) them afterwards.

    ``memory`` is a private in-process store. ``sqlite`` is a fresh file in a
    temporary directory unless ``url`` is a ``sqlite://`` URL. ``cassandra``
    needs ``url`` (``cassandra://host/keyspace``).
    """
    scheme = url.split("://", 1)[0] if url else None
    opened: dict[str, Backend] = {}
    with tempfile.TemporaryDirectory(prefix="timak-bench-") as tmp:
        try:
            for name in names:
                if name == "memory":
                    opened[name] = MemoryBackend()
                elif name == "sqlite" and scheme != "sqlite":
                    opened[name] = SQLiteBackend(os.path.join(tmp, "bench.db"))
                elif name in BACKENDS and scheme == name and url is not None:
                    opened[name] = connect(url)
                elif name in BACKENDS:
                    raise ConfigError(f"--backend {name} needs --url {name}://...")
                else:
                    raise ConfigError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
            yield opened
        finally:
            for backend in opened.values():
                backend.close()


@dataclass(frozen=True)
class Bytes:
    """What one full timeline takes: timak's stored value, the store's own
    cost where it can be measured, the items' JSON, and the Redis peer's."""

    items: int
    payload_json: int
    stored_value: int
    sqlite_pages: float | None
    redis_memory_usage: int | None
    redis_dump: int | None

    @property
    def vs_redis(self) -> float | None:
        if self.redis_memory_usage is None:
            return None
        return self.stored_value / self.redis_memory_usage

    @property
    def met(self) -> bool | None:
        ratio = self.vs_redis
        return None if ratio is None else ratio <= BYTES_TARGET

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "vs_redis": self.vs_redis, "target": BYTES_TARGET,
                "met": self.met}


def measure_bytes(items: int, backends: Mapping[str, Backend],
                  peer: RedisPeer | None) -> Bytes:
    """Bytes of one ``items``-item timeline (see ``Bytes``)."""
    full = data.full_value(items)
    payload = sum(len(data.redis_member(i)) for i in range(items))
    sqlite_pages = None
    sqlite = backends.get("sqlite")
    if isinstance(sqlite, SQLiteBackend) and sqlite.path != ":memory:":
        copies = 20
        names = data.keys("bytes", copies)
        before = data.sqlite_used_bytes(sqlite.path)
        sqlite.store_many(data.BUCKET, [(k, full) for k in names])
        sqlite_pages = (data.sqlite_used_bytes(sqlite.path) - before) / copies
        data.clear(sqlite, names)
    usage = dump = None
    if peer is not None:
        (key,) = data.keys("bytes", 1)
        peer.fill([key], items)
        usage, dump = peer.bytes_of(key)
        peer.flush()
    return Bytes(items, payload, len(full), sqlite_pages, usage, dump)


def environment(mode: Mode, peer: RedisPeer | None, skipped: str | None) -> dict[str, Any]:
    """Where and how the run was made, for the results file."""
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    root = Path(__file__).resolve().parents[2]
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode.name,
        "sizes": mode.sizes.__dict__,
        "plan": {**mode.plan.__dict__, "max_s": min(mode.plan.max_s, 1e9)},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "commit": commit or None,
        "msgpack": version("msgpack"),
        "redis_py": version("redis"),
        "cassandra_driver": version("cassandra-driver"),
        "redis_server": peer.version if peer is not None else None,
        "peer_skipped": skipped,
    }


def results_json(results: Sequence[Result], byte_figures: Bytes | None = None,
                 env: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What ``timak bench --json`` writes."""
    return {
        "environment": dict(env or {}),
        "results": [r.to_json() for r in results],
        "bytes": None if byte_figures is None else byte_figures.to_json(),
    }
