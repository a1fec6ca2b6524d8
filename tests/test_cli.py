"""The command line, run as a user runs it, checking exit codes, output
shape and messages.

``run`` starts ``python -m timak ...`` in a subprocess when ``TIMAK_SLOW=1``
(``scripts/test``, so in CI) and for the commands that start processes of
their own; otherwise (the default, fast loop) it calls ``timak.cli.main`` in
this process with the same arguments, environment, stdin and working
directory, and returns the same exit code and output."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import queue
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from timak import Timeline
from timak.backends import connect
from timak.cli import build_parser, main

#: Commands that start processes (or redirect file descriptors) of their own:
#: always run in a subprocess.
_OWN_PROCESSES = {"demo", "check", "watch", "bench"}


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if os.environ.get("TIMAK_SLOW") != "1" and not _OWN_PROCESSES.intersection(args):
        return run_in_process(*args, env=env, stdin=stdin, cwd=cwd)
    return subprocess.run(
        [sys.executable, "-m", "timak", *args],
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def run_in_process(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
                   cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``main(args)`` here, as ``run`` would run it in a subprocess."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        patch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        if cwd is not None:
            patch.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse: --help, --version, usage errors
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    return subprocess.CompletedProcess(["timak", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


def strict_json(line: str) -> Any:
    """Parse ``line`` as JSON, refusing the NaN/Infinity that Python accepts."""
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")
    return json.loads(line, parse_constant=refuse)


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                 ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the command line with the words that reach it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaf_parsers(sub, (*path, name))


# -- conventions: help, global options, exit codes ---------------------------


def test_help_lists_the_commands_and_exit_codes() -> None:
    result = run("--help")
    assert result.returncode == 0
    commands = ["add", "get", "range", "count", "delete", "demo", "compact", "watch",
                "serve", "cassandra", "riak", "bench", "check"]
    # The parser offers exactly these commands, and the help lists each as a
    # word at the start of its own line (not inside another word or sentence).
    choices = [
        list(action.choices) for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    assert choices == [commands]
    listed = re.findall(r"^ {4}([a-z]+)(?:\s|$)", result.stdout, re.MULTILINE)
    assert listed == commands
    for code in ("0", "1", "2", "3", "130"):
        assert re.search(rf"^\s+{code}\s+\w", result.stdout, re.MULTILINE), code


def test_starting_the_cli_loads_neither_the_benchmark_nor_the_checker() -> None:
    """Every command pays for what the parser imports: the benchmark engine
    and the history checker load only when their command runs."""
    code = (
        "import sys; from timak.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith(('timak._bench.', 'timak._check'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "['timak._bench.names']"


def test_the_benchmark_package_resolves_every_name_it_exports() -> None:
    from timak import _bench

    # Loaded lazily: each exported name must map to a module that defines it.
    assert sorted(_bench._WHERE) == _bench.__all__
    for name in _bench.__all__:
        getattr(_bench, name)
    with pytest.raises(AttributeError):
        _bench.no_such_name  # noqa: B018


def test_every_command_has_help_for_every_option_and_no_markup() -> None:
    for path, parser in leaf_parsers(build_parser()):
        text = parser.format_help()
        assert "``" not in text, path
        assert "::\n" not in text, path
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"timak {' '.join(path)}: {action.dest} has no help"


def test_help_runs_for_every_command() -> None:
    for path, _ in leaf_parsers(build_parser()):
        with pytest.raises(SystemExit) as exit_:
            main([*path, "--help"])
        assert exit_.value.code == 0, path


def test_url_is_accepted_before_and_after_every_command() -> None:
    parser = build_parser()
    for path, sub in leaf_parsers(parser):
        if not path:
            continue
        positionals = [a for a in sub._actions if not a.option_strings and a.required
                       and not isinstance(a, argparse._SubParsersAction)]
        fill = ["x"] * len(positionals)
        after = parser.parse_args([*path, *fill, "--url", "memory://after"])
        before = parser.parse_args(["--url", "memory://before", *path, *fill])
        assert after.url == "memory://after", path
        assert before.url == "memory://before", path


def test_url_after_the_command_is_used(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/after.db"
    assert run("add", "k", "a", "1", "--url", url).returncode == 0
    assert run("get", "k", "--json", "--url", url).stdout.count('"id": "a"') == 1
    assert (tmp_path / "after.db").exists()


def test_no_command_is_a_usage_error() -> None:
    assert run().returncode == 2


def test_timak_url_is_the_default_store_and_url_beats_it(tmp_path: Path) -> None:
    env = {"TIMAK_URL": f"sqlite:///{tmp_path}/env.db"}
    assert run("add", "k", "a", "1", env=env).returncode == 0
    assert (tmp_path / "env.db").exists()
    run("--url", f"sqlite:///{tmp_path}/flag.db", "add", "k", "b", "1", env=env)
    assert (tmp_path / "flag.db").exists()
    assert "b" not in run("get", "k", env=env).stdout.split()


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
        ["get", "k", "--cursor", "not-a-cursor"],
    ],
)
def test_bad_input_exits_2_with_a_message(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["--url", "memory://", *args] if args[0] != "--url" else args)
    except SystemExit as exited:  # refused by argparse itself
        code = exited.code  # type: ignore[assignment]
    assert code == 2
    assert "timak" in capsys.readouterr().err


def test_a_store_that_does_not_answer_in_time_exits_3(tmp_path: Path) -> None:
    """An outage (here: another process holds the write lock for longer
    than ``?timeout=``) exits 3; a wrong path is not one (below)."""
    path = tmp_path / "locked.db"
    Timeline(f"sqlite:///{path}").close()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        result = run("--url", f"sqlite:///{path}?timeout=0.1", "add", "k", "a", "1")
    finally:
        holder.close()
    assert result.returncode == 3, result.stderr
    assert "store timed out" in result.stderr


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("no/such/dir/x.db", "directory {tmp}/no/such/dir does not exist"),
        ("", "{tmp} is a directory, not a database file"),
        ("file/x.db", "{tmp}/file is not a directory"),
    ],
)
def test_a_wrong_sqlite_path_is_a_configuration_error(
    tmp_path: Path, where: str, problem: str
) -> None:
    """A missing directory, or a directory where the file should be, is the
    user's configuration, not an outage: exit 2 naming the path and what is
    wrong with it (it said "store unavailable ... unable to open database
    file" and exited 3)."""
    (tmp_path / "file").write_text("")
    for command in (["get", "k"], ["add", "k", "a", "1"]):
        result = run("--url", f"sqlite:///{tmp_path}/{where}", *command)
        assert result.returncode == 2, result.stderr
        assert problem.format(tmp=tmp_path) in result.stderr
        assert "unavailable" not in result.stderr


def test_watch_exits_2_on_a_wrong_sqlite_path_instead_of_retrying(tmp_path: Path) -> None:
    result = run("--url", f"sqlite:///{tmp_path}/no/such/dir/x.db", "watch", "k")
    assert result.returncode == 2, result.stderr
    assert f"directory {tmp_path}/no/such/dir does not exist" in result.stderr
    assert "retrying" not in result.stderr


def test_corrupt_value_exits_1(url: str) -> None:
    with connect(url) as backend:
        backend.store("timelines", "k", b"\x00not timak")
    result = run("--url", url, "get", "k")
    assert result.returncode == 1
    assert "CorruptValueError" in result.stderr


# -- get: columns, scores, JSON, paging --------------------------------------


def test_get_prints_id_score_and_data_in_columns(url: str) -> None:
    run("--url", url, "add", "k", "42", "1")
    run("--url", url, "add", "k", "post-1", "2024-05-01T12:00:00Z", "--data", '{"n": 42}')
    run("--url", url, "add", "k", "p 2", "7.5", "--data", "42")
    lines = run("--url", url, "get", "k").stdout.splitlines()
    assert lines[0].split() == ["ID", "SCORE", "DATA"]
    rows = [re.split(r"\s{2,}", line) for line in lines[1:]]
    assert rows == [
        ["post-1", "2024-05-01T12:00:00.000000Z", '{"n": 42}'],
        ['"p 2"', "7.5", "42"],  # data 42 is in the data column, not taken for an id
        ["42", "1", "-"],
    ]
    # Every column starts at the same place on every line.
    assert len({line.index(row[1]) for line, row in zip(lines[1:], rows, strict=True)}) == 1


def test_score_modes(url: str) -> None:
    run("--url", url, "add", "k", "a", "2024-05-01T12:00:00Z")
    run("--url", url, "add", "k", "b", "86400000000")  # 1970-01-02 in µs, or a count
    def scores(*mode: str) -> list[str]:
        out = run("--url", url, "get", "k", "--no-header", *mode).stdout
        return [re.split(r"\s{2,}", line)[1] for line in out.splitlines()]
    assert scores() == ["2024-05-01T12:00:00.000000Z", "86400000000"]
    assert scores("--scores", "raw") == ["1714564800000000", "86400000000"]
    assert scores("--scores", "iso") == ["2024-05-01T12:00:00.000000Z",
                                         "1970-01-02T00:00:00.000000Z"]


def test_json_is_one_valid_object_per_item_with_raw_and_iso_scores(url: str) -> None:
    with Timeline(url) as tl:  # a Python writer may store non-finite floats
        tl.add("k", "weird", 1, {"x": float("nan"), "y": [float("-inf")], "b": b"\x00"})
        tl.add("k", "when", "2024-05-01T12:00:00Z", {"text": "hi"})
    lines = run("--url", url, "get", "k", "--json").stdout.splitlines()
    items = [strict_json(line) for line in lines]
    assert items == [
        {"id": "when", "score": 1714564800000000, "datetime": "2024-05-01T12:00:00.000000Z",
         "data": {"text": "hi"}},
        {"id": "weird", "score": 1, "datetime": None,
         "data": {"x": "NaN", "y": ["-Infinity"], "b": {"base64": "AA=="}}},
    ]


@pytest.mark.parametrize("data", ["NaN", "Infinity", "-Infinity", '{"x": NaN}'])
def test_non_finite_data_is_refused(url: str, data: str) -> None:
    result = run("--url", url, "add", "k", "a", "1", "--data", data)
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr
    assert run("--url", url, "get", "k").stdout == ""  # nothing was written


def test_paging_with_cursors_skips_deleted_items(url: str) -> None:
    for n in range(7):
        run("--url", url, "add", "k", f"i{n}", str(n))
    run("--url", url, "delete", "k", "i5")
    run("--url", url, "delete", "k", "i4")
    seen, command = [], ["get", "k", "--limit", "2", "--no-header"]
    pages = 0
    while command:
        result = run("--url", url, *command)
        assert result.returncode == 0
        page = [line.split()[0] for line in result.stdout.splitlines()]
        seen.append(page)
        pages += 1
        match = re.search(r"next page: (.*)", result.stderr)
        command = shlex.split(match.group(1))[1:] if match else []
        assert pages < 10
    assert seen == [["i6", "i3"], ["i2", "i1"], ["i0"]]


def _json_pages(url: str, *command: str) -> list[list[Any]]:
    """Every page of ``command`` (with ``--json``), following each page's
    last line, ``{"next_cursor": ...}``, as a script would."""
    pages: list[list[Any]] = []
    cursor: list[str] = []
    while True:
        result = run("--url", url, *command, "--json", *cursor)
        assert result.returncode == 0, result.stderr
        *items, trailer = [strict_json(line) for line in result.stdout.splitlines()]
        assert set(trailer) == {"next_cursor"}, trailer
        pages.append([item["id"] for item in items])
        if trailer["next_cursor"] is None:
            return pages
        cursor = ["--cursor", trailer["next_cursor"]]
        assert len(pages) < 10


def test_json_pages_end_with_the_next_cursor(url: str) -> None:
    """Scripts page with ``--json`` alone: each page ends with the next
    page's cursor as JSON (it was only prose on stderr), ``null`` at the end."""
    for n in range(5):
        run("--url", url, "add", "k", f"i{n}", str(n))
    assert _json_pages(url, "get", "k", "--limit", "2") == [["i4", "i3"], ["i2", "i1"], ["i0"]]
    # Without paging, --json prints the items alone, one object per line.
    result = run("--url", url, "get", "k", "--json")
    assert [strict_json(line)["id"] for line in result.stdout.splitlines()] == [
        "i4", "i3", "i2", "i1", "i0"]


def test_json_is_json_lines_and_help_says_so() -> None:
    for command in ("get", "range"):
        # argparse breaks lines at hyphens too
        help_text = "".join(run(command, "--help").stdout.split())
        assert "JSONLines" in help_text and "json.tool--json-lines" in help_text


def test_range_by_score_and_datetime(url: str) -> None:
    for n in range(6):
        run("--url", url, "add", "k", f"i{n}", str(n))
    run("--url", url, "delete", "k", "i3")
    result = run("--url", url, "range", "k", "--start", "1", "--stop", "4", "--no-header")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["i4", "i2", "i1"]
    result = run("--url", url, "range", "k", "--stop", "1", "--asc", "--json", "--scores", "raw")
    assert [strict_json(line) for line in result.stdout.splitlines()] == [
        {"id": "i0", "score": 0, "datetime": None, "data": None},
        {"id": "i1", "score": 1, "datetime": None, "data": None},
    ]
    assert run("--url", url, "range", "k", "--start", "-1e5", "--stop", "0",
               "--no-header").stdout.split()[0] == "i0"
    # Paged: the same cursors as get, the range kept on every page.
    assert _json_pages(url, "range", "k", "--start", "1", "--limit", "2") == [
        ["i5", "i4"], ["i2", "i1"]]
    run("--url", url, "add", "days", "may", "2024-05-01T12:00:00Z")
    run("--url", url, "add", "days", "june", "2024-06-01T12:00:00Z")
    result = run("--url", url, "range", "days", "--start", "2024-05-15", "--no-header")
    assert result.stdout.split() == ["june", "2024-06-01T12:00:00.000000Z", "-"]


def test_range_with_start_after_stop_exits_2(url: str) -> None:
    for start, stop in (("5", "1"), ("2024-05-02", "2024-05-01T12:00:00+00:00")):
        result = run("--url", url, "range", "k", "--start", start, "--stop", stop)
        assert result.returncode == 2
        assert f"--start {start} is after --stop {stop}" in result.stderr


def test_count_counts_visible_items(url: str) -> None:
    for n in range(4):
        run("--url", url, "add", "k", f"i{n}", str(n))
    run("--url", url, "delete", "k", "i2")
    assert run("--url", url, "count", "k").stdout == "3\n"
    assert strict_json(run("--url", url, "count", "k", "--json").stdout) == {
        "key": "k", "count": 3}
    assert run("--url", url, "count", "nothing").stdout == "0\n"


@pytest.mark.parametrize("limit", ["-1", "0", "two"])
def test_bad_limit_exits_2(url: str, limit: str) -> None:
    result = run("--url", url, "get", "k", "--limit", limit)
    assert result.returncode == 2
    assert "--limit" in result.stderr


# -- add and delete: what changed ------------------------------------------


def test_add_and_delete_print_what_changed_and_the_count(url: str) -> None:
    assert run("--url", url, "add", "k", "a", "1").stdout == (
        "added a at 1 to k (k now holds 1 item)\n")
    assert run("--url", url, "add", "k", "b", "2").stdout == (
        "added b at 2 to k (k now holds 2 items)\n")
    assert run("--url", url, "add", "k", "b", "1").stdout == (  # an older score loses
        "not added: k keeps b visible at 2, which wins by score (k now holds 2 items)\n")
    assert run("--url", url, "delete", "k", "a").stdout == (
        "deleted a at 1 from k (k now holds 1 item)\n")
    absent = run("--url", url, "delete", "k", "zz")
    assert absent.returncode == 0
    assert absent.stdout == "no item zz on k: nothing deleted (k now holds 1 item)\n"
    changed = strict_json(run("--url", url, "add", "k", "c", "3", "--json").stdout)
    assert changed["applied"] is True and changed["count"] == 2 and changed["id"] == "c"


def test_print_timeline_keeps_the_old_output(url: str) -> None:
    run("--url", url, "add", "k", "a", "1")
    lines = run("--url", url, "add", "k", "b", "2", "--print-timeline").stdout.splitlines()
    assert lines[0].startswith("added b")
    assert [line.split()[0] for line in lines[1:]] == ["ID", "b", "a"]


# -- --data from a file or stdin, and size limits ----------------------------


def test_data_from_a_file_and_from_stdin(url: str, tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text('{"from": "file"}')
    assert run("--url", url, "add", "k", "f", "1", "--data", f"@{tmp_path}/d.json"
               ).returncode == 0
    assert run("--url", url, "add", "k", "s", "2", "--data", "-", stdin='["stdin"]'
               ).returncode == 0
    items = [strict_json(line) for line in
             run("--url", url, "get", "k", "--json").stdout.splitlines()]
    assert [(i["id"], i["data"]) for i in items] == [("s", ["stdin"]), ("f", {"from": "file"})]
    missing = run("--url", url, "add", "k", "m", "3", "--data", f"@{tmp_path}/nope.json")
    assert missing.returncode == 2 and "nope.json" in missing.stderr


def test_large_data_from_a_file_with_raised_limits(url: str, tmp_path: Path) -> None:
    big = {"blob": "x" * 5_000_000}  # over the OS limit for one argument
    (tmp_path / "big.json").write_text(json.dumps(big))
    refused = run("--url", url, "add", "k", "big", "1", "--data", f"@{tmp_path}/big.json")
    assert refused.returncode == 2
    assert "--max-item-bytes" in refused.stderr
    # A full timeline must always fit its value: capacity 2 (+ 48 slots of
    # chunk slack) of 8 MB items needs a value limit of 50 items' worth.
    added = run("--url", url, "add", "k", "big", "1", "--data", f"@{tmp_path}/big.json",
                "--max-items", "2", "--max-item-bytes", "8MB", "--max-value-bytes", "400MB")
    assert added.returncode == 0, added.stderr
    got = strict_json(run("--url", url, "get", "k", "--json").stdout)
    assert got["data"] == big


# -- negative scores -----------------------------------------------------------


def test_negative_scores_are_positional(url: str) -> None:
    for item, score in (("a", "-1e5"), ("b", "-5"), ("c", "-.5"), ("d", "-2.5E+3")):
        result = run("--url", url, "add", "k", item, score)
        assert result.returncode == 0, result.stderr
    delete = run("--url", url, "delete", "k", "b", "-5")
    assert delete.returncode == 0 and delete.stdout.startswith("deleted b at -5 ")
    items = [strict_json(line) for line in
             run("--url", url, "get", "k", "--json").stdout.splitlines()]
    assert [(i["id"], i["score"]) for i in items] == [("c", -0.5), ("d", -2500.0),
                                                       ("a", -100000.0)]


@pytest.mark.parametrize("score", ["-inf", "-Infinity", "inf", "-nan"])
def test_non_finite_scores_are_refused_clearly(url: str, score: str) -> None:
    result = run("--url", url, "add", "k", "a", score)
    assert result.returncode == 2
    assert "not a finite number" in result.stderr
    assert "usage:" not in result.stderr


def test_an_odd_negative_token_gets_the_double_dash_hint(url: str) -> None:
    result = run("--url", url, "add", "k", "a", "-5x")
    assert result.returncode == 2
    assert "put `--` before it" in result.stderr


# -- messages ------------------------------------------------------------------


@pytest.mark.parametrize("written", ["sqlite://", "riak://", "sqlite:///x.db?bogus=1"])
def test_url_errors_echo_the_url_as_written(written: str) -> None:
    result = run("--url", written, "get", "k")
    assert result.returncode == 2
    assert repr(written) in result.stderr


def test_consistency_error_names_the_option_written() -> None:
    pytest.importorskip("cassandra", reason="the cassandra:// parser needs timak[cassandra]")
    result = run("--url", "cassandra://h/ks?consistency=BOGUS", "cassandra", "schema")
    assert result.returncode == 2
    assert "option consistency='BOGUS'" in result.stderr
    assert "read_consistency" not in result.stderr


# -- compact ---------------------------------------------------------------


def test_compact_folds_siblings(url: str) -> None:
    tl = Timeline(connection=url, fold_at=100)
    for i in range(5):
        tl.fanout(["a", "b"], i, i)
    result = run("--url", url, "compact")
    assert result.returncode == 0
    assert "keys=2 folded=2 siblings_merged=10 corrupt=0" in result.stdout
    assert len(tl.connection.fetch("timelines", "a").siblings) == 1
    tl.close()


def test_compact_with_workers_and_bad_workers(url: str) -> None:
    with Timeline(connection=url, fold_at=100) as tl:
        for i in range(3):
            tl.fanout([f"k{n}" for n in range(9)], i, i)
    assert run("--url", url, "compact", "--workers", "0").returncode == 2
    result = run("--url", url, "compact", "--workers", "4")
    assert result.returncode == 0, result.stderr
    assert "keys=9 folded=9 siblings_merged=27 corrupt=0" in result.stdout


# -- check -----------------------------------------------------------------


@pytest.mark.slow
def test_check_without_url_uses_a_temporary_store_and_explains_figures(tmp_path: Path) -> None:
    result = run("check", "--workers", "2", "--ops", "30", env={"TIMAK_URL": ""}, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    store = re.search(r"^store: sqlite:///(\S+) \(a temporary SQLite file", result.stdout,
                      re.MULTILINE)
    assert store is not None, result.stdout
    assert not Path(store.group(1)).exists()  # removed afterwards
    assert not Path(store.group(1)).parent.exists()
    assert list(tmp_path.iterdir()) == []  # and nothing written where it ran
    legend = result.stdout[result.stdout.index("what the figures mean"):]
    figures = set(re.findall(r"([a-z_?]+)=", result.stdout))
    assert figures >= {"checked", "lost", "fuzz_cases", "fuzz", "siblings_left", "ok", "add"}
    for name in figures | {"outcomes", "acked"}:
        assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", legend), f"{name} unexplained"


@pytest.mark.slow
def test_check_on_a_named_store_removes_its_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/named.db"
    result = run("--url", url, "check", "--workers", "2", "--ops", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"store: {url}\n" in result.stdout
    # "with db" alone commits but never closes the connection.
    with contextlib.closing(sqlite3.connect(tmp_path / "named.db")) as db:
        assert db.execute("SELECT count(*) FROM siblings").fetchone()[0] == 0


# -- demo --------------------------------------------------------------------


@pytest.mark.slow
def test_demo_runs_and_checks() -> None:
    result = run("demo", "--users", "40", "--follows", "8", "--posts", "3", "--writers", "3",
                 env={"TIMAK_URL": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing lost" in result.stdout
    assert "items written" in result.stdout
    found = re.search(r"siblings found\s+\d+ on 40 home timelines \((\d+) on the \d+ that "
                      r"held more than one\)", result.stdout)
    merged = re.search(r"siblings merged (\d+) by read repair", result.stdout)
    assert found and merged, result.stdout
    assert found.group(1) == merged.group(1)  # the two figures agree


def test_demo_progress_counts_every_writer() -> None:
    """Each writer reports its progress as it goes, not only writer 0."""
    from timak.cli._demo import Network, _writer

    net = Network.make(30, 4, 6, seed=1)
    reports: queue.Queue[int | None] = queue.Queue()
    _writer("memory://", "demo", net, 1, 4, 50, reports)
    got = []
    while (item := reports.get_nowait()) is not None:
        got.append(item)
    mine = [p for n, p in enumerate(net.posts) if n % 4 == 1]
    assert sum(got) == sum(len(net.followers[a]) + 1 for a, _, _ in mine)
    assert len(got) >= len(mine) // 16  # reported along the way


@pytest.mark.slow
def test_demo_check_catches_loss(tmp_path: Path) -> None:
    """The demo's check can fail: a store that silently drops writes to one key."""
    from timak.backends.sqlite import SQLiteBackend
    from timak.cli._demo import Network, run_demo

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


@pytest.mark.slow
def test_demo_reports_a_writer_that_dies(tmp_path: Path) -> None:
    """A writer process that crashes makes the demo fail at once, not hang."""
    from timak.cli._demo import Network, run_demo

    net = Network.make(6, 2, 1, seed=1)
    with open(os.devnull, "w") as devnull:
        # A directory where the database file should be: every writer fails.
        (tmp_path / "dir.db").mkdir()
        assert not run_demo(f"sqlite:///{tmp_path}/dir.db", "demo", net, 2, 50, out=devnull)


@pytest.mark.parametrize("store", ["memory://", "memory://shared", "sqlite:///:memory:"])
def test_demo_refuses_a_store_private_to_one_process(store: str) -> None:
    """The demo's writers are processes: on such a store each had its own,
    and the demo reported "FAILED: 100 users' timelines differ" (exit 1)."""
    result = run("--url", store, "demo", "--users", "10", "--writers", "2")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "private to one process" in result.stderr
    assert "FAILED" not in result.stdout


# -- Ctrl-C ------------------------------------------------------------------


def _sleeping_in_c(pid: int) -> bool:
    """Whether process ``pid``'s main thread sleeps in clock_nanosleep, as
    SQLite's busy handler does while it waits for a lock (Linux only)."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
        syscall = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except OSError:
        pytest.skip("needs Linux's /proc/PID/syscall to see where the command waits")
    return "nanosleep" in wchan or syscall in {"230", "115"}  # x86-64, arm64


@pytest.mark.parametrize("command", [["add", "k", "a", "1"], ["get", "k"], ["watch", "k"]])
def test_ctrl_c_ends_a_command_waiting_for_a_sqlite_lock(
    tmp_path: Path, command: list[str]
) -> None:
    """SQLite's busy handler sleeps in C until its timeout (30 s by default)
    and Python cannot run its SIGINT handler meanwhile: Ctrl-C was ignored
    until then (issue 22). Here the test holds the lock, waits until the
    command sleeps in SQLite, and interrupts it: it must exit 130 long before
    its hour-long timeout (in about ``_interrupt.GRACE``, 1 s)."""
    path = tmp_path / "locked.db"
    Timeline(f"sqlite:///{path}").close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")  # readers wait too
    holder.execute("BEGIN EXCLUSIVE")
    proc = subprocess.Popen(
        [sys.executable, "-m", "timak", "--url", f"sqlite:///{path}?timeout=3600", *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _sleeping_in_c(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, proc.poll()
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        holder.close()


# -- small ones (issue 22, item 7) -----------------------------------------


def _without_urllib3(*args: str) -> subprocess.CompletedProcess[str]:
    """``timak ARGS`` in a Python where importing urllib3 fails."""
    code = ("import sys; sys.modules['urllib3'] = None; from timak.cli import main; "
            f"raise SystemExit(main({list(args)!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_riak_setup_needs_no_urllib3() -> None:
    """It only prints commands, so it works without the timak[riak] extra."""
    result = _without_urllib3("riak", "setup", "--bucket-type", "tl")
    assert result.returncode == 0, result.stderr
    assert "riak admin bucket-type create tl '{\"props\":{\"allow_mult\":true}}'" in result.stdout
    # `riak check` talks to Riak: it says what to install.
    result = _without_urllib3("--url", "riak://127.0.0.1:8098/", "riak", "check")
    assert result.returncode == 1
    assert "pip install 'urllib3>=2.0'" in result.stderr


def test_a_capacity_mismatch_gives_shell_advice(url: str) -> None:
    """Not "use Timeline(max_items=None)", which a shell user cannot."""
    run("--url", url, "add", "k", "a", "1", "--max-items", "5")
    for command in (["add", "k", "b", "2"], ["delete", "k", "a", "1"]):
        result = run("--url", url, *command, "--max-items", "7")
        assert result.returncode == 2
        assert "capacity 5, but --max-items is 7" in result.stderr
        assert "Leave out --max-items" in result.stderr
        assert "Timeline(" not in result.stderr
    assert run("--url", url, "add", "k", "b", "2").returncode == 0  # adopts 5


def test_compact_of_an_empty_bucket_says_so_and_names_the_buckets(url: str) -> None:
    """`compact --bucket typo` reported keys=0 and nothing else."""
    run("--url", url, "add", "k", "a", "1", "--no-feed")
    result = run("--url", url, "compact", "--bucket", "timelnies")
    assert result.returncode == 0
    assert "keys=0" in result.stdout
    assert ("bucket timelnies holds no keys; buckets on this store: timelines"
            in result.stderr)
    assert "holds no keys" not in run("--url", url, "compact").stderr


def test_main_leaves_no_signal_wakeup_fd_behind(url: str) -> None:
    """The Ctrl-C watchdog is set up for one command and taken down after it
    (in this process too: programs and tests call main more than once)."""
    import threading

    assert run_in_process("--url", url, "count", "k").returncode == 0
    assert signal.set_wakeup_fd(-1) == -1
    assert not [t for t in threading.enumerate() if t.name == "timak-ctrl-c"]
