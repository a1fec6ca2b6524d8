"""How many examples a property test runs under the current hypothesis
profile (registered in ``tests/conftest.py``)."""

from __future__ import annotations

from hypothesis import settings

__all__ = ["examples"]

#: ``max_examples`` of the ``ci`` profile, which runs every test in full.
_FULL = 100


def examples(full: int) -> int:
    """``full`` under the ``ci`` profile; proportionally fewer under ``mid``
    and ``dev`` (at least 5). Read when the test module is imported, after
    the profile is loaded."""
    return max(5, full * settings.default.max_examples // _FULL)
