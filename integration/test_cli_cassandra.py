"""The README's Cassandra demo command, run as written against a real Cassandra.

The README says ``timak demo --url cassandra://127.0.0.1/timak_demo``: the
command is taken from the README, its URL swapped for this session's
server, and a smaller network appended so that it runs in seconds.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.cassandra
def test_readme_cassandra_demo_command(cassandra_url: str) -> None:
    match = re.search(r"`(timak demo --url cassandra://\S+)`", README)
    assert match, "the README no longer shows the Cassandra demo command"
    words = shlex.split(match.group(1))
    words[words.index("--url") + 1] = cassandra_url  # --url after the command, as written
    small = ["--users", "60", "--follows", "10", "--posts", "3", "--writers", "3"]
    result = subprocess.run(
        [sys.executable, "-m", "timak", *words[1:], *small],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing lost" in result.stdout
    found = re.search(r"siblings found\s+\d+ on 60 home timelines \((\d+) on the \d+ that "
                      r"held more than one\)", result.stdout)
    merged = re.search(r"siblings merged (\d+) by read repair", result.stdout)
    assert found and merged, result.stdout
    assert found.group(1) == merged.group(1)


def test_readme_cassandra_inspect_usage_parses() -> None:
    """``cassandra inspect`` as the README shows it is valid usage (no server needed)."""
    from timak.cli import build_parser

    line = re.search(r"^(timak --url \S+ cassandra inspect .*)$", README, re.MULTILINE)
    assert line, "the README no longer shows cassandra inspect"
    args = build_parser().parse_args(shlex.split(line.group(1))[1:])
    assert (args.bucket, args.key) == ("timelines", "alice:home")
