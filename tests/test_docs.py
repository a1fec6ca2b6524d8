"""Docs that run: the README's examples and the docstring examples."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import timak

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


def test_readme_names_the_ci_command_exactly() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"\n{ci}\n" in readme


def test_layers_import_downward_only() -> None:
    """value/encoding/scores import no other layer; backends import only the
    value layer; timelines never import feed, cli or contrib."""
    layer = {
        "value": 1, "encoding": 1, "scores": 1, "cursors": 1, "options": 1, "errors": 0,
        "backends": 2, "timelines": 3, "testing": 3,
        "feed": 4, "cli": 4, "contrib": 4, "_bench": 4, "_check": 4,
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
