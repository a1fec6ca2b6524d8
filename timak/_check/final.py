"""Reading every key after a run: decode checks, convergence, a small decode fuzz."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .. import _encoding as encoding
from ..errors import BackendError, CorruptValueError
from ..timelines import Timeline
from ..value import Record
from .report import Anomaly, FinalState, describe


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
                "fuzz", key, None, f"decode({mutant[:40]!r}...) raised {describe(exc)}"
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
