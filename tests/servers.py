"""``Served``: a real ``timak serve`` process on loopback, for the tests.

It runs ``python -m timak serve --port 0`` (the child gets this checkout on
``PYTHONPATH``), waits for the line that names the port, keeps reading
stderr (the logs, checked for tokens) and stops with SIGTERM, as an
operator would. ``restart()`` stops it and starts it again on the same
port.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WRITE_TOKEN = "write-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"

_LISTENING = re.compile(r"listening on (http://[\d.]+:(\d+))")


class Served:
    """One service process. ``url`` is its base URL; ``log`` what it printed."""

    def __init__(self, store: str, *args: str, tokens: Path | None = None,
                 port: int = 0, env: dict[str, str] | None = None) -> None:
        self.store = store
        self.args = list(args)
        self.tokens = tokens
        self.port = port
        self.extra_env = env or {}
        self.lines: list[str] = []
        self.url = ""
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Served:
        env = {**os.environ, **self.extra_env,
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        command = [sys.executable, "-m", "timak", "--url", self.store, "serve",
                   "--port", str(self.port), *self.args]
        if self.tokens is not None:
            command += ["--tokens", str(self.tokens)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, env=env,
        )
        found = threading.Event()
        stream = self.process.stderr
        assert stream is not None

        def read() -> None:
            for line in stream:
                self.lines.append(line)
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    self.url, self.port = match.group(1), int(match.group(2))
                    found.set()
            found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not found.wait(30) or not self.url:
            self.stop()
            raise RuntimeError("timak serve did not start:\n" + self.log)
        return self

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int | None:
        """SIGTERM, then wait; returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self._reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None
        return code

    def restart(self) -> Served:
        self.stop()
        self.url = ""
        time.sleep(0.1)
        return self.start()

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def token_file(directory: Path) -> Path:
    """A token file with one write and one read token."""
    path = directory / "tokens"
    path.write_text(f"# who may do what\nwrite:{WRITE_TOKEN}\nread:{READ_TOKEN}\n")
    return path
