"""Driver exceptions -> timak exceptions for the Cassandra backend, in one place.

``map_errors`` wraps every driver call of ``timak.backends.cassandra``;
``error_class`` is the table behind it. When no host can be used, the message
says why for each host (credentials refused or missing, an untrusted TLS
certificate, one that names another host, TLS spoken to a plaintext port, a
plaintext client at a TLS-only node) and never contains the user name or
password. Imported by ``timak.backends.cassandra`` only after the driver
import succeeded.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING

import cassandra
import cassandra.cluster
import cassandra.connection
import cassandra.pool
import cassandra.protocol

from ...errors import (
    BackendError,
    BackendTimeoutError,
    ConfigError,
    TimakError,
    UnavailableError,
)

if TYPE_CHECKING:
    from ._options import CassandraOptions

__all__ = ["error_class", "map_errors"]

#: Driver exception -> timak exception; the first matching row wins, so more
#: specific classes come first. ``error_class`` adds the catch-alls.
_ERROR_TABLE: tuple[tuple[type[BaseException], type[TimakError]], ...] = (
    # Credentials and permissions are configuration, not outages.
    (cassandra.AuthenticationFailed, ConfigError),
    (cassandra.Unauthorized, ConfigError),
    (cassandra.protocol.BadCredentials, ConfigError),
    (cassandra.protocol.UnauthorizedErrorMessage, ConfigError),
    (cassandra.UnresolvableContactPoints, ConfigError),
    (cassandra.ConfigurationException, ConfigError),
    (cassandra.protocol.ConfigurationException, ConfigError),
    (cassandra.protocol.SyntaxException, ConfigError),
    # Not enough replicas, nobody reachable, node starting or overloaded.
    (cassandra.Unavailable, UnavailableError),
    (cassandra.protocol.UnavailableErrorMessage, UnavailableError),
    (cassandra.protocol.IsBootstrappingErrorMessage, UnavailableError),
    (cassandra.protocol.OverloadedErrorMessage, UnavailableError),
    (cassandra.cluster.NoHostAvailable, UnavailableError),
    (cassandra.connection.ConnectionException, UnavailableError),
    (cassandra.connection.ConnectionBusy, UnavailableError),
    (cassandra.pool.NoConnectionsAvailable, UnavailableError),
    # No answer in time: the write may or may not have been applied.
    (cassandra.Timeout, BackendTimeoutError),
    (cassandra.OperationTimedOut, BackendTimeoutError),
    (cassandra.protocol.ReadTimeoutErrorMessage, BackendTimeoutError),
    (cassandra.protocol.WriteTimeoutErrorMessage, BackendTimeoutError),
    # Everything else the driver raises: ReadFailure, WriteFailure,
    # InvalidRequest, ServerError, ProtocolException, ...
    (cassandra.DriverException, BackendError),
    (cassandra.protocol.ErrorMessage, BackendError),
    # Sockets and TLS failing under the driver.
    (OSError, UnavailableError),
)


def error_class(exc: BaseException) -> type[TimakError] | None:
    """The timak exception class a driver exception maps to, or ``None`` for
    exceptions that are not the driver's (programming errors propagate).

    ``NoHostAvailable`` is a ``ConfigError`` when every host failed for a
    reason that retrying cannot fix (credentials refused or missing, a TLS
    certificate that is untrusted or names another host, TLS spoken to a
    plaintext port); otherwise an ``UnavailableError``.
    """
    if isinstance(exc, cassandra.cluster.NoHostAvailable):
        causes = list((getattr(exc, "errors", None) or {}).values())
        if causes and all(_host_problem(c)[0] is ConfigError for c in causes):
            return ConfigError
        return UnavailableError
    for driver_class, timak_class in _ERROR_TABLE:
        if isinstance(exc, driver_class):
            return timak_class
    if type(exc).__module__.split(".")[0] == "cassandra":
        return BackendError
    return None


#: What OpenSSL says when a TLS client meets a plaintext server.
_NOT_TLS = ("WRONG_VERSION_NUMBER", "wrong version number", "RECORD_LAYER_FAILURE",
            "packet length too long", "http request")


def _host_problem(cause: BaseException) -> tuple[type[TimakError] | None, str]:
    """Why one host refused a connection: the timak class and a sentence that
    names the problem without quoting the driver (whose text may carry the
    user name). The driver wraps TLS failures in plain ``OSError``s, so the
    TLS cases are told apart by OpenSSL's words."""
    text = str(cause)
    if isinstance(cause, (cassandra.AuthenticationFailed, cassandra.protocol.BadCredentials)):
        if "requires authentication" in text:
            return ConfigError, (
                "authentication required: the server wants a user name and password "
                "(in the URL, or TIMAK_CASSANDRA_USER / TIMAK_CASSANDRA_PASSWORD)")
        return ConfigError, "wrong password or user name: the server refused the credentials"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        reason = text.split("certificate verify failed:", 1)[-1].split("(_ssl.c", 1)[0]
        reason = reason.strip().rstrip(".")
        if "mismatch" in reason:
            return ConfigError, (
                f"TLS hostname mismatch: the server's certificate is not valid for the "
                f"address connected to ({reason}); connect by a name or address it lists, "
                "or set tls_check_hostname=0 to skip only this check")
        return ConfigError, (
            f"untrusted TLS certificate: the server's certificate is not signed by a CA "
            f"the client trusts (tls_ca, else the system's) ({reason})")
    if any(marker in text for marker in _NOT_TLS):
        return ConfigError, "TLS to a plaintext port: the server does not speak TLS there"
    return error_class(cause), f"{type(cause).__name__}: {text}"


def _speaks_tls(host: str, port: int, timeout: float) -> bool:
    """True if ``host:port`` completes a TLS handshake (certificate unchecked).

    Asked only after a plaintext connection was reset or closed before the
    server said anything, to tell "this node requires TLS" from an outage."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            context.wrap_socket(sock),
        ):
            return True
    except (OSError, ValueError):
        return False


def _endpoint(where: object, default_port: int) -> tuple[str, int]:
    address = getattr(where, "address", None)
    if address is not None:
        return str(address), int(getattr(where, "port", default_port) or default_port)
    host, _, port = str(where).rpartition(":")
    return (host, int(port)) if host and port.isdigit() else (str(where), default_port)


def _explain(
    exc: BaseException, options: CassandraOptions | None
) -> tuple[type[TimakError] | None, str]:
    """The class and message for ``exc``, per host for ``NoHostAvailable``.

    With ``options`` (the connect path), a plaintext connection that the
    server reset is checked for a TLS-only port. The user name and password
    of ``options`` never appear in the message.
    """
    timak_class = error_class(exc)
    if not isinstance(exc, cassandra.cluster.NoHostAvailable):
        return timak_class, _scrub(f"{type(exc).__name__}: {exc}", options)
    per_host: list[str] = []
    classes: list[type[TimakError] | None] = []
    for where, cause in (getattr(exc, "errors", None) or {}).items():
        cls, why = _host_problem(cause)
        reset = isinstance(cause, (ConnectionResetError, cassandra.connection.ConnectionShutdown))
        if options is not None and not options.tls and cls is not ConfigError and reset:
            host, port = _endpoint(where, options.port)
            if _speaks_tls(host, port, options.connect_timeout):
                cls, why = ConfigError, (
                    "plaintext client to a TLS-only node: the server closed the plaintext "
                    "connection and answers TLS; add tls=1 (and tls_ca=<CA file>)")
        classes.append(cls)
        per_host.append(f"{where}: {why}")
    if classes and all(c is ConfigError for c in classes):
        timak_class = ConfigError
    hosts = "; ".join(per_host) or str(exc)
    return timak_class, _scrub(f"no host could be used ({hosts})", options)


def _scrub(text: str, options: CassandraOptions | None) -> str:
    """``text`` without the configured user name or password."""
    if options is not None:
        for secret in (options.password, options.username):
            if secret:
                text = text.replace(secret, "***")
    return text


@contextlib.contextmanager
def map_errors(action: str, options: CassandraOptions | None = None) -> Iterator[None]:
    """Re-raise driver exceptions as timak exceptions (cause kept in ``__cause__``).

    ``options``: the connection's, so the message can leave its credentials out
    and say which TLS or authentication problem stopped a connect.
    """
    try:
        yield
    except TimakError:
        raise
    except Exception as exc:
        timak_class, message = _explain(exc, options)
        if timak_class is None:
            raise
        raise timak_class(f"cassandra {action} failed: {message}") from exc
