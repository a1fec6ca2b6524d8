"""The memory backend: conformance, and the failure injection tests rely on."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from timak.backends import connect
from timak.backends.base import Backend
from timak.backends.memory import MemoryBackend
from timak.errors import ConfigError, InvalidInputError, UnavailableError
from timak.testing import BackendConformance


class TestMemoryConformance(BackendConformance):
    @pytest.fixture
    def connect(self) -> Callable[[], Backend]:
        name = uuid.uuid4().hex
        return lambda: MemoryBackend(name)


def test_private_stores_are_private() -> None:
    a, b = connect("memory://"), connect("memory://")
    a.store("b", "k", b"v")
    assert list(b.fetch("b", "k").siblings) == []


def test_named_stores_are_shared() -> None:
    name = uuid.uuid4().hex
    connect(f"memory://{name}").store("b", "k", b"v")
    assert list(connect(f"memory://{name}").fetch("b", "k").siblings) == [b"v"]


def test_injected_failure_is_raised_once_and_writes_nothing() -> None:
    backend = MemoryBackend()
    backend.fail_next(UnavailableError("down"), ops=["store"])
    with pytest.raises(UnavailableError):
        backend.store("b", "k", b"v")
    assert list(backend.fetch("b", "k").siblings) == []
    backend.store("b", "k", b"v")
    assert list(backend.fetch("b", "k").siblings) == [b"v"]


def test_memory_url_rejects_paths() -> None:
    with pytest.raises(ConfigError):
        connect("memory://name/path")


def test_a_context_of_another_store_is_refused() -> None:
    first, second = MemoryBackend(), MemoryBackend()
    first.store("b", "k", b"one")
    second.store("b", "k", b"mine")
    context = first.fetch("b", "k").context
    with pytest.raises(InvalidInputError, match="this memory store"):
        second.store("b", "k", b"merged", context)
    with pytest.raises(InvalidInputError, match="this memory store"):
        second.delete("b", "k", context)
    assert list(second.fetch("b", "k").siblings) == [b"mine"]
    shared = MemoryBackend("shared-context"), MemoryBackend("shared-context")
    shared[0].store("b", "k", b"one")
    shared[1].store("b", "k", b"merged", shared[0].fetch("b", "k").context)
    assert list(shared[0].fetch("b", "k").siblings) == [b"merged"]


def test_a_store_name_must_be_a_str() -> None:
    with pytest.raises(ConfigError):
        MemoryBackend(5)  # type: ignore[arg-type]


def test_an_after_failure_applies_the_write_then_raises() -> None:
    from timak.errors import BackendTimeoutError

    backend = MemoryBackend()
    backend.fail_next(BackendTimeoutError("ack lost"), ops=["store"], after=True)
    with pytest.raises(BackendTimeoutError, match="ack lost"):
        backend.store("b", "k", b"v")
    assert backend.fetch("b", "k").siblings == [b"v"]
    backend.store("b", "k", b"w")  # only the next call failed
    assert sorted(backend.fetch("b", "k").siblings) == [b"v", b"w"]


def test_a_timeline_write_whose_ack_is_lost_is_stored_and_safe_to_retry() -> None:
    """What callers must assume of a timeout: the write may have landed, and
    retrying it (every timak write is idempotent) neither doubles nor loses it."""
    from timak import Timeline
    from timak.errors import BackendTimeoutError

    backend = MemoryBackend()
    tl = Timeline(backend, max_items=10)
    backend.fail_next(BackendTimeoutError("ack lost"), ops=["store"], after=True)
    with pytest.raises(BackendTimeoutError):
        tl.add("k", "a", 1, obj_data={"x": 1})
    assert tl.get("k") == [{"x": 1}]
    backend.fail_next(BackendTimeoutError("ack lost"), ops=["store_many"], after=True)
    with pytest.raises(BackendTimeoutError):
        tl.fanout(["k", "j"], "b", 2)
    assert tl.add("k", "a", 1, obj_data={"x": 1}) == ["b", {"x": 1}]
    assert tl.fanout(["k", "j"], "b", 2) == 2
    assert tl.get("k") == ["b", {"x": 1}]
    assert tl.get("j") == ["b"]
