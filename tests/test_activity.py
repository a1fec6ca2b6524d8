"""Activity feeds (``timak.activity``) on every store CI runs:
``ActivityScenarios`` (in ``timak.testing_activity``) on memory and SQLite
here, on the Riak test double, and on Cassandra in
``integration/test_activity_cassandra.py``."""

from __future__ import annotations

from stores import OnMemory, OnRiakDouble, OnSQLite

from timak.testing_activity import ActivityScenarios


class TestMemoryActivity(OnMemory, ActivityScenarios):
    pass


class TestSQLiteActivity(OnSQLite, ActivityScenarios):
    pass


class TestRiakDoubleActivity(OnRiakDouble, ActivityScenarios):
    pass
