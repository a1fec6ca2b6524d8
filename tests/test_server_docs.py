"""docs/server.md runs: its curl sessions in bash, its Python in this
process, its JavaScript in a real headless chromium, each against a real
``timak serve`` process, with the output the page shows."""

from __future__ import annotations

import doctest
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browsers import browser  # noqa: F401 (a fixture)
from servers import READ_TOKEN, ROOT, WRITE_TOKEN, Served, token_file

pytest.importorskip("httpx", reason="the server docs need timak[client]")
pytest.importorskip("starlette", reason="the server docs need timak[server]")

PAGE = (ROOT / "docs" / "server.md").read_text()


def blocks(language: str) -> list[tuple[str, str]]:
    """``(block, the text block right after it)`` for each fenced block of
    ``language`` (the text block is its expected output, or "")."""
    found = re.findall(r"```(\w*)\n(.*?)```", PAGE, flags=re.DOTALL)
    pairs = []
    for n, (lang, body) in enumerate(found):
        if lang == language:
            after = found[n + 1] if n + 1 < len(found) else ("", "")
            pairs.append((body, after[1] if after[0] == "text" else ""))
    return pairs


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with Served(f"sqlite:///{tmp_path / 'timak.db'}", "--poll-interval", "0.2",
                tokens=token_file(tmp_path)) as server:
        yield server


@pytest.mark.slow
def test_the_curl_sessions_print_what_the_page_says(served: Served, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    sessions = blocks("console")
    assert len(sessions) >= 2
    checker = doctest.OutputChecker()
    for block, _ in sessions:
        pairs: list[tuple[str, str]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                pairs.append((line[2:], ""))
            else:
                pairs[-1] = (pairs[-1][0], pairs[-1][1] + line + "\n")
        script = []
        for n, (command, _) in enumerate(pairs):
            script += [f"printf '\\n@@ {n}\\n'", command]
        env = {**os.environ, "TIMAK": served.url, "TOKEN": WRITE_TOKEN}
        result = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True,
                                text=True, timeout=120, env=env, cwd=tmp_path)
        outputs = re.split(r"\n@@ \d+\n", result.stdout)[1:]
        assert len(outputs) == len(pairs), result.stdout + result.stderr
        for (command, want), got in zip(pairs, outputs, strict=True):
            assert checker.check_output(want.rstrip("\n") + "\n", got.rstrip("\n") + "\n",
                                        doctest.ELLIPSIS), (
                f"$ {command}\ndocs/server.md says:\n{want}\nit printed:\n{got}")


def test_the_python_examples_run(served: Served) -> None:
    examples = blocks("python")
    assert examples
    for code, _ in examples:
        exec(compile(code, "docs/server.md", "exec"),
             {"TIMAK": served.url, "TOKEN": WRITE_TOKEN})


@pytest.mark.slow
def test_the_javascript_examples_print_what_the_page_says(served: Served,
                                                          browser: Any) -> None:  # noqa: F811
    examples = blocks("js")
    assert len(examples) >= 3
    browser.get(f"{served.url}/healthz")  # the service's origin: no CORS involved
    browser.set_script_timeout(30)
    for code, want in examples:
        assert want, "each js block is followed by its output in a text block"
        wrapped = (
            "const done = arguments[arguments.length - 1];"
            f"const TIMAK = {json.dumps(served.url)}, TOKEN = {json.dumps(WRITE_TOKEN)},"
            f" READ_TOKEN = {json.dumps(READ_TOKEN)};"
            "const printed = []; const log = console.log;"
            "console.log = (...args) => { printed.push(args.map(String).join(' ')); };"
            "(async () => {\n" + code + "\n})().then("
            "() => { console.log = log; done(printed.join('\\n')); },"
            "(e) => { console.log = log; done('ERROR ' + e + '\\n' + printed.join('\\n')); });"
        )
        got = browser.execute_async_script(wrapped)
        assert got.strip() == want.strip(), f"{code}\nprinted:\n{got}"
