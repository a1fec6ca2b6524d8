"""``timak bench``'s engine (private: a tool, not part of timak's API).

Every case times timak (the *subject*, default settings) beside a *floor*
that is not timak's code (the bare backend call, a plain msgpack decode)
and, where Redis has the same operation, a *peer* (Redis sorted sets on a
redis-server the run starts itself), interleaved in one run, and reports
medians, p99 and the ratios ``subject / floor`` and ``subject / peer``.
docs/benchmarks.md has the method, the figures and what they mean.

Modules: ``names`` (backends and scenarios, light: the CLI's parser reads
them on every start), ``harness`` (timing, results), ``data`` (items and stored bytes,
made through ``Timeline``), ``floors`` (plain decode), ``redis_peer`` (the
peer and its server), ``cases`` (the scenarios), ``runner`` (modes, stores,
byte figures, JSON).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cases import Sizes
    from .data import BUCKET
    from .harness import MIN_SAMPLES, Op, Plan, Result, Samples, Side, Target, measure
    from .names import BACKENDS, SCENARIOS
    from .redis_peer import RedisPeer, running_redis
    from .runner import (
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

# Loaded on first use (PEP 562): the engine imports the whole library and
# builds its word list, which `timak --help` and every other command should
# not pay for. Each public name maps to the module that defines it.
_WHERE = {
    "BACKENDS": "names",
    "BUCKET": "data",
    "BYTES_TARGET": "runner",
    "Bytes": "runner",
    "FULL": "runner",
    "MIN_SAMPLES": "harness",
    "Mode": "runner",
    "Op": "harness",
    "Plan": "harness",
    "QUICK": "runner",
    "RedisPeer": "redis_peer",
    "Result": "harness",
    "SCENARIOS": "names",
    "Samples": "harness",
    "Side": "harness",
    "Sizes": "cases",
    "Target": "harness",
    "environment": "runner",
    "iter_results": "runner",
    "measure": "harness",
    "measure_bytes": "runner",
    "open_backends": "runner",
    "results_json": "runner",
    "run_case": "runner",
    "running_redis": "redis_peer",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
