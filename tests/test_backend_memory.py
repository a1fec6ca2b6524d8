"""The memory backend: conformance, and the failure injection tests rely on."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from timak.backends import connect
from timak.backends.base import Backend
from timak.backends.memory import MemoryBackend
from timak.errors import ConfigError, UnavailableError
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
