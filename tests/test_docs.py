"""Docs that run: the README's examples and the docstring examples."""

from __future__ import annotations

import argparse
import ast
import doctest
import importlib
import os
import pkgutil
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import timak
from timak.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_readme_examples_run() -> None:
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False, optionflags=FLAGS)
    assert result.attempted > 10
    assert result.failed == 0


MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(timak.__path__, "timak.")
    if ".contrib." not in m.name and m.name != "timak.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except timak.MissingDriverError as exc:
        pytest.skip(str(exc))
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0


def test_all_is_complete_and_sorted() -> None:
    public = {
        name
        for name, value in vars(timak).items()
        if not name.startswith("_") and not isinstance(value, type(timak))
        and getattr(value, "__module__", "timak").startswith("timak")
    }
    assert public <= set(timak.__all__) | {"annotations"}
    assert all(hasattr(timak, name) for name in timak.__all__)
    assert timak.__all__ == sorted(timak.__all__)


#: The public modules: documented import paths, each with a sorted
#: ``__all__``. Every other module is private (a leading underscore in its
#: path) and may change in any release.
PUBLIC_MODULES = [
    "timak",
    "timak.activity",
    "timak.aio",
    "timak.backends",
    "timak.backends.base",
    "timak.backends.cassandra",
    "timak.backends.memory",
    "timak.backends.riak",
    "timak.backends.sqlite",
    "timak.cli",
    "timak.client",
    "timak.client.aio",
    "timak.contrib",
    "timak.contrib.django",
    "timak.contrib.django.activity",
    "timak.contrib.django.apps",
    "timak.contrib.django.management",
    "timak.contrib.django.management.commands",
    "timak.contrib.django.management.commands.timak_backfill",
    "timak.errors",
    "timak.feed",
    "timak.server",
    "timak.testing",
    "timak.testing_activity",
    "timak.testing_feed",
    "timak.testing_safety",
    "timak.timelines",
    "timak.value",
]

#: Django's conventions fix these modules' names and contents (an app
#: config, management command packages): they have no ``__all__``.
_DJANGO_PLUMBING = {
    "timak.contrib", "timak.contrib.django.apps", "timak.contrib.django.management",
    "timak.contrib.django.management.commands",
    "timak.contrib.django.management.commands.timak_backfill",
}


def test_every_module_is_listed_public_or_is_private() -> None:
    found = sorted(
        info.name for info in pkgutil.walk_packages(timak.__path__, "timak.")
        if not any(part.startswith("_") for part in info.name.split("."))
    )
    assert ["timak", *found] == PUBLIC_MODULES


@pytest.mark.parametrize("name", sorted(set(PUBLIC_MODULES) - _DJANGO_PLUMBING))
def test_public_modules_export_a_sorted_all_that_resolves(name: str) -> None:
    if name.startswith("timak.contrib.django"):
        pytest.importorskip("django")
        from django.conf import settings

        if not settings.configured:
            settings.configure()
    try:
        module = importlib.import_module(name)
    except timak.MissingDriverError as exc:
        pytest.skip(str(exc))
    exported = module.__all__
    assert exported == sorted(exported), name
    assert all(hasattr(module, attr) for attr in exported), name


def test_every_exception_and_warning_lives_in_errors_and_its_tree() -> None:
    """One tree: every exception or warning class timak defines is defined in
    timak.errors, exported at the top level, and drawn in the module docstring."""
    import importlib
    import pkgutil

    import timak.errors as errors

    defined: dict[str, str] = {}
    for info in pkgutil.walk_packages(timak.__path__, "timak."):
        if info.name == "timak.__main__" or info.name.startswith(
            ("timak.contrib", "timak.backends.cassandra")
        ):
            continue  # runs the CLI; needs Django settings; needs the driver
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, BaseException) \
                    and value.__module__.startswith("timak"):
                defined[name] = value.__module__
    assert defined, "no exception classes found"
    assert {m for m in defined.values()} == {"timak.errors"}, defined
    for name in defined:
        assert name in timak.__all__, name
        assert name in (errors.__doc__ or ""), f"{name} is not drawn in errors' tree"


def test_readme_names_the_ci_command_exactly() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"\n{ci}\n" in readme


def test_layers_import_downward_only() -> None:
    """value/encoding/scores import no other layer; backends import only the
    value layer; timelines never import feed, cli or contrib."""
    layer = {
        "value": 1, "_records": 1, "_encoding": 1, "_scores": 1, "_cursors": 1, "_options": 1,
        "_results": 1, "_changes": 1, "_engine": 3,
        "errors": 0, "_version": 0,
        "backends": 2, "timelines": 3, "testing": 3,
        "feed": 4, "activity": 4, "aio": 4, "cli": 4, "contrib": 4, "_bench": 4, "_check": 4,
        # Network front ends: the service and its client use the layers below.
        "server": 4, "client": 4,
        # The feed scenarios drive timak.feed, so they sit beside it, apart
        # from the backend conformance suite in "testing".
        "testing_feed": 4, "testing_activity": 4, "testing_safety": 4,
    }
    for path in (ROOT / "timak").rglob("*.py"):
        rel = path.relative_to(ROOT / "timak").with_suffix("").parts
        if rel[0] in ("__init__", "__main__"):
            continue
        mine = layer[rel[0]]
        package = ["timak", *rel[:-1]]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [node.module] if node.module else [a.name for a in node.names]
                targets = [".".join([*base, n]).split(".") for n in names]
            else:
                targets = [(node.module or "").split(".")]
            for target in targets:
                if target[0] != "timak" or len(target) < 2 or target[1] not in layer:
                    continue
                assert layer[target[1]] <= mine, f"{path}: imports {'.'.join(target)}"


# -- the README's shell commands -------------------------------------------------

README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    """The README's fenced blocks whose info string is ``language``."""
    blocks: list[str] = []
    current: list[str] | None = None
    inside = None
    for line in README.splitlines(keepends=True):
        if line.startswith("```"):
            if inside is None:
                inside, current = line[3:].strip(), []
            else:
                if inside == language:
                    blocks.append("".join(current or []))
                inside = None
        elif current is not None and inside is not None:
            current.append(line)
    return blocks


def _session(block: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` pairs of a ``console`` block."""
    pairs: list[tuple[str, str]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], ""))
        else:
            command, want = pairs[-1]
            pairs[-1] = (command, want + line + "\n")
    return pairs


def _plain_env() -> dict[str, str]:
    """The environment without settings a user's shell usually lacks
    (unbuffered output hides the order in which stdout and stderr arrive)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "TIMAK_URL")}


@pytest.mark.slow
def test_readme_console_sessions_run_as_written(tmp_path: Path) -> None:
    """Each ``$ command`` of the README's console blocks runs in one bash
    session, in an empty directory; its output must read as the README says
    (``...`` stands for anything, as in doctests)."""
    blocks = _blocks("console")
    assert blocks
    checker = doctest.OutputChecker()
    for block in blocks:
        pairs = _session(block)
        script = ['timak() { "$TIMAK_PYTHON" -m timak "$@"; }', "unset TIMAK_URL"]
        for n, (command, _) in enumerate(pairs):
            script += [f"echo '@@ {n}'", f"{command} 2>&1"]
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)], cwd=tmp_path, capture_output=True, text=True,
            timeout=300, env={**_plain_env(), "TIMAK_PYTHON": sys.executable},
        )
        outputs = re.split(r"^@@ \d+\n", result.stdout, flags=re.MULTILINE)[1:]
        assert len(outputs) == len(pairs), result.stdout + result.stderr
        for (command, want), got in zip(pairs, outputs, strict=True):
            assert checker.check_output(want, got, doctest.ELLIPSIS), (
                f"$ {command}\nREADME says:\n{want}\nit printed:\n{got}"
            )


def _sh_commands() -> list[str]:
    commands = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.split(" #")[0].strip()
                if part.startswith("timak "):
                    commands.append(part)
    return commands


NEEDS_A_SERVER = ("cassandra://", "riak://")
#: Commands that run until stopped (docs/server.md's tests run the service).
RUNS_UNTIL_STOPPED = ("timak serve", " serve ")


def test_install_commands_work_without_a_package_on_the_index() -> None:
    """No package named timak is on the index yet: the README and the guides
    install from a checkout (issue 22: they said `pip install timak`)."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in path.read_text().splitlines():
            assert not re.search(r"pip install ['\"]?timak\b", line), f"{path.name}: {line}"


def test_the_docs_agree_with_each_other() -> None:
    """Where issue 22 found two documents saying opposite things."""
    readme = " ".join(README.split())
    architecture = " ".join((ROOT / "docs" / "architecture.md").read_text().split())
    assert "imports only the layers below it" in architecture
    assert "layers above it" not in readme and "the layers below it" in readme
    # conftest.py says which hypothesis profile the extra-Python runs use: tox's.
    tox = (ROOT / "tox.ini").read_text()
    profile = re.search(r"HYPOTHESIS_PROFILE = \{env:HYPOTHESIS_PROFILE:(\w+)\}", tox)
    assert profile, "tox.ini no longer sets the extra-Python runs' profile"
    conftest = (ROOT / "tests" / "conftest.py").read_text()
    profiles = dict(re.findall(r"^``(\w+)``.*\n((?: {4}.*\n)+)", conftest, re.MULTILINE))
    assert [name for name, text in profiles.items()
            if "extra-Python-version runs" in text] == [profile.group(1)]
    # The backend rules that only the conformance suite showed are written down.
    for rule in ("`StoreResult`: the number of siblings", "unknown context raises "
                 "`InvalidInputError`", "calls after `close()` raise `BackendError`"):
        assert rule in architecture, rule
    # The activity guide gives extra's limit and says what a follow notifies.
    activity = " ".join((ROOT / "docs" / "activity.md").read_text().split())
    assert "1,000 bytes with the default groups" in activity
    assert "A follow makes no notification" in activity


def test_the_riak_docs_say_what_ran_against_a_real_riak() -> None:
    """The run of integration/test_riak.py on a real node, with its date
    and counts, replaced "nothing yet" (issue 22)."""
    for path in (ROOT / "README.md", ROOT / "docs" / "riak.md"):
        text = " ".join(path.read_text().split())
        assert "2026-12-06" in text and "Riak KV 3.2.1 node" in text, path.name
        assert "40 passed, 8 skipped" in text and "0 failed" in text, path.name
        assert "nothing yet" not in text and "not yet been run" not in text, path.name


@pytest.mark.slow
def test_readme_sh_commands_parse_and_run_where_they_can(tmp_path: Path) -> None:
    """Every ``timak ...`` line of the README's sh blocks is a valid command
    line; those that need no server run here and succeed (the Cassandra
    demo runs in integration/test_cli_cassandra.py)."""
    commands = _sh_commands()
    assert "timak demo" in commands
    parser = build_parser()
    ran = 0
    for command in commands:
        words = shlex.split(command)
        parser.parse_args(words[1:])  # exits (failing the test) if it is not valid usage
        if any(needs in command + " " for needs in NEEDS_A_SERVER + RUNS_UNTIL_STOPPED):
            continue
        env = {k: v for k, v in os.environ.items() if k != "TIMAK_URL"}
        result = subprocess.run([sys.executable, "-m", "timak", *words[1:]], cwd=tmp_path,
                                capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
        ran += 1
    assert ran >= 2


def _outside_brackets(text: str) -> list[str]:
    words, depth, word = [], 0, ""
    for char in text + " ":
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == " " and word:
            if depth == 0:
                words.append(word)
            word = ""
        elif char != " ":
            word += char if depth == 0 else ""
    return words


def test_readme_synopsis_matches_the_parser() -> None:
    """The README's usage lines name real commands and options, and as many
    required arguments as each command takes."""
    synopsis = next(b for b in _blocks("") if b.startswith("timak [--url URL]"))
    parser = build_parser()
    commands = {
        a.dest: a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    }["command"].choices
    for line in synopsis.splitlines():
        rest = line.removeprefix("timak [--url URL] ")
        name, _, usage = rest.partition(" ")
        sub = commands[name]
        options = {s for a in sub._actions for s in a.option_strings}
        for option in re.findall(r"--[a-z-]+", usage):
            assert option in options, f"{line}: {name} has no {option}"
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        variants = ([(v.split()[0], v.split()[1:]) for v in usage.split(" | ")]
                    if nested else [(None, _outside_brackets(usage))])
        for subcommand, words in variants:
            target = nested[0].choices[subcommand] if subcommand else sub
            required = [a for a in target._actions if not a.option_strings
                        and a.nargs not in ("*", "?", argparse.PARSER)]
            named = [w for w in words if w.isupper()]
            assert len(named) == len(required), f"{line}: {subcommand or name} takes " \
                f"{[a.dest for a in required]}"
