"""The names ``timak bench`` offers (backends, scenarios), importable without
the engine: the CLI builds its parser from them on every start."""

from __future__ import annotations

__all__ = ["ACTIVITY_SCENARIOS", "BACKENDS", "SCENARIOS"]

#: Backends ``runner.open_backends`` knows how to open.
BACKENDS = ("memory", "sqlite", "cassandra")
#: The activity-feed scenarios (``activity``).
ACTIVITY_SCENARIOS = ("follow", "unfollow", "read", "page", "aggregated", "notification")
#: Every scenario, in the order they run.
SCENARIOS = ("fanout", "add", "newest", "fold", "contended", *ACTIVITY_SCENARIOS)
