"""The safety scenarios of ``timak.testing_safety`` on a real Cassandra
(the ``cassandra_url`` session fixture of ``integration/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from timak.backends import Backend, connect
from timak.testing_safety import SafetyScenarios

pytest.importorskip("cassandra", reason="the Cassandra tests need timak[cassandra]")


@pytest.mark.cassandra
class TestCassandraSafety(SafetyScenarios):
    @pytest.fixture
    def connect(self, cassandra_url: str) -> Callable[[], Backend]:
        return lambda: connect(cassandra_url)
