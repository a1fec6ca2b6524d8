"""Several processes write the same keys of one SQLite file, blind and
read-modify-write alike; the result equals the sequential oracle."""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path
from typing import Any

import pytest

from timak import Record, Timeline

KEYS = ["hot:0", "hot:1", "hot:2"]
MAX_ITEMS = 20
WORKERS = 4
OPS = 400


def worker(url: str, worker_id: int, queue: Any) -> None:
    """Do OPS random writes; report every acknowledged record."""
    rng = random.Random(worker_id)
    ticks = iter(range(worker_id * 10**9, (worker_id + 1) * 10**9))
    tl = Timeline(connection=url, max_items=MAX_ITEMS, fold_at=6, clock=lambda: next(ticks))
    acked: list[tuple[str, Any, int, bool, Any, int]] = []
    for _ in range(OPS):
        item_id: int | str = rng.choice([rng.randrange(40), f"s{rng.randrange(40)}"])
        score = rng.randrange(30)
        data = None if rng.random() < 0.5 else {"w": worker_id, "n": rng.randrange(3)}
        op = rng.random()
        if op < 0.4:
            keys = rng.sample(KEYS, rng.randint(1, len(KEYS)))
            tl.fanout(keys, item_id, score, data)
            records = [(k, item_id, score, False, data) for k in keys]
        elif op < 0.8:
            key = rng.choice(KEYS)
            tl.add(key, item_id, score, data)
            records = [(key, item_id, score, False, data)]
        else:
            key = rng.choice(KEYS)
            tl.delete(key, item_id, score)
            records = [(key, item_id, score, True, None)]
        # The clock is called exactly once per write, so the tick just used
        # is the arrival of every record this write made.
        tick = next(ticks) - 1
        acked.extend((k, i, s, d, dat, tick) for k, i, s, d, dat in records)
    tl.close()
    queue.put(acked)


def oracle(records: list[Record]) -> dict[Any, Record]:
    """Per id the largest (score, deleted, data, arrival), then the newest MAX_ITEMS.

    Plain code, independent of timak.value.merge.
    """
    import msgpack

    best: dict[Any, Record] = {}
    for r in records:
        rank = (r.score, r.deleted, msgpack.packb([r.score, r.data]), r.arrived)
        cur = best.get(r.id)
        if cur is None or rank > (
            cur.score, cur.deleted, msgpack.packb([cur.score, cur.data]), cur.arrived
        ):
            best[r.id] = r
    ranked = sorted(best.values(), key=lambda r: (r.score, isinstance(r.id, str), r.id))
    return {r.id: r for r in ranked[-MAX_ITEMS:]}


@pytest.mark.slow
def test_processes_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    Timeline(connection=url).close()  # create the schema once, before the race
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(url, w, queue)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    acked = [rec for result in results for rec in result]
    assert len(acked) >= WORKERS * OPS
    tl = Timeline(connection=url, max_items=MAX_ITEMS)
    for key in KEYS:
        expected = oracle([Record(i, s, d, dat, t) for k, i, s, d, dat, t in acked if k == key])
        assert {r.id: r for r in tl.get(key, raw=True)} == expected, key
