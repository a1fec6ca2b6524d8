"""The benchmark's data, built only through timak's public API.

Items look like what users store: a 64-bit id, a datetime score in
microseconds, and a ~200-byte JSON-like activity (actor, verb, object with a
short text, published time) whose values vary the way real ones do, so that
compression is not flattered by repeated values.

The stored bytes the scenarios start from are made by ``Timeline`` itself
(blind writes, then a fold) on a scratch memory store and read back with
``fetch``: the harness never calls ``encoding`` or ``value`` directly, so it
keeps working, and keeps measuring the real thing, whatever the value format.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from ..backends import Backend
from ..backends.memory import MemoryBackend
from ..backends.sqlite import SQLiteBackend
from ..timelines import Timeline

__all__ = [
    "BUCKET",
    "Items",
    "clear",
    "keys",
    "payload",
    "redis_member",
    "reset",
    "settle",
]

#: The bucket every benchmark writes to; its keys are removed after each case.
BUCKET = "timak_bench"

_ID0 = 10**15  # ids look like snowflake-ish 64-bit ids
_T0 = 1_700_000_000_000_000  # scores are datetimes as microseconds
_VERBS = ("post", "like", "follow", "share", "comment")


def _vocabulary(size: int) -> tuple[str, ...]:
    """``size`` made-up lowercase words of 2-10 letters (deterministic)."""
    rng = random.Random(2026)
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    weights = [26 - i for i in range(26)]  # English-ish letter frequencies
    return tuple("".join(rng.choices(letters, weights, k=rng.randint(2, 10)))
                 for _ in range(size))


# Text drawn from 5,000 words with Zipf weights (rank r has weight 1/r), like
# natural language: a small vocabulary repeated would compress far better
# than what users write, and flatter the stored-bytes figure.
_WORDS = _vocabulary(5_000)
_WEIGHTS = tuple(1 / rank for rank in range(1, len(_WORDS) + 1))
_NO_FOLD = 1 << 30


def payload(i: int) -> dict[str, Any]:
    """Item ``i``'s data: ~200 bytes as compact JSON (171-244, mean ~203)."""
    rng = random.Random(i)
    text = " ".join(rng.choices(_WORDS, _WEIGHTS, k=rng.randint(5, 10)))
    return {
        "actor": {"id": rng.randrange(10**9), "name": f"user{rng.randrange(10**6)}"},
        "verb": _VERBS[i % len(_VERBS)],
        "object": {"type": "post", "id": str(_ID0 + rng.randrange(10**12)), "text": text},
        "published": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i * 7 % 60:02d}Z",
    }


def item_id(i: int) -> int:
    return _ID0 + i


def score(i: int) -> int:
    """Item ``i``'s score: later items are newer (one second apart)."""
    return _T0 + i * 1_000_000


def redis_member(i: int) -> bytes:
    """Item ``i`` as the Redis peer stores it: inline JSON of id, score and data."""
    member = {"id": item_id(i), "score": score(i), "data": payload(i)}
    return json.dumps(member, separators=(",", ":")).encode()


class Items:
    """Numbers items for one case; each ``next()`` is newer than all before."""

    def __init__(self, start: int) -> None:
        self._counter = itertools.count(start)

    def next(self) -> int:
        return next(self._counter)


def full_value(items: int, capacity: int | None = None) -> bytes:
    """The stored bytes of a timeline holding items ``0 .. items - 1``, as
    ``Timeline`` writes them (one sibling, after a fold)."""
    scratch = MemoryBackend()
    tl = Timeline(connection=scratch, bucket=BUCKET, max_items=capacity or items,
                  fold_at=_NO_FOLD)
    for i in range(items):
        tl.fanout(["k"], item_id(i), score(i), payload(i))
    tl.fold("k")
    (value,) = scratch.fetch(BUCKET, "k").siblings
    return bytes(value)


def blind_values(first: int, count: int, capacity: int) -> list[bytes]:
    """The one-item values ``Timeline.fanout`` writes for items
    ``first .. first + count - 1`` (the siblings a fan-out leaves)."""
    scratch = MemoryBackend()
    tl = Timeline(connection=scratch, bucket=BUCKET, max_items=capacity, fold_at=_NO_FOLD)
    for i in range(first, first + count):
        tl.fanout([f"k{i}"], item_id(i), score(i), payload(i))
    return [bytes(scratch.fetch(BUCKET, f"k{i}").siblings[0])
            for i in range(first, first + count)]


def folded_value(siblings: Sequence[bytes], capacity: int) -> bytes:
    """What ``Timeline.fold`` writes for a key holding ``siblings``."""
    scratch = MemoryBackend()
    scratch.store_many(BUCKET, [("k", s) for s in siblings])
    Timeline(connection=scratch, bucket=BUCKET, max_items=capacity).fold("k")
    (value,) = scratch.fetch(BUCKET, "k").siblings
    return bytes(value)


def keys(scenario: str, count: int) -> list[str]:
    """``count`` fresh keys, unique to this run."""
    run_id = uuid.uuid4().hex[:8]
    return [f"{scenario}:{run_id}:{i}" for i in range(count)]


def clear(backend: Backend, names: Sequence[str]) -> None:
    for key in names:
        backend.delete(BUCKET, key)
    settle(backend)


def reset(backend: Backend, names: Sequence[str], siblings: Sequence[bytes]) -> None:
    """Make every key in ``names`` hold exactly ``siblings``."""
    for key in names:
        backend.delete(BUCKET, key)
    # In chunks: one store_many of 2,000 x 70 KB values made a loaded
    # Cassandra node push back (the driver's ConnectionBusy, "overloaded").
    for value in siblings:
        for part in chunks(names, 50):
            backend.store_many(BUCKET, [(key, value) for key in part])
    settle(backend)


def settle(backend: Backend) -> None:
    """Start the next timed call from the same store state whichever side
    runs it: on SQLite, a checkpointed write-ahead log that the next write
    starts over (RESTART keeps the file, so no side pays to grow it again).
    Otherwise whether a timed call pays for the next checkpoint after the
    setup's many commits is a coin toss (fan-out ratios of 0.94 and 1.30 for
    one case in two runs before this)."""
    if isinstance(backend, SQLiteBackend) and backend.path != ":memory:":
        with contextlib.closing(sqlite3.connect(backend.path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(RESTART)")


def sqlite_used_bytes(path: str) -> int:
    """Bytes of the SQLite file's used pages (after a checkpoint)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
