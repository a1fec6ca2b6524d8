"""Session machinery that points the Cassandra tests at a real server.

``cassandra_url`` (session scope) is, in order of preference:

1. ``$TIMAK_CASSANDRA_URL`` when set (used as is; nothing is started, dropped
   or stopped);
2. else, when ``java`` is on PATH, the local node of ``integration/cassandra``:
   started if ``integration/cassandra status`` says it is not up (the first
   start downloads Cassandra through Maven), stopped at the end of the
   session only if this session started it. Its keyspace ``timak_test`` is
   dropped first, so each session starts empty;
3. else the tests skip, saying what they need. With ``TIMAK_REQUIRE_CASSANDRA=1``
   (CI) that skip is a failure.

Nothing here reads standard input, so it runs unattended on a clean clone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().with_name("cassandra")
KEYSPACE = "timak_test"
#: memtable_flush_period_in_ms=1000: the hot-key test writes one key ~3,000
#: times a second, and superseded rows are scanned until their memtable is
#: flushed (docs/cassandra.md, "Read cost between flushes").
LOCAL_URL = (
    f"cassandra://127.0.0.1:9042/{KEYSPACE}?replication_factor=1&memtable_flush_period_in_ms=1000"
)
SKIP_REASON = (
    "Cassandra tests need Java 17 + Maven (integration/cassandra start) "
    "or TIMAK_CASSANDRA_URL=cassandra://host/keyspace"
)
#: The first start downloads Cassandra and its dependencies through Maven.
START_TIMEOUT = 1200.0


def run_script(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run ``integration/cassandra ARGS`` without a terminal or stdin."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def script_logs(lines: int = 80) -> str:
    try:
        logs = run_script("logs", "--lines", str(lines), timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"(integration/cassandra logs failed: {exc})"
    return logs.stdout + logs.stderr


@dataclass
class CassandraServer:
    """The server the tests use. ``managed``: ``integration/cassandra`` runs
    it here, so tests may stop and restart it (``stop``/``start``)."""

    url: str
    managed: bool
    started_here: bool = False

    def stop(self) -> None:
        result = run_script("stop", timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr

    def start(self) -> None:
        result = run_script("start", timeout=START_TIMEOUT)
        if result.returncode != 0:
            pytest.fail(
                "integration/cassandra start failed:\n"
                + result.stdout
                + result.stderr
                + "\n--- integration/cassandra logs:\n"
                + script_logs()
            )

    def logs(self, lines: int = 80) -> str:
        """The tail of the node logs (``integration/cassandra logs``)."""
        return script_logs(lines)

    def is_up(self) -> bool:
        return run_script("status", timeout=60).returncode == 0


def _unavailable(reason: str) -> None:
    if os.environ.get("TIMAK_REQUIRE_CASSANDRA") == "1":
        pytest.fail(f"TIMAK_REQUIRE_CASSANDRA=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _drop_keyspace(url: str) -> None:
    """Start from an empty ``timak_test`` (keys() scans the whole table)."""
    from urllib.parse import urlsplit

    from timak.backends import cassandra

    cluster = cassandra.CassandraBackend._make_cluster(cassandra.parse_url(urlsplit(url)))
    try:
        cluster.connect().execute(f'DROP KEYSPACE IF EXISTS "{KEYSPACE}"', timeout=120)
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def cassandra_server() -> Iterator[CassandraServer]:
    url = os.environ.get("TIMAK_CASSANDRA_URL")
    if url:
        yield CassandraServer(url=url, managed=False)
        return
    if shutil.which("java") is None:
        _unavailable(SKIP_REASON)
    server = CassandraServer(url=LOCAL_URL, managed=True)
    if not server.is_up():
        server.started_here = True
        started = time.monotonic()
        server.start()
        print(f"\nintegration/cassandra start took {time.monotonic() - started:.0f} s")
    try:
        _drop_keyspace(server.url)
        yield server
    finally:
        if server.started_here:
            server.stop()


@pytest.fixture(scope="session")
def cassandra_url(cassandra_server: CassandraServer) -> str:
    """A ``cassandra://`` URL of a live server, for a keyspace of this session."""
    return cassandra_server.url
