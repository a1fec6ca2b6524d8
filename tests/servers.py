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


class InThread(Served):
    """The same server as ``timak serve`` builds (``make_server``), run in a
    thread of this process: real HTTP on loopback, and coverage sees it.
    ``log`` holds what the ``timak.server`` loggers wrote."""

    def start(self) -> Served:
        import logging

        from timak.cli._serve import make_server
        from timak.server import ServerConfig, Tokens

        options = dict(zip(self.args[::2], self.args[1::2], strict=True))
        config = ServerConfig(
            self.store, Tokens.load(str(self.tokens) if self.tokens else None, {}),
            poll_interval=float(options.get("--poll-interval", 1.0)),
            heartbeat=float(options.get("--heartbeat", 15.0)),
            max_body_bytes=int(options.get("--max-body-bytes", 1024 * 1024)),
            max_page=int(options.get("--max-page", 1000)),
        )
        self._server = make_server(config, "127.0.0.1", self.port, "warning")
        lines = self.lines

        class Capture(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                lines.append(self.format(record) + "\n")

        self._capture = Capture()
        logger = logging.getLogger("timak.server")
        logger.addHandler(self._capture)
        self._level = logger.level
        logger.setLevel(logging.INFO)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started and time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread ended")
            time.sleep(0.02)
        sock = self._server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self) -> int | None:
        if getattr(self, "_thread", None) is None:
            return None
        self._server.should_exit = True
        self._thread.join(30)
        import logging

        logger = logging.getLogger("timak.server")
        logger.removeHandler(self._capture)
        logger.setLevel(self._level)
        self._thread = None
        return 0
