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

Two more clusters of ``integration/cassandra`` have their own work dirs and
addresses, so they run beside the one above (never on 127.0.0.1):

* ``secure_cassandra``: ``--cluster secure``, one node on 127.0.0.5 with
  ``PasswordAuthenticator`` and TLS-only client connections; this fixture adds a
  role with a random password and yields what a client needs to connect;
* ``three_cassandra``: ``--cluster three``, three nodes on 127.0.0.2-4 (the
  partition tests, which also need ``iptables`` and root: ``integration/partition``).

Each is started on first use (Java needed; skipped out loud without it, a
failure under ``TIMAK_REQUIRE_CASSANDRA=1``) and stopped at the end of the
session if this session started it. ``$TIMAK_CASSANDRA_URL`` does not apply to them.

Nothing here reads standard input, so it runs unattended on a clean clone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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


def run_script(
    *args: str, timeout: float = 300.0, cluster: str = "default"
) -> subprocess.CompletedProcess[str]:
    """Run ``integration/cassandra --cluster CLUSTER ARGS`` without a terminal or stdin."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--cluster", cluster, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def script_logs(lines: int = 80, cluster: str = "default") -> str:
    try:
        logs = run_script("logs", "--lines", str(lines), timeout=60, cluster=cluster)
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


# -- the secure node and the three-node cluster -------------------------------------


@dataclass
class ManagedCluster:
    """One ``integration/cassandra --cluster NAME``, started by this session or found up."""

    name: str
    hosts: tuple[str, ...]
    started_here: bool = False
    #: seconds ``start`` took in this session (0 when it was already up)
    start_seconds: float = 0.0

    def run(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        return run_script(*args, timeout=timeout, cluster=self.name)

    def check(self, *args: str, timeout: float = 300.0) -> str:
        """Run a script command; fail the test with the node logs if it fails."""
        result = self.run(*args, timeout=timeout)
        if result.returncode != 0:
            pytest.fail(
                f"integration/cassandra --cluster {self.name} {' '.join(args)} failed:\n"
                + result.stdout + result.stderr
                + "\n--- logs:\n" + script_logs(60, self.name), pytrace=False)
        return result.stdout

    def nodetool(self, node: int, *args: str, timeout: float = 600.0) -> str:
        return self.check("nodetool", "--node", str(node), "--", *args, timeout=timeout)

    def is_up(self) -> bool:
        return self.run("status", timeout=60).returncode == 0

    def logs(self, lines: int = 80) -> str:
        return script_logs(lines, self.name)


@contextlib.contextmanager
def _managed(name: str, hosts: tuple[str, ...]) -> Iterator[ManagedCluster]:
    if shutil.which("java") is None:
        _unavailable(SKIP_REASON)
    cluster = ManagedCluster(name, hosts)
    if not cluster.is_up():
        cluster.started_here = True
        started = time.monotonic()
        try:
            cluster.check("start", timeout=START_TIMEOUT)
        except BaseException:
            cluster.run("stop", timeout=300)  # nothing half-started is left behind
            raise
        cluster.start_seconds = time.monotonic() - started
        print(f"\nintegration/cassandra --cluster {name} start took "
              f"{cluster.start_seconds:.0f} s")
    try:
        yield cluster
    finally:
        if cluster.started_here:
            cluster.run("stop", timeout=300)


@dataclass
class SecureCassandra:
    """The password + TLS node. ``url(**options)`` carries no credentials:
    pass ``user``/``password`` in the URL (``url_with``) or the environment."""

    cluster: ManagedCluster
    host: str
    port: int
    ca: Path
    user: str
    password: str = field(repr=False)
    keyspace: str = "timak_secure"

    def url(self, host: str | None = None, *, user: str | None = None,
            password: str | None = None, **options: object) -> str:
        from urllib.parse import quote

        userinfo = ""
        if user is not None:
            userinfo = quote(user, safe="")
            if password is not None:
                userinfo += ":" + quote(password, safe="")
            userinfo += "@"
        query = {"replication_factor": 1, "tls_ca": str(self.ca), "connect_timeout": 5}
        query.update(options)
        text = "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
        return f"cassandra://{userinfo}{host or self.host}:{self.port}/{self.keyspace}?{text}"

    def app_url(self, **options: object) -> str:
        """The working URL: the test role, its password, the node's CA."""
        return self.url(user=self.user, password=self.password, **options)


def _create_role(secure: SecureCassandra) -> None:
    """Add the test role (the default superuser is created right after startup)."""
    from urllib.parse import urlsplit

    from timak.backends import cassandra
    from timak.errors import TimakError

    admin = secure.url(user="cassandra", password="cassandra")
    deadline = time.monotonic() + 60
    while True:
        try:
            options = cassandra.parse_url(urlsplit(admin))
            with cassandra.map_errors("connect", options):
                cluster = cassandra.CassandraBackend._make_cluster(options)
                try:
                    session = cluster.connect()
                    role = secure.user  # a plain identifier; the password is bound
                    session.execute(f"CREATE ROLE IF NOT EXISTS {role} "
                                    "WITH PASSWORD = %s AND LOGIN = true", (secure.password,))
                    session.execute(f"ALTER ROLE {role} WITH PASSWORD = %s", (secure.password,))
                    session.execute(f'DROP KEYSPACE IF EXISTS "{secure.keyspace}"', timeout=120)
                finally:
                    cluster.shutdown()
            return
        except TimakError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.fixture(scope="session")
def secure_cassandra() -> Iterator[SecureCassandra]:
    """The ``secure`` cluster with a role ``timak_app`` whose password is new each session."""
    with _managed("secure", ("127.0.0.5",)) as cluster:
        home = Path(os.environ.get("TIMAK_CASSANDRA_HOME") or SCRIPT.with_name(".cassandra"))
        ca = home.with_name(home.name + "-secure") / "tls" / "ca.pem"
        secure = SecureCassandra(cluster, "127.0.0.5", 9042, ca.resolve(), "timak_app",
                                 "pw-" + secrets.token_urlsafe(16))
        _create_role(secure)
        yield secure


@pytest.fixture(scope="session")
def three_cassandra() -> Iterator[ManagedCluster]:
    """The ``three`` cluster: nodes 1-3 on 127.0.0.2, 127.0.0.3, 127.0.0.4."""
    with _managed("three", ("127.0.0.2", "127.0.0.3", "127.0.0.4")) as cluster:
        yield cluster
