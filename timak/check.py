"""A Jepsen-style history checker: concurrent writers, crashes, and an oracle.

``check(CheckConfig(url))`` runs ``workers`` worker *processes* that each do
``ops`` random operations on ``keys`` hot keys of one store: read-modify-write
``add``, ``delete`` with and without a score, blind ``fanout`` (adds and
deletes) to several keys, and plain reads (which read-repair). Optionally the
checker SIGKILLs workers at random moments and starts them again.

Every worker logs each operation to its own history file (JSON lines): an
``invoke`` line *before* the operation, then one completion line::

    ok     the store acknowledged it (fsync'd before the next operation)
    fail   a typed timak error; an ``InvalidInputError`` means nothing was
           written, any other ``TimakError`` may or may not have been applied
    info   a timeout or an untyped error: may or may not have been applied

An ``invoke`` with no completion (the worker was killed) may or may not have
been applied either. So the history yields *acknowledged* records, which must
be reflected in the store, and *maybe* records, which may be.

Afterwards every key is read (twice, and through every ``read_urls`` store)
and compared with a sequential **oracle**, written as plain code independent
of ``timak.value.merge``: per key, per id the largest acknowledged record by
``(score, deleted)``, then the ``max_items`` largest by ``(score, id)``,
tombstones included. It reports:

* **lost**: an item the oracle keeps visible that the store does not show,
  unless a maybe-record can explain it (a maybe-write of that id that beats
  it, or enough maybe-writes ranked above it to trim it);
* **resurrected**: an item the store shows that acknowledged writes deleted,
  superseded or trimmed, or that no write (acknowledged or maybe) wrote;
* **nonconverged**: a key whose reads disagree after repair;
* **corrupt** siblings, **untyped** client errors, and workers that died on
  their own; and a small decode fuzz over every stored sibling.

All of these must be zero for ``CheckReport.ok``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from . import encoding
from .errors import (
    BackendError,
    BackendTimeoutError,
    ConfigError,
    CorruptValueError,
    InvalidInputError,
    TimakError,
)
from .timelines import Timeline
from .value import ItemId, Record, Score

__all__ = [
    "Anomaly",
    "CheckConfig",
    "CheckReport",
    "FinalState",
    "History",
    "Written",
    "analyze",
    "check",
    "load_history",
    "mutations",
    "read_final",
    "run_workers",
]


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
class History:
    """What the history files say."""

    acked: list[Written] = field(default_factory=list)
    maybe: list[Written] = field(default_factory=list)
    writes: list[_Write] = field(default_factory=list)
    reads: list[_Read] = field(default_factory=list)
    #: Acknowledged write operations (a fan-out counts once).
    checked: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Acknowledged operations per kind (add, delete, delete?, fanout, read).
    kinds: Counter[str] = field(default_factory=Counter)
    untyped: list[str] = field(default_factory=list)
    torn_lines: int = 0

    def note(
        self, record: Written, *, invoke: int = 0, complete: int = 0, acked: bool = True
    ) -> None:
        """Add a record that an operation invoked at ``invoke`` wrote, acknowledged
        at ``complete`` (or that it may have written, if not ``acked``)."""
        self.writes.append(_Write(invoke, complete if acked else _NEVER, acked, record))
        (self.acked if acked else self.maybe).append(record)


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


# -- the run ---------------------------------------------------------------


def check(config: CheckConfig, progress: Callable[[str], None] | None = None) -> CheckReport:
    """Run the workers, read every key, compare with the oracle.

    Raises ``ConfigError`` for a ``memory://`` URL: the workers are
    processes, and a memory store is private to one process.
    """
    if config.url.startswith("memory:"):
        raise ConfigError("timak check runs worker processes; memory:// stores are "
                          "per process: use sqlite:///FILE or a server URL")
    if min(config.workers, config.ops, config.keys, config.max_items) < 1:
        raise ConfigError("workers, ops, keys and max_items must be at least 1")
    rng = random.Random(config.seed)
    bucket = config.bucket or f"check-{uuid.uuid4().hex[:10]}"
    keys = [f"hot:{i}" for i in range(config.keys)]
    made_dir = config.history_dir is None
    history_dir = Path(config.history_dir or tempfile.mkdtemp(prefix="timak-check-"))
    history_dir.mkdir(parents=True, exist_ok=True)
    crashes, problems = run_workers(
        config, bucket, keys, history_dir, seed=rng.randrange(2**32), progress=progress
    )
    history = load_history(sorted(history_dir.glob("*.jsonl")))
    final = read_final(
        config.url, bucket, keys, config.max_items,
        read_urls=config.read_urls, fuzz=config.fuzz, seed=rng.randrange(2**32),
    )
    report = CheckReport(
        checked=history.checked,
        anomalies=[*problems, *analyze(history, final.values, config.max_items,
                           check_reads=config.check_reads),
                   *final.anomalies],
        crashes_survived=crashes,
        fuzz_cases=final.fuzz_cases,
        outcomes=history.outcomes,
        kinds=history.kinds,
        siblings_left=final.siblings_left,
        runs=1,
        history_dir=str(history_dir),
    )
    report.anomalies.extend(
        Anomaly("untyped", "-", None, error) for error in history.untyped
    )
    if made_dir and report.ok:
        shutil.rmtree(history_dir, ignore_errors=True)
        report.history_dir = None
    return report


@dataclass(frozen=True)
class _WorkerSpec:
    url: str
    bucket: str
    keys: tuple[str, ...]
    max_items: int
    fold_at: int
    worker: int
    incarnation: int
    first_op: int
    ops: int
    seed: int
    history: str


@dataclass
class _Running:
    spec: _WorkerSpec
    process: BaseProcess
    invokes: int = 0  # invoke lines logged by this incarnation
    offset: int = 0
    partial: bytes = b""


def run_workers(
    config: CheckConfig,
    bucket: str,
    keys: Sequence[str],
    history_dir: Path,
    *,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> tuple[int, list[Anomaly]]:
    """Run the worker processes to the end, killing and restarting some.

    Returns how many SIGKILLed workers were restarted, and problems seen
    (workers that died on their own, a run past ``config.timeout``).
    """
    rng = random.Random(seed)
    ctx = multiprocessing.get_context("spawn")
    total = config.workers * config.ops
    done_before = [0] * config.workers  # invokes by earlier incarnations
    incarnations = [0] * config.workers
    running: dict[int, _Running] = {}
    problems: list[Anomaly] = []
    crashes = 0
    thresholds = sorted(
        rng.randrange(max(1, total // 20), max(2, total * 7 // 10)) for _ in range(config.kills)
    )
    next_timed = _next_kill_time(rng, config.kill_every)

    def start(worker: int) -> None:
        spec = _WorkerSpec(
            url=config.url, bucket=bucket, keys=tuple(keys), max_items=config.max_items,
            fold_at=config.fold_at, worker=worker, incarnation=incarnations[worker],
            first_op=done_before[worker], ops=config.ops, seed=rng.randrange(2**32),
            history=str(history_dir / f"w{worker}.{incarnations[worker]}.jsonl"),
        )
        process = ctx.Process(target=_worker_main, args=(spec,), daemon=True)
        process.start()
        running[worker] = _Running(spec, process)

    # Open the store once first: it raises here if the store is unreachable,
    # and creates any schema before the workers connect at once (concurrent
    # DDL from several clients can make Cassandra nodes disagree).
    with Timeline(config.url, bucket=bucket, max_items=config.max_items) as tl:
        tl.connection.fetch(bucket, keys[0])
    deadline = time.monotonic() + config.timeout
    last_report = time.monotonic()
    try:
        for worker in range(config.workers):
            start(worker)
        while running:
            time.sleep(0.005)
            for run in running.values():
                _count_invokes(run)
            done = sum(done_before) + sum(r.invokes for r in running.values())
            for worker, run in list(running.items()):
                if run.process.is_alive():
                    continue
                run.process.join()
                done_before[worker] += running.pop(worker).invokes
                if run.process.exitcode != 0:
                    problems.append(Anomaly(
                        "worker", "-", None,
                        f"worker {worker} exited with code {run.process.exitcode}",
                    ))
            now = time.monotonic()
            if now > deadline:
                problems.append(Anomaly(
                    "worker", "-", None, f"run did not finish in {config.timeout} s"
                ))
                break
            due = bool(thresholds and done >= thresholds[0]) or (
                next_timed is not None and now >= next_timed
            )
            victims = [w for w, r in running.items()
                       if r.invokes > 0 and r.spec.first_op + r.invokes < config.ops]
            if due and victims:
                worker = rng.choice(victims)
                # A worker that finished just before the signal is not a
                # crash: the kill is then tried again on another one.
                if _kill(running[worker]):
                    crashes += 1
                    done_before[worker] += running.pop(worker).invokes
                    incarnations[worker] += 1
                    start(worker)
                    if thresholds and done >= thresholds[0]:
                        thresholds.pop(0)
                    else:
                        next_timed = _next_kill_time(rng, config.kill_every)
            if progress and now - last_report >= 1.0:
                last_report = now
                progress(f"ops {done}/{total}, crashes {crashes}")
    finally:
        for run in running.values():
            _kill(run)
    return crashes, problems


def _next_kill_time(rng: random.Random, every: float | None) -> float | None:
    if not every:
        return None
    return time.monotonic() + every * rng.uniform(0.5, 1.5)


def _kill(run: _Running) -> bool:
    """SIGKILL a worker; True if the signal is what ended it."""
    with contextlib.suppress(ProcessLookupError):
        if run.process.pid is not None:
            os.kill(run.process.pid, signal.SIGKILL)
    run.process.join(timeout=30)
    _count_invokes(run)
    return bool(run.process.exitcode == -signal.SIGKILL)


def _count_invokes(run: _Running) -> None:
    try:
        with open(run.spec.history, "rb") as f:
            f.seek(run.offset)
            chunk = f.read()
    except FileNotFoundError:
        return
    run.offset += len(chunk)
    lines = (run.partial + chunk).split(b"\n")
    run.partial = lines.pop()
    run.invokes += sum(1 for line in lines if line.startswith(b'{"t":"invoke"'))


# -- the worker --------------------------------------------------------------


def _worker_main(spec: _WorkerSpec) -> None:
    """One worker process: ``spec.ops - spec.first_op`` logged random ops."""
    rng = random.Random(spec.seed)
    seen: dict[str, list[Record]] = {}  # the last value read per key
    fd = os.open(spec.history, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        with Timeline(
            spec.url, bucket=spec.bucket, max_items=spec.max_items, fold_at=spec.fold_at
        ) as tl:
            for n in range(spec.first_op, spec.ops):
                op = _next_op(rng, spec, n, seen)
                # The invoke time is taken before the line is written and the
                # completion time after the call returns: both err on the
                # side of calling operations concurrent.
                _log(fd, {"t": "invoke", **op, "at": time.monotonic_ns()})
                _log(fd, _perform(tl, op, seen))
                os.fsync(fd)
    finally:
        os.close(fd)


def _next_op(
    rng: random.Random, spec: _WorkerSpec, n: int, seen: dict[str, list[Record]]
) -> dict[str, Any]:
    # Scores follow each worker's op number with jitter, like event times from
    # writers with skewed clocks: equal scores and reorderings are common,
    # and older items keep falling off the end of a timeline.
    jitter = 2 * spec.max_items
    score: Score = n + rng.randint(-jitter, jitter)
    if rng.random() < 0.1:
        score += 0.5
    item_id: ItemId = (
        rng.randrange(3 * spec.max_items) if rng.random() < 0.75
        else f"s{rng.randrange(spec.max_items)}"
    )
    data = {"w": spec.worker, "n": n} if rng.random() < 0.3 else None
    key = rng.choice(spec.keys)
    # Half the time, aim at something this worker last read on the key: a
    # delete at exactly an item's score (the delete must win the tie), an
    # add at exactly a tombstone's score (the add must lose).
    target = rng.choice(seen[key]) if seen.get(key) and rng.random() < 0.5 else None
    op: dict[str, Any] = {"w": spec.worker, "i": spec.incarnation, "n": n, "key": key,
                          "id": item_id}
    roll = rng.random()
    if roll < 0.35:
        if target is not None and target.deleted:
            item_id, score = target.id, target.score
        op.update(f="add", id=item_id, score=score, data=data)
    elif roll < 0.50:
        if target is not None and not target.deleted:
            item_id, score = target.id, target.score
        op.update(f="delete", id=item_id, score=score)
    elif roll < 0.62:
        op.update(f="delete?", id=target.id if target is not None else item_id)
    elif roll < 0.90:
        width = rng.randint(2, max(2, len(spec.keys)))
        deleted = rng.random() < 0.15
        op.update(f="fanout", keys=rng.sample(spec.keys, min(width, len(spec.keys))),
                  score=score, data=None if deleted else data, deleted=deleted)
    else:
        op.update(f="read")
    return op


def _perform(
    tl: Timeline, op: dict[str, Any], seen: dict[str, list[Record]]
) -> dict[str, Any]:
    """Do ``op``; return its completion line (with what it read, if it read)."""
    done: dict[str, Any] = {"t": "ok", "w": op["w"], "i": op["i"], "n": op["n"]}
    read: list[Record] | None = None
    try:
        f, key = op["f"], op["key"]
        if f == "add":
            read = tl.add(key, op["id"], op["score"], op["data"], raw=True)
        elif f == "delete":
            read = tl.delete(key, op["id"], op["score"], raw=True)
        elif f == "delete?":
            read = tl.delete(key, op["id"], raw=True)
            done.update(_unscored_delete(read, op["id"]))
        elif f == "fanout":
            tl.fanout(op["keys"], op["id"], op["score"], op["data"], deleted=op["deleted"])
        else:
            read = tl.get(key, raw=True)
    except BackendTimeoutError as exc:
        done.update(t="info", error=_describe(exc))
    except TimakError as exc:
        done.update(t="fail", error=_describe(exc),
                    definite=isinstance(exc, InvalidInputError))
    except Exception as exc:  # an untyped error is a bug: log it, carry on
        done.update(t="info", error=_describe(exc), untyped=True)
    done["at"] = time.monotonic_ns()
    if read is not None:
        seen[op["key"]] = read
        done["read"] = [[r.id, r.score, r.deleted, r.data] for r in read]
    return done


def _unscored_delete(read: list[Record], item_id: ItemId) -> dict[str, Any]:
    # The store looked the score up; what it wrote shows in the value it
    # returns: a tombstone for the id at the score it found. If the id is
    # visible instead, a concurrent write moved it above that score between
    # the lookup and the write; if it is absent, it was not there or its
    # tombstone was trimmed at once. Either way no tombstone was stored.
    mine = next((r for r in read if r.id == item_id), None)
    return {"score": mine.score if mine is not None and mine.deleted else None}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _log(fd: int, entry: dict[str, Any]) -> None:
    os.write(fd, json.dumps(entry, separators=(",", ":")).encode() + b"\n")


# -- reading the histories ---------------------------------------------------

_NEVER = 2**63  # the completion time of an operation that may still land


@dataclass(frozen=True)
class _Write:
    """A record an operation wrote, with when, and whether it was acknowledged."""

    invoke: int
    complete: int  # _NEVER unless acknowledged
    acked: bool
    record: Written


@dataclass(frozen=True)
class _Read:
    """A value an acknowledged operation read, and when."""

    invoke: int
    complete: int
    key: str
    what: str
    records: list[Record]


def load_history(paths: Iterable[Path]) -> History:
    """Parse history files into acknowledged and maybe records, and reads."""
    history = History()
    for path in paths:
        invoked: dict[tuple[int, int, int], dict[str, Any]] = {}
        completed: dict[tuple[int, int, int], dict[str, Any]] = {}
        for entry in _entries(path, history):
            op_id = (entry["w"], entry["i"], entry["n"])
            (invoked if entry["t"] == "invoke" else completed)[op_id] = entry
        for op_id, op in invoked.items():
            _classify(history, op, completed.get(op_id))
    return history


def _entries(path: Path, history: History) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                history.torn_lines += 1  # a line cut short by a kill
                continue
            if isinstance(entry, dict) and entry.get("t") in ("invoke", "ok", "fail", "info"):
                yield entry


def _classify(history: History, op: dict[str, Any], done: dict[str, Any] | None) -> None:
    outcome = "unfinished" if done is None else str(done["t"])
    history.outcomes[outcome] += 1
    if done is not None and done.get("untyped"):
        history.untyped.append(f"op {op['f']} on {op['key']!r}: {done.get('error')}")
    if outcome == "fail" and done is not None and done.get("definite"):
        return  # refused before anything was written
    invoke = int(op.get("at", 0))
    acked = outcome == "ok"
    complete = int(done.get("at", _NEVER)) if acked and done is not None else _NEVER
    records = _records_of(op)
    if acked:
        assert done is not None
        history.kinds[op["f"]] += 1
        if op["f"] != "read":
            history.checked += 1
        if "read" in done:
            what = f"{op['f']} by worker {op['w']}.{op['i']} op {op['n']}"
            history.reads.append(_Read(invoke, complete, op["key"], what, [
                Record(r[0], r[1], bool(r[2]), r[3]) for r in done["read"]
            ]))
        if op["f"] == "delete?":
            score = done.get("score")
            records = [] if score is None else [Written(op["key"], op["id"], score, True)]
    for record in records:
        history.note(record, invoke=invoke, complete=complete, acked=acked)


def _records_of(op: dict[str, Any]) -> list[Written]:
    f = op["f"]
    if f == "add":
        return [Written(op["key"], op["id"], op["score"], False, op["data"])]
    if f == "delete":
        return [Written(op["key"], op["id"], op["score"], True)]
    if f == "delete?":
        return [Written(op["key"], op["id"], None, True)]
    if f == "fanout":
        data = None if op["deleted"] else op["data"]
        return [Written(k, op["id"], op["score"], op["deleted"], data) for k in op["keys"]]
    return []


# -- the oracle ----------------------------------------------------------------
# Plain code, deliberately independent of timak.value.merge, so that it can
# catch a bug there: per id the largest record by (score, deleted), then the
# `capacity` largest by (score, id), tombstones included.


def _rank(item_id: ItemId, score: Score) -> tuple[Score, int, ItemId]:
    """Which records a timeline keeps: the largest ranks (ints below strings)."""
    return (score, 1 if isinstance(item_id, str) else 0, item_id)


def _beats(a: Written, b: Written) -> bool:
    assert a.score is not None and b.score is not None
    return (a.score, a.deleted) > (b.score, b.deleted)


def _absorb(best: dict[ItemId, Written], w: Written) -> None:
    if w.score is None:
        return
    current = best.get(w.id)
    if current is None or _beats(w, current):
        best[w.id] = w


def _ranks_above(best: dict[ItemId, Written], item_id: ItemId, score: Score) -> int:
    """How many other ids have a record ranked above ``(score, item_id)``."""
    mine = _rank(item_id, score)
    return sum(
        1 for other, w in best.items()
        if other != item_id and w.score is not None and _rank(other, w.score) > mine
    )


def _data_key(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=repr)


def _score(w: Written) -> Score:
    assert w.score is not None
    return w.score


def analyze(
    history: History,
    final: dict[str, list[Record]],
    capacity: int,
    *,
    check_reads: bool = True,
) -> list[Anomaly]:
    """Compare what the store holds, and (``check_reads``) every value an
    operation read, with the oracle of ``history``.

    A read must reflect every write acknowledged before the read began, and
    may reflect writes not acknowledged by then that began before it ended.
    That holds for a store that is linearizable per key (memory, SQLite,
    Cassandra at QUORUM); pass ``check_reads=False`` for weaker settings,
    where only the final values, read after the run, are checked.
    """
    by_key: dict[str, list[_Write]] = {}
    first_written: dict[tuple[str, ItemId, Score | None, str], int] = {}
    for write in history.writes:
        w = write.record
        by_key.setdefault(w.key, []).append(write)
        if not w.deleted:
            mark = (w.key, w.id, w.score, _data_key(w.data))
            first_written[mark] = min(first_written.get(mark, _NEVER), write.invoke)
    reads = [r for r in history.reads if check_reads]
    reads += [_Read(_NEVER, _NEVER, key, "final read", records) for key, records in final.items()]
    found: dict[tuple[str, str, ItemId | None], Anomaly] = {}
    for key in sorted({r.key for r in reads} | set(by_key)):
        writes = by_key.get(key, [])
        acked = sorted((w for w in writes if w.acked), key=lambda w: w.complete)
        before: dict[ItemId, Written] = {}
        done = 0
        key_reads = sorted((r for r in reads if r.key == key), key=lambda r: r.invoke)
        if key not in final:
            key_reads.append(_Read(_NEVER, _NEVER, key, "final read (key missing)", []))
        for read in key_reads:
            while done < len(acked) and acked[done].complete < read.invoke:
                _absorb(before, acked[done].record)
                done += 1
            window = [
                w.record for w in writes
                if w.invoke < read.complete and not (w.acked and w.complete < read.invoke)
            ]
            for anomaly in _compare(key, read, before, window, first_written, capacity):
                found.setdefault((anomaly.kind, key, anomaly.id), anomaly)
    return list(found.values())


def _compare(
    key: str,
    read: _Read,
    before: dict[ItemId, Written],
    window: list[Written],
    first_written: dict[tuple[str, ItemId, Score | None, str], int],
    capacity: int,
) -> Iterator[Anomaly]:
    """Anomalies of one read: ``before`` is the best acknowledged record per id
    before it began, ``window`` the records that may or may not show."""
    held = {r.id: r for r in read.records}
    either = dict(before)
    maybes: dict[ItemId, list[Written]] = {}
    for w in window:
        _absorb(either, w)
        maybes.setdefault(w.id, []).append(w)
    kept = sorted(before.values(), key=lambda w: _rank(w.id, _score(w)), reverse=True)
    for w in kept[:capacity]:
        if not w.deleted:
            why = _lost(w, held.get(w.id), maybes.get(w.id, []), either, capacity)
            if why:
                yield Anomaly("lost", key, w.id, f"{why} ({read.what})")
    for r in read.records:
        if not r.deleted:
            why = _resurrected(r, before, capacity)
            if why is None and first_written.get(
                (key, r.id, r.score, _data_key(r.data)), _NEVER
            ) >= read.complete:
                why = f"visible at {r.score} with data {r.data!r:.60}, which no write wrote"
            if why:
                yield Anomaly("resurrected", key, r.id, f"{why} ({read.what})")


def _lost(
    w: Written, held: Record | None, maybes: list[Written],
    either: dict[ItemId, Written], capacity: int,
) -> str | None:
    """Why the acknowledged, visible record ``w`` is missing, or None if it is not."""
    score = _score(w)
    if held is not None and not held.deleted:
        if held.score >= score:
            return None
        return f"acked add at {score}, but read at {held.score}"
    if any(m.score is None or _beats(m, w) for m in maybes):
        return None  # a maybe-write of this id beat it
    if held is not None:
        return f"acked add at {score}, but read as a tombstone at {held.score}"
    if _ranks_above(either, w.id, score) >= capacity:
        return None  # maybe-writes ranked above it may have trimmed it
    return f"acked add at {score} is missing"


def _resurrected(r: Record, before: dict[ItemId, Written], capacity: int) -> str | None:
    """Why the visible record ``r`` should not be visible, or None."""
    best = before.get(r.id)
    if best is not None and (_score(best), best.deleted) > (r.score, False):
        what = "deleted" if best.deleted else "moved"
        return f"visible at {r.score}, but acked writes {what} it at {best.score}"
    above = _ranks_above(before, r.id, r.score)
    if above >= capacity:
        return f"visible at {r.score}, but {above} acked items rank above it (trimmed)"
    return None


# -- reading the result ------------------------------------------------------


def read_final(
    url: str,
    bucket: str,
    keys: Sequence[str],
    capacity: int,
    *,
    read_urls: Sequence[str] = (),
    fuzz: int = 20,
    seed: int = 0,
    attempts: int = 20,
) -> FinalState:
    """Read every key (repairing it), check it decodes and reads converge."""
    rng = random.Random(seed)
    state = FinalState()
    with Timeline(url, bucket=bucket, max_items=capacity) as tl:
        for key in keys:
            # Every sibling as the run left it must decode, before any repair.
            fetched = _retry(attempts, tl.connection.fetch, bucket, key)
            for i, sibling in enumerate(fetched.siblings):
                try:
                    encoding.decode(sibling)
                except CorruptValueError as exc:
                    state.anomalies.append(Anomaly("corrupt", key, None, f"sibling {i}: {exc}"))
                state.fuzz_cases += _fuzz(sibling, fetched.siblings, key, rng, fuzz, state)
            first = _retry(attempts, _read_raw, tl, key)  # merges and repairs
            second = _retry(attempts, _read_raw, tl, key)
            left = _retry(attempts, tl.connection.fetch, bucket, key)
            state.siblings_left += max(0, len(left.siblings) - 1)
            if second != first:
                state.anomalies.append(Anomaly(
                    "nonconverged", key, None, f"two reads differ: {first} / {second}"
                ))
            state.values[key] = first
    for other_url in read_urls:
        with Timeline(other_url, bucket=bucket, max_items=capacity) as other:
            for key in keys:
                seen = _retry(attempts, _read_raw, other, key)
                if seen != state.values[key]:
                    state.anomalies.append(Anomaly(
                        "nonconverged", key, None,
                        f"{other_url} reads {seen}, {url} reads {state.values[key]}",
                    ))
    return state


def _read_raw(tl: Timeline, key: str) -> list[Record]:
    records: list[Record] = tl.get(key, raw=True, skip_corrupt=True)
    return records


def _retry(attempts: int, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, retried on store errors (a node may still be coming back)."""
    for attempt in range(attempts):
        try:
            return call(*args)
        except BackendError:
            if attempt == attempts - 1:
                raise
            time.sleep(min(0.1 * 2**attempt, 2.0))
    raise AssertionError("unreachable")  # pragma: no cover


def _fuzz(
    sibling: bytes, siblings: Sequence[bytes], key: str, rng: random.Random, count: int,
    state: FinalState,
) -> int:
    for mutant in mutations(sibling, rng, count, others=siblings):
        try:
            encoding.decode(mutant)
        except CorruptValueError:
            pass
        except Exception as exc:  # anything else is a bug in decode
            state.anomalies.append(Anomaly(
                "fuzz", key, None, f"decode({mutant[:40]!r}...) raised {_describe(exc)}"
            ))
    return count


def mutations(
    data: bytes, rng: random.Random, count: int, others: Sequence[bytes] = ()
) -> Iterator[bytes]:
    """``count`` damaged copies of ``data``: bit flips, cuts, splices, junk."""
    pool = list(others) or [data]
    for _ in range(count):
        buf = bytearray(data)
        kind = rng.randrange(5)
        if kind == 0 and buf:
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del buf[rng.randrange(len(buf) + 1):]
        elif kind == 2:
            other = rng.choice(pool)
            cut, at = rng.randrange(len(buf) + 1), rng.randrange(len(other) + 1)
            buf = buf[:cut] + other[at:]
        elif kind == 3:
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = rng.randbytes(rng.randint(1, 16))
        else:
            at = rng.randrange(len(buf) + 1)
            buf[at:at + rng.randint(1, 8)] = bytes([rng.choice((0x00, 0xFF, 0xDC, 0xDD, 0xC1))])
        yield bytes(buf)
