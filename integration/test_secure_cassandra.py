"""Passwords and TLS against a real Cassandra node (``secure_cassandra``, 127.0.0.5).

The node requires ``PasswordAuthenticator`` credentials and speaks TLS only
(a throw-away CA, integration/certs.py). Checked here:

* the conformance suite and ``timak demo`` over TLS with a password;
* each way of getting it wrong is a typed error whose message names the
  problem, and the CLI exits 2 (bad configuration) for it, 3 when nothing
  answers: wrong password, no credentials, a CA that did not sign the node's
  certificate, a certificate for another address (and the same with
  ``tls_check_hostname=0``, which then connects), a plaintext client;
* the password never appears in an error message, traceback, log line or
  ``repr``, and the user name not in timak's messages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from timak import Timeline
from timak.backends import connect
from timak.backends.base import Backend
from timak.errors import ConfigError, TimakError, UnavailableError
from timak.testing import BackendConformance

driver = pytest.importorskip("cassandra")
certs = pytest.importorskip("certs", reason="integration/certs.py needs cryptography")
from timak.backends import cassandra as cb  # noqa: E402
from timak.cli import main as cli_main  # noqa: E402

#: ``SecureCassandra`` from conftest.py (test modules cannot import it by name).
Secure = Any

pytestmark = pytest.mark.cassandra

#: Where the relay for the hostname test listens: an address the node's certificate
#: does not list, forwarding to the node.
RELAY_HOST = "127.0.0.6"


class TestSecureConformance(BackendConformance):
    @pytest.fixture
    def connect(self, secure_cassandra: Secure) -> Callable[[], Backend]:
        return lambda: connect(secure_cassandra.app_url())


def test_demo_over_tls_with_a_password(secure_cassandra: Secure) -> None:
    """``timak demo`` end to end (writer processes, fan-out, check) on the secure node,
    the password in the URL; the store line it prints must not show it."""
    env = dict(os.environ)
    env.pop("TIMAK_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "timak", "--url", secure_cassandra.app_url(), "demo",
         "--users", "60", "--follows", "8", "--posts", "3", "--writers", "2"],
        capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "nothing lost" in output
    assert "store cassandra://***@127.0.0.5" in output
    assert secure_cassandra.password not in output


def test_credentials_from_the_environment(
    secure_cassandra: Secure, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TIMAK_CASSANDRA_USER", secure_cassandra.user)
    monkeypatch.setenv("TIMAK_CASSANDRA_PASSWORD", secure_cassandra.password)
    url = secure_cassandra.url()
    assert cli_main(["--url", url, "cassandra", "init"]) == 0
    out = capsys.readouterr()
    assert "siblings: " in out.out
    assert secure_cassandra.password not in out.out + out.err
    with Timeline(url, bucket=f"b-{uuid.uuid4().hex[:8]}", max_items=5) as tl:
        tl.add("k", "one", 1)
        assert tl.get("k") == ["one"]
        assert secure_cassandra.password not in repr(tl) + repr(tl.connection)
        assert secure_cassandra.password not in repr(tl.connection.options)  # type: ignore[attr-defined]


# -- getting it wrong ------------------------------------------------------------------


class _Relay:
    """A TCP relay from RELAY_HOST:port to the node, so that the client connects to an
    address the node's certificate does not name (what a load balancer, a NAT or a
    wrong DNS entry in front of the node looks like)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server((RELAY_HOST, target[1]))
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                return
            with upstream:
                upstream.settimeout(None)
                back = threading.Thread(target=self._pipe, args=(upstream, client))
                back.start()
                self._pipe(client, upstream)
                back.join()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def relay(secure_cassandra: Secure) -> Iterator[str]:
    forwarder = _Relay((secure_cassandra.host, secure_cassandra.port))
    try:
        yield RELAY_HOST
    finally:
        forwarder.close()


@pytest.fixture(scope="module")
def rogue_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA of the right shape that did not sign the node's certificate."""
    _, cert = certs.make_ca("timak test CA")  # same name as the real one, other key
    path = tmp_path_factory.mktemp("rogue") / "ca.pem"
    path.write_bytes(certs.pem(cert))
    return path


def _cases(secure: Secure, relay: str, rogue_ca: Path) -> dict[str, tuple[str, str, int]]:
    """name -> (URL, what the message must say, CLI exit code)."""
    wrong = "not-" + secure.password
    return {
        "wrong password": (
            secure.url(user=secure.user, password=wrong), "wrong password", 2),
        "no credentials": (secure.url(), "authentication required", 2),
        "untrusted CA": (
            secure.url(user=secure.user, password=secure.password, tls_ca=rogue_ca),
            "untrusted TLS certificate", 2),
        "hostname mismatch": (
            secure.url(relay, user=secure.user, password=secure.password),
            "TLS hostname mismatch", 2),
        "plaintext client": (
            secure.url(user=secure.user, password=secure.password, tls_ca=None),
            "plaintext client to a TLS-only node", 2),
        "nothing listening": (
            secure.url(user=secure.user, password=secure.password).replace(":9042/", ":9/"),
            "no host could be used", 3),
    }


CASES = ["wrong password", "no credentials", "untrusted CA", "hostname mismatch",
         "plaintext client", "nothing listening"]


def _everything_said(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """The error as str and repr, its whole traceback (causes included), and every
    log record of the attempt."""
    return "\n".join([
        str(exc), repr(exc), *traceback.format_exception(type(exc), exc, exc.__traceback__),
        *(record.getMessage() for record in caplog.records),
        *(str(record.exc_info) for record in caplog.records if record.exc_info),
    ])


@pytest.mark.parametrize("case", CASES)
def test_a_misconfigured_client_gets_a_typed_error_that_names_the_problem(
    case: str, secure_cassandra: Secure, relay: str, rogue_ca: Path,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    url, says, exit_code = _cases(secure_cassandra, relay, rogue_ca)[case]
    expected = ConfigError if exit_code == 2 else UnavailableError
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TimakError) as raised:
        connect(url)
    exc = raised.value
    assert type(exc) is expected, f"{case}: {type(exc).__name__}: {exc}"
    assert says in str(exc), str(exc)
    said = _everything_said(exc, caplog)
    assert secure_cassandra.password not in said
    assert "not-" + secure_cassandra.password not in said
    assert secure_cassandra.user not in str(exc)

    assert cli_main(["--url", url, "cassandra", "init"]) == exit_code
    err = capsys.readouterr().err
    assert says in err
    assert secure_cassandra.password not in err and secure_cassandra.user not in err


def test_tls_check_hostname_0_skips_only_the_name_check(
    secure_cassandra: Secure, relay: str, rogue_ca: Path
) -> None:
    """Through the relay, the certificate names another address: refused by default,
    accepted with tls_check_hostname=0; a CA that did not sign it is still refused."""
    creds = {"user": secure_cassandra.user, "password": secure_cassandra.password}
    with connect(secure_cassandra.url(relay, tls_check_hostname=0, **creds)) as backend:
        backend.store("relay", "k", b"through the relay")
        assert backend.fetch("relay", "k").siblings == [b"through the relay"]
        backend.delete("relay", "k")
    with pytest.raises(ConfigError, match="untrusted TLS certificate"):
        connect(secure_cassandra.url(relay, tls_check_hostname=0, tls_ca=rogue_ca, **creds))


def test_credentials_do_not_leak_from_a_working_connection(
    secure_cassandra: Secure, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with connect(secure_cassandra.app_url()) as backend:
        backend.store("leak", "k", b"v")
        shown = [repr(backend), repr(backend.options), str(backend.options)]  # type: ignore[attr-defined]
    shown += [record.getMessage() for record in caplog.records]
    assert caplog.records, "the driver logs at DEBUG; nothing captured means no check"
    assert not [line for line in shown if secure_cassandra.password in line]
    assert not [line for line in shown[:3] if secure_cassandra.user in line]


def test_error_class_reads_tls_failures_from_the_drivers_wrapped_oserrors() -> None:
    """No server: the driver turns an SSLError into PermissionError(1, text); the text
    is what is left to tell the cases apart."""
    no_host = driver.cluster.NoHostAvailable
    untrusted = PermissionError(1, "Tried connecting to [('h', 9042)]. Last error: [SSL: "
                                "CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                "self-signed certificate in certificate chain (_ssl.c:1006)")
    refused = ConnectionRefusedError(111, "Connection refused")
    assert cb.error_class(no_host("x", {"h:9042": untrusted})) is ConfigError
    assert cb.error_class(no_host("x", {"h:9042": untrusted, "g:9042": refused})) is (
        UnavailableError)
    assert cb.error_class(no_host("x", {"h:9042": refused})) is UnavailableError


def test_redact_url_hides_the_userinfo() -> None:
    from timak.backends import redact_url

    assert redact_url("cassandra://u:p%40ss@h1,h2:9042/ks?tls=1") == (
        "cassandra://***@h1,h2:9042/ks?tls=1")
    assert redact_url("cassandra://h/ks") == "cassandra://h/ks"
    assert redact_url("sqlite:///dir@x/a.db") == "sqlite:///dir@x/a.db"  # a path, not userinfo
    from urllib.parse import urlsplit

    options = cb.parse_url(urlsplit("cassandra://app-user:s3cret@h/ks"))
    assert "s3cret" not in repr(options) and "app-user" not in repr(options)
    with pytest.raises(ConfigError) as raised:
        connect("cassandra://app-user:s3cret@h:notaport/ks")
    assert "s3cret" not in str(raised.value)


def test_pin_hosts_makes_a_white_list_policy() -> None:
    from urllib.parse import urlsplit

    policies = driver.policies
    for url, child in (("cassandra://10.0.0.1,10.0.0.2/ks?pin_hosts=1",
                        policies.WhiteListRoundRobinPolicy),
                       ("cassandra://10.0.0.1,10.0.0.2/ks", policies.DCAwareRoundRobinPolicy)):
        cluster = cb.CassandraBackend._make_cluster(cb.parse_url(urlsplit(url)))
        try:
            policy = cluster.profile_manager.default.load_balancing_policy
            assert isinstance(policy, policies.TokenAwarePolicy)
            assert isinstance(policy._child_policy, child), url
        finally:
            cluster.shutdown()
