"""The change feed scenarios of ``timak.testing_feed`` on a real Cassandra.

The server comes from the ``cassandra_url`` session fixture in
``integration/conftest.py``. Cassandra cannot count siblings on write, so
this also runs the feed's per-process fold counting against a real store.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from timak.backends import Backend, connect
from timak.testing_feed import FeedScenarios

pytest.importorskip("cassandra", reason="the Cassandra tests need timak[cassandra]")


@pytest.mark.cassandra
class TestCassandraFeed(FeedScenarios):
    @pytest.fixture
    def connect(self, cassandra_url: str) -> Callable[[], Backend]:
        return lambda: connect(cassandra_url)
