"""The activity feed scenarios (``timak.testing_activity``) on a real Cassandra.

The server comes from the ``cassandra_url`` session fixture in
``integration/conftest.py``. Every scenario uses fresh buckets (a real store
outlives the test). Cassandra cannot count siblings on write, so this also
runs the feeds' blind writes with per-process fold counting on a real store.
The race checks of ``tests/test_activity_races.py`` run here too, with the
same gated threads, against the real node.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from timak.backends import Backend, connect
from timak.testing_activity import ActivityScenarios

pytest.importorskip("cassandra", reason="the Cassandra tests need timak[cassandra]")

TESTS = Path(__file__).resolve().parent.parent / "tests"


def _load(name: str, filename: str) -> ModuleType:
    # tests/ is not a package: load its modules by path, under their own names.
    spec = importlib.util.spec_from_file_location(name, TESTS / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_races = _load("timak_activity_races", "test_activity_races.py")


@pytest.mark.cassandra
class TestCassandraActivity(ActivityScenarios):
    @pytest.fixture
    def connect(self, cassandra_url: str) -> Callable[[], Backend]:
        return lambda: connect(cassandra_url)


@pytest.mark.cassandra
def test_races_on_cassandra(cassandra_url: str) -> None:
    """Every interleaving hypothesis tries ends as one of the two sequential
    orders, on the real node (the test body of tests/test_activity_races.py)."""
    inner = _races.test_races_end_as_one_of_the_sequential_orders.hypothesis.inner_test
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(scenario=_races.scenarios(), data=st.data())
    def run(scenario: object, data: object) -> None:
        inner(lambda: connect(cassandra_url), scenario, data)

    run()
