"""The stores the fast suite runs shared scenarios on, as mixins that give a
scenario class (``FeedScenarios``, ``ActivityScenarios`` ...) its
``connect`` fixture: ``class TestSQLiteFeed(OnSQLite, FeedScenarios): pass``.

Each ``connect`` returns a callable that opens a new connection to one
store, fresh for the test; every call reaches the same data."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from timak.backends import Backend, connect

__all__ = ["STORES", "OnMemory", "OnRiakDouble", "OnSQLite", "url_for"]

Connect = Callable[[], Backend]

#: The stores a module parametrizes its store fixture over.
STORES = ["memory", "sqlite", "riak-double"]


def url_for(request: pytest.FixtureRequest, tmp_path: Path, filename: str) -> str:
    """The URL of a fresh store of kind ``request.param`` (one of ``STORES``):
    a private memory store, an SQLite file ``filename`` in ``tmp_path``, or
    the module's Riak double (the ``riak_url`` fixture of conftest.py)."""
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/{filename}"
    url: str = request.getfixturevalue("riak_url")
    return url


class OnMemory:
    """A named memory store (``memory://NAME``), private to the test."""

    @pytest.fixture
    def connect(self) -> Connect:
        name = uuid.uuid4().hex
        return lambda: connect(f"memory://{name}")


class OnSQLite:
    """An SQLite file in the test's temporary directory."""

    @pytest.fixture
    def connect(self, tmp_path: Path) -> Connect:
        return lambda: connect(f"sqlite:///{tmp_path}/store.db")


class OnRiakDouble:
    """The Riak test double (``tests/riak_double.py``), one per test."""

    @pytest.fixture
    def connect(self) -> Iterator[Connect]:
        pytest.importorskip("urllib3", reason="the Riak backend needs urllib3 (timak[riak])")
        from riak_double import RiakTestDouble

        with RiakTestDouble() as riak:
            yield lambda: connect(riak.url())
