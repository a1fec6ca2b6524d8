"""``timak bench``'s engine (private: a tool, not part of timak's API).

Every case times timak (the *subject*, default settings) beside a *floor*
that is not timak's code (the bare backend call, a plain msgpack decode)
and, where Redis has the same operation, a *peer* (Redis sorted sets on a
redis-server the run starts itself), interleaved in one run, and reports
medians, p99 and the ratios ``subject / floor`` and ``subject / peer``.
docs/benchmarks.md has the method, the figures and what they mean.

Modules: ``harness`` (timing, results), ``data`` (items and stored bytes,
made through ``Timeline``), ``floors`` (plain decode), ``redis_peer`` (the
peer and its server), ``cases`` (the scenarios), ``runner`` (modes, stores,
byte figures, JSON).
"""

from __future__ import annotations

from .cases import SCENARIOS, Sizes
from .data import BUCKET
from .harness import MIN_SAMPLES, Op, Plan, Result, Samples, Side, Target, measure
from .redis_peer import RedisPeer, running_redis
from .runner import (
    BACKENDS,
    BYTES_TARGET,
    FULL,
    QUICK,
    Bytes,
    Mode,
    environment,
    iter_results,
    measure_bytes,
    open_backends,
    results_json,
    run_case,
)

__all__ = [
    "BACKENDS",
    "BUCKET",
    "BYTES_TARGET",
    "Bytes",
    "FULL",
    "MIN_SAMPLES",
    "Mode",
    "Op",
    "Plan",
    "QUICK",
    "RedisPeer",
    "Result",
    "SCENARIOS",
    "Samples",
    "Side",
    "Sizes",
    "Target",
    "environment",
    "iter_results",
    "measure",
    "measure_bytes",
    "open_backends",
    "results_json",
    "run_case",
    "running_redis",
]
