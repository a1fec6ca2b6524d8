"""The backend contract's optional parts: a store without key listing still
serves timelines; only the calls that scan keys say they need it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from timak import ConfigError, Timeline
from timak.backends.base import Backend, Fetched, Scanning, StoreResult
from timak.backends.memory import MemoryBackend
from timak.feed import Feed
from timak.testing import BackendConformance


class NoScanBackend(Backend):
    """The required contract only: fetch, store, delete, close (no ``keys``)."""

    def __init__(self, name: str | None = None) -> None:
        self._inner = MemoryBackend(name)

    def fetch(self, bucket: str, key: str) -> Fetched:
        return self._inner.fetch(bucket, key)

    def store(self, bucket: str, key: str, value: bytes, context: Any = None) -> StoreResult:
        return self._inner.store(bucket, key, value, context)

    def delete(self, bucket: str, key: str, context: Any = None) -> None:
        self._inner.delete(bucket, key, context)

    def close(self) -> None:
        self._inner.close()


class TestNoScanConformance(BackendConformance):
    """The whole conformance suite holds for a store that cannot list keys."""

    @pytest.fixture
    def connect(self) -> Callable[[], Backend]:
        import uuid

        name = uuid.uuid4().hex
        return lambda: NoScanBackend(name)


def test_the_optional_parts_are_optional() -> None:
    backend = NoScanBackend()
    assert isinstance(backend, Backend) and not isinstance(backend, Scanning)
    assert isinstance(MemoryBackend(), Scanning)


def test_timelines_work_and_only_key_scans_say_what_they_need() -> None:
    backend = NoScanBackend()
    tl = Timeline(backend, max_items=10)
    tl.fanout(["a", "b"], "x", 1)
    tl.fanout(["a", "b"], "y", 2)
    assert tl.get("a") == ["y", "x"]
    assert tl.compact(keys=["b"]).folded == 1
    with pytest.raises(ConfigError, match=r"NoScanBackend cannot list its keys.*compact\(\)"):
        tl.compact()
    # Feed.prune computes the keys to delete; only its fallback scan lists them.
    assert Feed(backend).prune(older_than=3600) == 0
    with pytest.raises(ConfigError, match=r"cannot list its keys, which Feed\.prune needs"):
        Feed(backend).prune(older_than=3600, scan=True)
