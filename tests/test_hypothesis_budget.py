"""The test suite's own rule: every property test's example count scales
with the hypothesis profile, so the default (``dev``) run stays fast and the
CI run (``ci``) keeps the full counts."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import settings
from hypothesis_budget import examples

ROOT = Path(__file__).resolve().parent.parent

# A literal count ignores the profile: a dev run then
# spends minutes where it should spend seconds.
_LITERAL = re.compile(r"max_examples\s*=\s*\d")


def test_no_property_test_hard_codes_its_example_count() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("tests", "integration")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "conftest.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _LITERAL.search(line)
    ]
    assert offenders == [], "use max_examples=examples(N) (tests/hypothesis_budget.py)"


def test_examples_scale_with_the_loaded_profile() -> None:
    scale = settings.default.max_examples
    assert examples(3000) == max(5, 3000 * scale // 100)
    assert examples(1) == 5  # never fewer than five
