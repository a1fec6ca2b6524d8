"""``timak.aio`` on a real Cassandra: the feed and activity scenario suites
through the async API (as ``tests/test_aio_scenarios.py`` runs them on the
other stores), many coroutines on one key, and a loop that keeps running
while the driver works.

The server comes from the ``cassandra_url`` session fixture in
``integration/conftest.py``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from timak import aio
from timak.backends import Backend, connect

pytest.importorskip("cassandra", reason="the Cassandra tests need timak[cassandra]")

# The fast suite's helpers (Blocking, the aio Envs) live in tests/, which is
# not a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_aio_scenarios import AioActivityScenarios, AioFeedScenarios


@pytest.mark.cassandra
class TestCassandraAioFeed(AioFeedScenarios):
    @pytest.fixture
    def connect(self, cassandra_url: str) -> Callable[[], Backend]:
        return lambda: connect(cassandra_url)


@pytest.mark.cassandra
class TestCassandraAioActivity(AioActivityScenarios):
    @pytest.fixture
    def connect(self, cassandra_url: str) -> Callable[[], Backend]:
        return lambda: connect(cassandra_url)


@pytest.mark.cassandra
def test_many_coroutines_on_one_key_and_a_loop_that_keeps_ticking(cassandra_url: str) -> None:
    async def main() -> tuple[list[object], float]:
        gaps: list[float] = []

        async def tick() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        # Connecting takes seconds: off the loop, as docs/asyncio.md says.
        backend = await asyncio.to_thread(connect, cassandra_url)
        bucket = f"aio-{time.time_ns()}"
        async with aio.Timeline(backend, bucket) as adder, \
                aio.Timeline(backend, bucket) as deleter:
            await asyncio.gather(*(adder.add("k", n, n) for n in range(200)),
                                 *(deleter.delete("k", n, n) for n in range(0, 200, 4)))
            items = await adder.get("k")
        await asyncio.to_thread(backend.close)
        ticker.cancel()
        return items, max(gaps)

    items, longest_gap = asyncio.run(main())
    assert items == [n for n in reversed(range(200)) if n % 4]
    assert longest_gap < 0.5
