"""The ``contended`` scenario: W writer processes on one key.

Each writer process opens its own ``Timeline`` on one fresh SQLite file and,
for ``seconds``, blind-writes one item after another to the same key of a
4,000-item timeline (``fanout([key], ...)``: one blind write, a fold at
``fold_at``), timing every write (``perf_counter_ns``, and its own CPU time).
The key starts with one item, as in ``benchmarks/contended_sqlite.py``,
whose logic this is.

The sides of one case, run one after the other (processes cannot be
interleaved call by call):

* subject: W timak writers;
* floor: one timak writer, on a fresh file: what a write costs with no one
  to contend with, so ``x floor`` is the price of contention. (This floor is
  timak's own code, unlike every other floor: the question here is what W
  writers cost over one, not what timak costs over the store.)
* peer: W redis-py writers on one sorted set, each write one round trip of
  ``ZADD`` + ``ZREMRANGEBYRANK key 0 -4001`` (a pipeline without MULTI).

Writers start together: each signals ready once it has imported and opened
its store, then waits for one start event. After the run the key is read
back: every acknowledged write must be there, up to capacity (``lost``).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .harness import Samples

__all__ = ["CAPACITY", "KEY", "Run", "redis_writers", "timak_writers"]

#: The timeline's capacity: what ``benchmarks/contended_sqlite.py`` used.
CAPACITY = 4000
KEY = "contended"
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Run:
    """One side's writes: every write's samples, all writers together, the
    writes per second over all of them, and how many acknowledged writes the
    key lost (must be 0)."""

    writers: int
    samples: Samples
    seconds: float
    lost: int = 0

    @property
    def per_s(self) -> float:
        return len(self.samples.wall) / self.seconds


def _write_loop(write: Any, me: int, seconds: float, ready: Any, start: Any,
                out: Any) -> None:
    wall: list[int] = []
    cpu: list[int] = []
    ready.put(me)
    start.wait(_START_TIMEOUT_S)
    stop = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop:
        c, w = time.process_time_ns(), time.perf_counter_ns()
        write(f"w{me}-{n}")
        wall.append(time.perf_counter_ns() - w)
        cpu.append(time.process_time_ns() - c)
        n += 1
    out.put((me, wall, cpu))


def _timak_writer(url: str, fold_at: int, me: int, seconds: float, ready: Any,
                  start: Any, out: Any) -> None:
    from ..timelines import Timeline

    tl = Timeline(url, max_items=CAPACITY, fold_at=fold_at)

    def write(item: str) -> None:
        tl.fanout([KEY], item, time.time_ns() // 1000)

    try:
        _write_loop(write, me, seconds, ready, start, out)
    finally:
        tl.close()


def _redis_writer(port: int, me: int, seconds: float, ready: Any, start: Any,
                  out: Any) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)

    def write(item: str) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.zadd(KEY, {json.dumps({"id": item}): time.time_ns() // 1000})
        pipe.zremrangebyrank(KEY, 0, -(CAPACITY + 1))
        pipe.execute()

    try:
        _write_loop(write, me, seconds, ready, start, out)
    finally:
        client.close()


def _run(target: Any, args: tuple[Any, ...], writers: int, seconds: float) -> Samples:
    """Start ``writers`` processes of ``target``, release them together, and
    gather their samples."""
    ctx = multiprocessing.get_context("spawn")
    ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, me, seconds, ready, start, out),
                         daemon=True) for me in range(writers)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=_START_TIMEOUT_S)
        start.set()
        got = [out.get(timeout=seconds + _START_TIMEOUT_S) for _ in procs]
        for p in procs:
            p.join(timeout=_START_TIMEOUT_S)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    samples = Samples()
    for _, wall, cpu in sorted(got):
        samples.wall.extend(wall)
        samples.cpu.extend(cpu)
    if not samples.wall:
        raise AssertionError(f"{writers} writer(s) made no write in {seconds} s")
    return samples


@contextlib.contextmanager
def _fresh_file() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="timak-bench-contended-") as tmp:
        yield f"sqlite:///{os.path.join(tmp, 'contended.db')}"


def timak_writers(writers: int, seconds: float, fold_at: int) -> Run:
    """``writers`` timak processes blind-writing one key of a fresh file."""
    from ..timelines import Timeline

    with _fresh_file() as url:
        with contextlib.closing(Timeline(url, max_items=CAPACITY)) as seed:
            seed.add(KEY, "seed", 0)
        samples = _run(_timak_writer, (url, fold_at), writers, seconds)
        with contextlib.closing(Timeline(url, max_items=None)) as reader:
            held = len(reader.get(KEY))
    lost = max(0, min(len(samples.wall) + 1, CAPACITY) - held)
    return Run(writers, samples, seconds, lost)


def redis_writers(port: int, writers: int, seconds: float) -> Run:
    """``writers`` redis-py processes writing one sorted set (emptied first)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        client.delete(KEY)
        samples = _run(_redis_writer, (port,), writers, seconds)
        held = int(client.zcard(KEY))
        client.delete(KEY)
    finally:
        client.close()
    lost = max(0, min(len(samples.wall), CAPACITY) - held)
    return Run(writers, samples, seconds, lost)
