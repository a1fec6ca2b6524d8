"""docs/activity.md runs: its examples are the guide's promise."""

from __future__ import annotations

import doctest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_activity_guide_runs() -> None:
    result = doctest.testfile(
        str(ROOT / "docs" / "activity.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted > 40
    assert result.failed == 0
