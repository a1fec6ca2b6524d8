"""The safety scenarios (``timak.testing_safety``) on memory, SQLite and the
Riak double; ``integration/test_safety_cassandra.py`` runs them on a real
Cassandra."""

from __future__ import annotations

from stores import OnMemory, OnRiakDouble, OnSQLite

from timak.testing_safety import SafetyScenarios


class TestMemorySafety(OnMemory, SafetyScenarios):
    pass


class TestSQLiteSafety(OnSQLite, SafetyScenarios):
    pass


class TestRiakDoubleSafety(OnRiakDouble, SafetyScenarios):
    pass
