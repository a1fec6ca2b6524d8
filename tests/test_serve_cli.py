"""``timak serve`` as a command: its help, what it refuses before it
listens, and what a missing extra says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from servers import ROOT
from test_cli import run


def test_serve_help_names_tokens_limits_and_loopback() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0
    for words in ("--tokens FILE", "TIMAK_SERVE_TOKENS", "read:TOKEN", "--host",
                  "127.0.0.1", "--poll-interval", "--max-body-bytes", "--max-page",
                  "--insecure", "SIGTERM"):
        assert words in result.stdout, words


def test_bad_tokens_are_refused_without_echoing_them(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("admin:supersecretsupersecret\n")
    result = run("--url", "memory://", "serve", "--tokens", str(tokens))
    assert result.returncode == 2
    assert "line 1" in result.stderr and "supersecret" not in result.stderr
    missing = run("--url", "memory://", "serve", "--tokens", str(tmp_path / "absent"))
    assert missing.returncode == 2 and "cannot read the token file" in missing.stderr
    short = run("--url", "memory://", "serve", env={"TIMAK_SERVE_TOKENS": "write:short"})
    assert short.returncode == 2 and "TIMAK_SERVE_TOKENS" in short.stderr


def test_a_missing_server_extra_says_what_to_install() -> None:
    # starlette made unimportable, as if the extra were not installed.
    code = ("import sys; sys.modules['starlette'] = None\n"
            "from timak.cli import main\n"
            "sys.exit(main(['--url', 'memory://', 'serve']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1, result.stderr
    assert "pip install 'timak[server]'" in result.stderr
