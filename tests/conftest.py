"""Shared test setup: hypothesis profiles, and a quiet import for hypothesis.

Hypothesis profiles (``HYPOTHESIS_PROFILE``, or ``--hypothesis-profile``):

``dev`` (the default)
    Fast, for development: ``python -m pytest tests`` in well under a
    minute. Every property test runs a twentieth of its full examples. The
    extra-Python-version runs in CI (tox ``py310``/``py312``/``py313``) use
    it too (``tox.ini``): the full example counts already ran on the main
    Python.
``mid``
    A quarter of the full examples, for a deeper run by hand
    (``HYPOTHESIS_PROFILE=mid``); nothing in CI selects it.
``ci``
    The main CI run (``scripts/test`` selects it): every property test's
    full example count, as written in its module.

Slow tests (``@pytest.mark.slow``: they run whole programs or servers for
seconds, such as the demo, the benchmark with its redis-server, ``watch``,
crash checks) are skipped, saying so, unless ``TIMAK_SLOW=1`` (set by
``scripts/test``, so CI runs them) or ``-m`` names them. With ``TIMAK_SLOW=1``
the CLI tests also run every command in a subprocess (see ``test_cli.run``).

No profile has a deadline. Property tests that need more than hypothesis' default 100 examples write
``@settings(max_examples=examples(3000))``: ``examples`` scales that by the
profile's ``max_examples`` (100 under ``ci``).
"""

import contextlib
import os
import warnings
from collections.abc import Iterator

import pytest
from hypothesis import settings

# A failing hypothesis test imports libcst (to suggest a patch), which emits a
# DeprecationWarning that setup.cfg's filterwarnings=error turns into an
# INTERNALERROR hiding the real failure. Import it once, up front, quietly.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401

# max_examples is each profile's scale: see hypothesis_budget.examples. No
# deadline: speed is measured in benchmarks, not in tests, and a loaded CI
# machine made a 7 ms example take 313 ms (a "flaky" DeadlineExceeded).
settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("mid", max_examples=25, deadline=None)
settings.register_profile("dev", max_examples=5, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "dev")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TIMAK_SLOW") == "1" or "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="slow: TIMAK_SLOW=1 (or scripts/test) runs it")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def riak_url() -> Iterator[str]:
    """A Riak test double for one test module (``tests/riak_double.py``)."""
    pytest.importorskip("urllib3", reason="the Riak backend needs urllib3 (timak[riak])")
    from riak_double import RiakTestDouble

    with RiakTestDouble() as riak:
        yield riak.url()
