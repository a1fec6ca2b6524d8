"""One worker process: random logged operations on the hot keys."""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from typing import Any

from ..errors import BackendTimeoutError, InvalidInputError, TimakError
from ..timelines import Timeline
from ..value import ItemId, Record, Score
from .report import describe


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
            read = list(tl.add(key, op["id"], op["score"], op["data"], raw=True))
        elif f == "delete":
            read = list(tl.delete(key, op["id"], op["score"], raw=True))
        elif f == "delete?":
            read = list(tl.delete(key, op["id"], raw=True))
            done.update(_unscored_delete(read, op["id"]))
        elif f == "fanout":
            tl.fanout(op["keys"], op["id"], op["score"], op["data"], deleted=op["deleted"])
        else:
            read = tl.get(key, raw=True)
    except BackendTimeoutError as exc:
        done.update(t="info", error=describe(exc))
    except TimakError as exc:
        done.update(t="fail", error=describe(exc),
                    definite=isinstance(exc, InvalidInputError))
    except Exception as exc:  # an untyped error is a bug: log it, carry on
        done.update(t="info", error=describe(exc), untyped=True)
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


def _log(fd: int, entry: dict[str, Any]) -> None:
    os.write(fd, json.dumps(entry, separators=(",", ":")).encode() + b"\n")


