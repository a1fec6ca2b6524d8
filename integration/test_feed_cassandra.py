"""The change feed scenarios of ``tests/test_feed.py`` on a real Cassandra.

The server comes from the ``cassandra_url`` session fixture in
``integration/conftest.py``. Cassandra cannot count siblings on write, so
this also runs the feed's per-process fold counting against a real store.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from timak.backends import Backend, connect

pytest.importorskip("cassandra", reason="the Cassandra tests need timak[cassandra]")


def _load_scenarios() -> type:
    # tests/ is not a package: load its feed module by path, under its own name.
    path = Path(__file__).resolve().parent.parent / "tests" / "test_feed.py"
    spec = importlib.util.spec_from_file_location("timak_feed_scenarios", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    scenarios: type = module.FeedScenarios
    return scenarios


FeedScenarios = _load_scenarios()


@pytest.mark.cassandra
class TestCassandraFeed(FeedScenarios):  # type: ignore[misc, valid-type]
    @pytest.fixture
    def connect(self, cassandra_url: str) -> Callable[[], Backend]:
        return lambda: connect(cassandra_url)
