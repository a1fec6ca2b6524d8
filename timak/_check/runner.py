"""Running a check: worker processes, SIGKILLs and restarts, then the oracle."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

from ..errors import ConfigError
from ..timelines import Timeline
from .final import read_final
from .history import load_history
from .oracle import analyze
from .report import Anomaly, CheckConfig, CheckReport
from .worker import _worker_main, _WorkerSpec


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


