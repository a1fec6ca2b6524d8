"""The command line: conventions (--help, exit codes, TIMAK_URL) and the demo."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from timak.cli import main


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "timak", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in (
        "add",
        "get",
        "delete",
        "demo",
        "compact",
        "watch",
        "cassandra",
        "riak",
        "bench",
        "check",
    ):
        assert command in result.stdout


def test_no_command_is_a_usage_error() -> None:
    assert run().returncode == 2


def test_add_get_delete_through_timak_url(tmp_path: Path) -> None:
    env = {"TIMAK_URL": f"sqlite:///{tmp_path}/cli.db"}
    assert run("add", "k", "a", "1", env=env).stdout.split() == ["a"]
    added = run("add", "k", "b", "2024-01-01T00:00:00Z", "--data", '{"x": 1}', env=env)
    assert added.returncode == 0 and added.stdout.splitlines() == ['{"x": 1}', "a"]
    got = run("get", "k", "--json", env=env)
    assert [json.loads(line)["id"] for line in got.stdout.splitlines()] == ["b", "a"]
    assert run("delete", "k", "b", env=env).stdout.split() == ["a"]
    assert run("get", "k", env=env).stdout.split() == ["a"]


def test_url_flag_beats_timak_url(tmp_path: Path) -> None:
    env = {"TIMAK_URL": f"sqlite:///{tmp_path}/env.db"}
    run("--url", f"sqlite:///{tmp_path}/flag.db", "add", "k", "a", "1", env=env)
    assert (tmp_path / "flag.db").exists() and not (tmp_path / "env.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["add", "", "a", "1"],  # empty key
        ["add", "k", "a", "nan"],  # NaN score
        ["add", "k", "a", "not-a-date"],  # bad ISO datetime
        ["add", "k", "a", "1", "--data", "{bad json"],
        ["add", "k", "x", "1", "--int-id"],
        ["--url", "bogus://x", "get", "k"],
        ["add", "k", "a", "1", "--max-items", "0"],
    ],
)
def test_bad_input_exits_2_with_a_message(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", "memory://", *args] if args[0] != "--url" else args) == 2
    assert capsys.readouterr().err.startswith("timak: ")


def test_unreachable_store_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", f"sqlite:///{tmp_path}/no/such/dir.db", "get", "k"]) == 3
    assert "unavailable" in capsys.readouterr().err


def test_compact_folds_siblings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from timak import Timeline

    url = f"sqlite:///{tmp_path}/c.db"
    tl = Timeline(connection=url, fold_at=100)
    for i in range(5):
        tl.fanout(["a", "b"], i, i)
    assert main(["--url", url, "compact"]) == 0
    assert "keys=2 folded=2 siblings_merged=10" in capsys.readouterr().out
    assert len(tl.connection.fetch("timelines", "a").siblings) == 1


def test_demo_runs_and_checks(tmp_path: Path) -> None:
    result = run(
        "demo",
        "--users",
        "40",
        "--follows",
        "8",
        "--posts",
        "3",
        "--writers",
        "3",
        env={"TIMAK_URL": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing lost" in result.stdout
    assert "siblings merged" in result.stdout
    assert "items written" in result.stdout


def test_demo_check_catches_loss(tmp_path: Path) -> None:
    """The demo's check can fail: a store that silently drops writes to one key."""
    import sqlite3

    from timak.backends.sqlite import SQLiteBackend
    from timak.cli.demo import Network, run_demo

    path = tmp_path / "lossy.db"
    SQLiteBackend(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:  # "with db" alone never closes
        db.execute(
            "CREATE TRIGGER lose AFTER INSERT ON siblings WHEN NEW.key = 'home:1' "
            "BEGIN DELETE FROM siblings WHERE id = NEW.id; END"
        )
    net = Network.make(12, 4, 2, seed=1)
    with open(os.devnull, "w") as devnull:
        assert run_demo(f"sqlite:///{tmp_path}/ok.db", "demo", net, 2, 50, out=devnull)
        assert not run_demo(f"sqlite:///{path}", "demo", net, 2, 50, out=devnull)


def test_demo_reports_a_writer_that_dies(tmp_path: Path) -> None:
    """A writer process that crashes makes the demo fail at once, not hang."""
    from timak.cli.demo import Network, run_demo

    net = Network.make(6, 2, 1, seed=1)
    with open(os.devnull, "w") as devnull:
        # A directory where the database file should be: every writer fails.
        (tmp_path / "dir.db").mkdir()
        assert not run_demo(f"sqlite:///{tmp_path}/dir.db", "demo", net, 2, 50, out=devnull)
