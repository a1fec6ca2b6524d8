"""Benchmarks: each timak operation timed beside its *floor*, in the same run.

The machine that runs a benchmark is rarely quiet, so an absolute figure
says little. Every case here pairs the operation under test (the *subject*)
with the cheapest way to do the same storage work without timak's logic
(the *floor*), runs the two interleaved, and reports the ratio
``ops_per_s / floor_ops_per_s``: noise that slows one slows the other.

=================  ==========================================  ===============================
scenario           subject                                     floor
=================  ==========================================  ===============================
``fanout``         ``Timeline.fanout`` of one item to N keys   ``store_many`` of the same
                                                               bytes to the same (empty) keys
``add``            ``Timeline.add`` on a full timeline         ``fetch`` + ``store`` of bytes
                                                               of the same size
``get-newest-50``  ``Timeline.page(limit=50)``, 1 or S         ``encoding.decode`` of every
                   siblings (includes the read repair)         sibling
``page-through``   every page of a timeline, ``limit=50``      ``fetch`` + ``decode`` per page
``merge``          decode + ``merge`` of S siblings (pure)     decode of the same siblings
``blind-write``    ``fanout`` to keys holding T-item           ``store_many`` of the same
                   timelines                                   bytes to the same keys
``storage``        ``encode`` + ``store`` of a timeline        plain msgpack of the payload
                                                               + ``store``; byte figures
=================  ==========================================  ===============================

Method (``measure``): a few warm-up runs of each side, then rounds that run
the subject and the floor once each, alternating which goes first, until
both have ``min_samples`` samples and ``budget_s`` has passed (or
``max_samples``). Each sample is one call timed with ``perf_counter_ns``;
per-repetition setup (emptying keys, re-creating siblings) runs untimed
before it. Rates come from the median sample: ``ops_per_s = units / p50``,
where ``units`` is what the case counts (keys written, pages read, ...).
``p99`` is the nearest-rank percentile, so with fewer than 100 samples it is
the slowest sample. Each call's CPU time (``process_time_ns``) is taken too,
and ``cpu_ratio`` is the ratio of the CPU medians: on a busy machine it
wobbles less than the wall-clock ratio, so the two disagreeing by much marks
a case disturbed by other processes. The garbage collector stays on (its
cost is real) and is run before each case.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from . import encoding
from .backends import Backend, connect
from .backends.memory import MemoryBackend
from .backends.sqlite import SQLiteBackend
from .errors import ConfigError
from .timelines import Timeline
from .value import Record, TimelineValue, merge

__all__ = [
    "BACKENDS",
    "BUCKET",
    "FULL",
    "MIN_SAMPLES",
    "Mode",
    "Plan",
    "QUICK",
    "Result",
    "SCENARIOS",
    "Samples",
    "iter_results",
    "Sizes",
    "measure",
    "open_backends",
    "results_json",
    "run",
]

#: Every scenario, in the order they run.
SCENARIOS = (
    "fanout",
    "add",
    "get-newest-50",
    "page-through",
    "merge",
    "blind-write",
    "storage",
)
#: Backends ``open_backends`` knows how to open.
BACKENDS = ("memory", "sqlite", "cassandra")
#: The bucket every benchmark writes to; its keys are removed after each case.
BUCKET = "timak_bench"
#: ``backend`` of the cases that do no I/O.
PURE = "pure"

_ID0 = 10**15  # item ids look like snowflake-ish 64-bit ids
_T0 = 1_700_000_000_000_000  # scores are datetimes as microseconds
_ARRIVED = _T0
_NO_FOLD = 1 << 30
#: The fewest samples per side a case reports, however slow its calls.
MIN_SAMPLES = 5
_VERBS = ("post", "like", "follow", "share", "comment")


@dataclass(frozen=True)
class Plan:
    """How many times to run each side of a case: until ``min_samples`` and
    ``budget_s`` are both reached, or ``max_samples``; a case whose calls are
    slow (fan-out to 10,000 keys on a remote store) stops after ``max_s``
    seconds once it has ``MIN_SAMPLES``."""

    warmup: int
    min_samples: int
    max_samples: int
    budget_s: float
    max_s: float = float("inf")


@dataclass(frozen=True)
class Sizes:
    """The sizes the scenarios run at."""

    fanout_keys: tuple[int, ...]
    timeline_items: int
    page_limit: int
    get_siblings: tuple[int, ...]
    merge_items: tuple[int, ...]
    merge_siblings: tuple[int, ...]
    blind_items: tuple[int, ...]
    blind_keys: int


@dataclass(frozen=True)
class Mode:
    """A named set of sizes and a plan: ``FULL`` or ``QUICK``."""

    name: str
    sizes: Sizes
    plan: Plan


FULL = Mode(
    "full",
    Sizes(
        fanout_keys=(1_000, 10_000),
        timeline_items=1_000,
        page_limit=50,
        get_siblings=(1, 8),
        merge_items=(100, 1_000, 10_000),
        merge_siblings=(1, 2, 4, 8, 16, 32),
        blind_items=(10, 1_000, 10_000),
        blind_keys=100,
    ),
    Plan(warmup=2, min_samples=25, max_samples=300, budget_s=4.0, max_s=60.0),
)
QUICK = Mode(
    "quick",
    Sizes(
        fanout_keys=(200,),
        timeline_items=200,
        page_limit=50,
        get_siblings=(1, 8),
        merge_items=(100,),
        merge_siblings=(1, 8),
        blind_items=(10, 1_000),
        blind_keys=20,
    ),
    Plan(warmup=1, min_samples=5, max_samples=50, budget_s=0.05),
)


# -- results ----------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One case: the subject's and the floor's latency and rate.

    ``ratio`` is ``ops_per_s / floor_ops_per_s`` (1.0: as fast as the floor);
    ``cpu_ratio`` is the same from median CPU time (see ``Samples``).
    ``target`` is the smallest acceptable ratio, or ``None`` when the case has
    no target; ``meets_target`` is then ``None`` too.
    """

    name: str
    scenario: str
    backend: str
    unit: str
    ops_per_s: float
    floor_ops_per_s: float
    ratio: float
    p50_ms: float
    p99_ms: float
    floor_name: str
    floor_p50_ms: float
    floor_p99_ms: float
    cpu_ratio: float
    samples: int
    floor_samples: int
    target: float | None
    meets_target: bool | None
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result as the JSON object ``--json`` writes."""
        return {
            "name": self.name,
            "backend": self.backend,
            "ops_per_s": self.ops_per_s,
            "floor_ops_per_s": self.floor_ops_per_s,
            "ratio": self.ratio,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "scenario": self.scenario,
            "unit": self.unit,
            "floor_name": self.floor_name,
            "floor_p50_ms": self.floor_p50_ms,
            "floor_p99_ms": self.floor_p99_ms,
            "cpu_ratio": self.cpu_ratio,
            "samples": self.samples,
            "floor_samples": self.floor_samples,
            "target": self.target,
            "meets_target": self.meets_target,
            "params": dict(self.params),
            "figures": dict(self.figures),
        }


def results_json(results: Sequence[Result]) -> dict[str, Any]:
    """``{"results": [...]}``: what ``timak bench --json`` writes."""
    return {"results": [r.to_json() for r in results]}


# -- the harness ------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One side of a case: ``run`` is timed, ``setup`` runs untimed before it."""

    run: Callable[[], object]
    setup: Callable[[], object] | None = None


@dataclass
class _Prepared:
    subject: Op
    floor: Op
    units: int
    cleanup: Callable[[], None] = lambda: None
    figures: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Case:
    scenario: str
    backend: str
    params: dict[str, int]
    unit: str
    floor_name: str
    target: float | None
    prepare: Callable[[], _Prepared]

    @property
    def name(self) -> str:
        return " ".join([self.scenario, *(f"{k}={v}" for k, v in self.params.items())])


@dataclass
class Samples:
    """Per-call samples of one side of a case, in nanoseconds: ``wall`` from
    ``perf_counter_ns`` (what is reported) and ``cpu`` from
    ``process_time_ns`` (the process's CPU time, all threads), which a busy
    machine disturbs less; the two ratios disagreeing flags a noisy run."""

    wall: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)

    def take(self, op: Op) -> None:
        if op.setup is not None:
            op.setup()
        cpu, wall = time.process_time_ns(), time.perf_counter_ns()
        op.run()
        self.wall.append(time.perf_counter_ns() - wall)
        self.cpu.append(time.process_time_ns() - cpu)


def measure(subject: Op, floor: Op, plan: Plan) -> tuple[Samples, Samples]:
    """Samples of ``subject`` and ``floor``, run interleaved.

    Rounds alternate which side runs first, so a slow spell of the machine
    lands on both sides alike.
    """
    for _ in range(plan.warmup):
        Samples().take(subject)
        Samples().take(floor)
    mine, theirs = Samples(), Samples()
    started = time.monotonic()
    for round_no in itertools.count():
        pair = [(subject, mine), (floor, theirs)]
        for op, samples in pair if round_no % 2 == 0 else pair[::-1]:
            samples.take(op)
        count, elapsed = len(mine.wall), time.monotonic() - started
        enough = count >= plan.min_samples and elapsed >= plan.budget_s
        too_slow = count >= min(MIN_SAMPLES, plan.min_samples) and elapsed >= plan.max_s
        if enough or too_slow or count >= plan.max_samples:
            return mine, theirs
    raise AssertionError("unreachable")  # pragma: no cover


def _p50(samples: Sequence[int]) -> float:
    return float(statistics.median(samples))


def _p99(samples: Sequence[int]) -> float:
    ordered = sorted(samples)
    return float(ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)])


def _run_case(case: _Case, plan: Plan) -> Result:
    gc.collect()
    prepared = case.prepare()
    try:
        mine, theirs = measure(prepared.subject, prepared.floor, plan)
    finally:
        prepared.cleanup()
    ops = prepared.units * 1e9 / max(_p50(mine.wall), 1.0)
    floor_ops = prepared.units * 1e9 / max(_p50(theirs.wall), 1.0)
    ratio = ops / floor_ops
    return Result(
        name=case.name,
        scenario=case.scenario,
        backend=case.backend,
        unit=case.unit,
        ops_per_s=ops,
        floor_ops_per_s=floor_ops,
        ratio=ratio,
        p50_ms=_p50(mine.wall) / 1e6,
        p99_ms=_p99(mine.wall) / 1e6,
        floor_name=case.floor_name,
        floor_p50_ms=_p50(theirs.wall) / 1e6,
        floor_p99_ms=_p99(theirs.wall) / 1e6,
        cpu_ratio=max(_p50(theirs.cpu), 1.0) / max(_p50(mine.cpu), 1.0),
        samples=len(mine.wall),
        floor_samples=len(theirs.wall),
        target=case.target,
        meets_target=None if case.target is None else ratio >= case.target,
        params=dict(case.params),
        figures=prepared.figures,
    )


def run(
    backends: Mapping[str, Backend],
    mode: Mode = FULL,
    *,
    only: Collection[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Result]:
    """Run every scenario (or those in ``only``) on every backend given.

    ``backends`` maps a label (``"memory"``, ``"sqlite"``, ...) to an open
    backend; the benchmarks write to ``BUCKET`` and remove their keys after
    each case. The pure scenario (``merge``) runs once, as backend ``"pure"``.
    ``only`` holds scenario names; an unknown one raises ``ConfigError``.
    """
    return list(iter_results(backends, mode, only=only, progress=progress))


def iter_results(
    backends: Mapping[str, Backend],
    mode: Mode = FULL,
    *,
    only: Collection[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Iterator[Result]:
    """``run``, yielding each result as its case finishes, so a caller keeps
    what was measured when a store fails half-way through a long run."""
    unknown = sorted(set(only or ()) - set(SCENARIOS))
    if unknown:
        raise ConfigError(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    cases = [c for c in _cases(backends, mode.sizes) if not only or c.scenario in only]
    for number, case in enumerate(cases, 1):
        if progress:
            progress(f"[{number}/{len(cases)}] {case.name} ({case.backend}) ...")
        result = _run_case(case, mode.plan)
        if progress:
            progress(
                f"[{number}/{len(cases)}] {case.name} ({case.backend}): "
                f"p50 {result.p50_ms:.3f} ms, floor {result.floor_p50_ms:.3f} ms, "
                f"ratio {result.ratio:.2f}"
            )
        yield result


# -- opening the stores -----------------------------------------------------


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


# -- the data ---------------------------------------------------------------


def _item(i: int, score: int | None = None) -> Record:
    """Item ``i``: a 64-bit id, a datetime score, and a small activity dict
    (actor, verb, object id) whose values vary the way real ones do."""
    item_id = _ID0 + i
    data = {
        "actor": f"user:{i * 7919 % 100_003}",
        "verb": _VERBS[i % len(_VERBS)],
        "object": i * 2_654_435_761 % 2**62,
    }
    return Record(item_id, _T0 + i * 1_000_000 if score is None else score, False, data,
                  _ARRIVED)


def _timeline(items: int) -> TimelineValue:
    return TimelineValue({r.id: r for r in map(_item, range(items))})


def _siblings(items: int, count: int) -> list[bytes]:
    """``count`` encoded siblings of an ``items``-item timeline, as ``count``
    concurrent ``add`` calls leave them: each is the same timeline plus one
    item of its own (and so without its oldest)."""
    base = _timeline(items)
    if count == 1:
        return [encoding.encode(base)]
    return [encoding.encode(merge([base], items, extra=[_item(items + j)])) for j in range(count)]


def _payload(records: Sequence[Record]) -> bytes:
    """The records as bare msgpack ``[id, score, data]`` rows: no framing."""
    packed: bytes = msgpack.packb([[r.id, r.score, r.data] for r in records])
    return packed


def _keys(scenario: str, count: int) -> list[str]:
    run_id = uuid.uuid4().hex[:8]
    return [f"{scenario}:{run_id}:{i}" for i in range(count)]


def _clear(backend: Backend, keys: Sequence[str]) -> None:
    for key in keys:
        backend.delete(BUCKET, key)
    _settle(backend)


def _reset(backend: Backend, keys: Sequence[str], siblings: Sequence[bytes]) -> None:
    for key in keys:
        backend.delete(BUCKET, key)
        for value in siblings:
            backend.store(BUCKET, key, value)
    _settle(backend)


def _settle(backend: Backend) -> None:
    """Start the next timed call from the same store state whichever side
    runs it: for SQLite, a checkpointed write-ahead log that the next write
    starts over (RESTART keeps the file, so no side pays to grow it again;
    TRUNCATE added ~0.4 ms to a 100-row write). Otherwise the thousands of
    small commits of a setup leave the log at a random fill, and whether the
    timed call pays for the next checkpoint (copying ~1,000 pages back into
    the database) is a coin toss, the likely cause of SQLite fan-out ratios of
    0.94 and 1.30 for the same case in two runs."""
    if isinstance(backend, SQLiteBackend) and backend.path != ":memory:":
        with contextlib.closing(sqlite3.connect(backend.path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(RESTART)")


def _timeline_on(backend: Backend, max_items: int) -> Timeline:
    # Keys are emptied or reset between repetitions, so folding would never
    # happen for real; a store that cannot count siblings would still fold on
    # this process's own count of blind writes, so folding is turned off.
    return Timeline(connection=backend, bucket=BUCKET, max_items=max_items, fold_at=_NO_FOLD)


# -- the scenarios ----------------------------------------------------------


def _cases(backends: Mapping[str, Backend], sizes: Sizes) -> list[_Case]:
    per_backend: list[Callable[[str, Backend, Sizes], list[_Case]]] = [
        _fanout_cases,
        _add_cases,
        _get_cases,
        _page_cases,
        _blind_cases,
        _storage_cases,
    ]
    cases = [c for make in per_backend for b, be in backends.items() for c in make(b, be, sizes)]
    cases += _merge_cases(sizes)
    return sorted(cases, key=lambda c: SCENARIOS.index(c.scenario))


def _fanout_cases(label: str, backend: Backend, sizes: Sizes) -> list[_Case]:
    def prepare(n: int) -> _Prepared:
        keys = _keys("fanout", n)
        tl = _timeline_on(backend, sizes.timeline_items)
        item = _item(0)
        value = encoding.encode(TimelineValue({item.id: item}))

        def clear() -> None:
            _clear(backend, keys)

        return _Prepared(
            Op(lambda: tl.fanout(keys, item.id, item.score, item.data), clear),
            Op(lambda: backend.store_many(BUCKET, [(k, value) for k in keys]), clear),
            units=n,
            cleanup=lambda: _clear(backend, keys),
        )

    return [
        _Case("fanout", label, {"keys": n}, "key writes", "store_many", 0.8,
              functools.partial(prepare, n))
        for n in sizes.fanout_keys
    ]


def _add_cases(label: str, backend: Backend, sizes: Sizes) -> list[_Case]:
    items = sizes.timeline_items

    def prepare() -> _Prepared:
        key, floor_key = _keys("add", 2)
        value = encoding.encode(_timeline(items))
        backend.store(BUCKET, key, value)
        backend.store(BUCKET, floor_key, value)
        tl = _timeline_on(backend, items)
        counter = itertools.count(items)

        def add() -> None:
            item = _item(next(counter))
            tl.add(key, item.id, item.score, item.data)

        def fetch_store() -> None:
            fetched = backend.fetch(BUCKET, floor_key)
            backend.store(BUCKET, floor_key, value, fetched.context)

        return _Prepared(Op(add), Op(fetch_store), units=1,
                         cleanup=lambda: _clear(backend, [key, floor_key]))

    return [_Case("add", label, {"items": items}, "adds", "fetch+store", None, prepare)]


def _get_cases(label: str, backend: Backend, sizes: Sizes) -> list[_Case]:
    items, limit = sizes.timeline_items, 50

    def prepare(count: int) -> _Prepared:
        key = _keys("get", 1)[0]
        siblings = _siblings(items, count)
        _reset(backend, [key], siblings)
        tl = _timeline_on(backend, items)
        page = tl.page(key, limit=limit)
        if len(page.items) != limit or len(backend.fetch(BUCKET, key).siblings) != 1:
            raise AssertionError("get-newest-50 is not reading what it should")
        # page() merged and wrote back the siblings: make them again, untimed.
        setup = (lambda: _reset(backend, [key], siblings)) if count > 1 else None
        return _Prepared(
            Op(lambda: tl.page(key, limit=limit), setup),
            Op(lambda: [encoding.decode(s) for s in siblings]),
            units=1,
            cleanup=lambda: _clear(backend, [key]),
        )

    return [
        _Case("get-newest-50", label, {"items": items, "siblings": count}, "reads", "decode",
              1 / 3, functools.partial(prepare, count))
        for count in sizes.get_siblings
    ]


def _page_cases(label: str, backend: Backend, sizes: Sizes) -> list[_Case]:
    items, limit = sizes.timeline_items, sizes.page_limit
    pages = math.ceil(items / limit)

    def prepare() -> _Prepared:
        key = _keys("page", 1)[0]
        backend.store(BUCKET, key, encoding.encode(_timeline(items)))
        tl = _timeline_on(backend, items)

        def page_through() -> int:
            cursor, read = None, 0
            while True:
                page = tl.page(key, limit=limit, cursor=cursor)
                read += len(page.items)
                if page.cursor is None:
                    return read
                cursor = page.cursor

        def fetch_decode() -> None:
            for _ in range(pages):
                for sibling in backend.fetch(BUCKET, key).siblings:
                    encoding.decode(sibling)

        if page_through() != items:
            raise AssertionError("page-through did not read every item")
        return _Prepared(Op(page_through), Op(fetch_decode), units=pages,
                         cleanup=lambda: _clear(backend, [key]))

    return [_Case("page-through", label, {"items": items, "limit": limit}, "pages",
                  "fetch+decode per page", None, prepare)]


def _merge_cases(sizes: Sizes) -> list[_Case]:
    def prepare(items: int, count: int) -> _Prepared:
        siblings = _siblings(items, count)
        return _Prepared(
            Op(lambda: merge([encoding.decode(s) for s in siblings], items)),
            Op(lambda: [encoding.decode(s) for s in siblings]),
            units=1,
        )

    return [
        _Case("merge", PURE, {"items": items, "siblings": count}, "merges", "decode", None,
              functools.partial(prepare, items, count))
        for items in sizes.merge_items
        for count in sizes.merge_siblings
    ]


def _blind_cases(label: str, backend: Backend, sizes: Sizes) -> list[_Case]:
    def prepare(items: int) -> _Prepared:
        keys = _keys("blind", sizes.blind_keys)
        held = encoding.encode(_timeline(items))
        tl = _timeline_on(backend, items)
        item = _item(items)
        value = encoding.encode(TimelineValue({item.id: item}))

        def reset() -> None:
            _reset(backend, keys, [held])

        return _Prepared(
            Op(lambda: tl.fanout(keys, item.id, item.score, item.data), reset),
            Op(lambda: backend.store_many(BUCKET, [(k, value) for k in keys]), reset),
            units=len(keys),
            cleanup=lambda: _clear(backend, keys),
        )

    return [
        _Case("blind-write", label, {"items": items, "keys": sizes.blind_keys}, "key writes",
              "store_many", None, functools.partial(prepare, items))
        for items in sizes.blind_items
    ]


def _storage_cases(label: str, backend: Backend, sizes: Sizes) -> list[_Case]:
    items = sizes.timeline_items

    def prepare() -> _Prepared:
        key, floor_key = _keys("storage", 2)
        value = _timeline(items)
        records = value.newest_first()
        encoded = encoding.encode(value)
        figures = _byte_figures(records, encoded)
        figures["stored_bytes_per_item"] = _stored_bytes_per_item(backend, encoded, items)
        return _Prepared(
            Op(lambda: backend.store(BUCKET, key, encoding.encode(value)),
               lambda: _clear(backend, [key])),
            Op(lambda: backend.store(BUCKET, floor_key, _payload(records)),
               lambda: _clear(backend, [floor_key])),
            units=items,
            cleanup=lambda: _clear(backend, [key, floor_key]),
            figures=figures,
        )

    return [_Case("storage", label, {"items": items}, "items stored", "msgpack+store",
                  None, prepare)]


def _byte_figures(records: Sequence[Record], encoded: bytes) -> dict[str, float | None]:
    """Bytes per item: the raw payload (8-byte id + 8-byte score + msgpack of
    the data), timak's encoding with and without compression, and the Python
    heap a decoded value holds."""
    n = len(records)
    raw = sum(16 + len(msgpack.packb(r.data)) for r in records) / n
    plain = len(encoding.encode(TimelineValue({r.id: r for r in records}), compress_at=1 << 62))
    return {
        "payload_bytes_per_item": raw,
        "encoded_bytes_per_item": len(encoded) / n,
        "uncompressed_bytes_per_item": plain / n,
        "overhead_bytes_per_item": plain / n - raw,
        "compressed_overhead_bytes_per_item": len(encoded) / n - raw,
        "python_bytes_per_item": _decoded_heap_bytes(encoded) / n,
    }


def _decoded_heap_bytes(encoded: bytes) -> int:
    """Python heap held by the decoded value of ``encoded`` (tracemalloc)."""
    gc.collect()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        value = encoding.decode(encoded)
        held = tracemalloc.get_traced_memory()[0] - before
        del value
    finally:
        if started:
            tracemalloc.stop()
    return held


def _stored_bytes_per_item(backend: Backend, encoded: bytes, items: int) -> float | None:
    """What the store spends per item: the bytes object for ``memory``; the
    growth of the database file (used pages) for ``sqlite``; ``None`` elsewhere."""
    if isinstance(backend, MemoryBackend):
        return sys.getsizeof(encoded) / items
    if not isinstance(backend, SQLiteBackend) or backend.path == ":memory:":
        return None
    copies = 20
    keys = _keys("bytes", copies)
    before = _sqlite_used_bytes(backend.path)
    for key in keys:
        backend.store(BUCKET, key, encoded)
    after = _sqlite_used_bytes(backend.path)
    _clear(backend, keys)
    return (after - before) / (copies * items)


def _sqlite_used_bytes(path: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)
