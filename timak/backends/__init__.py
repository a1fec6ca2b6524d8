"""Layer 2: stores that keep opaque sibling bytes under keys behind one small
Riak-shaped contract (``base.Backend``), and ``connect(url)`` to open one.

==================================================  ==================================
URL                                                 store
==================================================  ==================================
``memory://`` / ``memory://NAME``                   in-process (private / shared)
``sqlite:///relative.db`` / ``sqlite:////abs.db``   SQLite file, the embedded default
``cassandra://h1,h2:9042/keyspace?consistency=..``  Apache Cassandra cluster
``riak://host:8098/?bucket_type=timak``             Riak KV over its HTTP API
==================================================  ==================================
"""

from __future__ import annotations

import importlib
import os
import re
from typing import TypeVar
from urllib.parse import SplitResult, urlsplit

from ..errors import ConfigError
from .base import MAX_KEY_BYTES, Backend, Fetched, Narrowing, StoreResult

__all__ = [
    "Backend",
    "DEFAULT_URL",
    "ENTRY_POINT_GROUP",
    "Fetched",
    "MAX_KEY_BYTES",
    "Narrowing",
    "SCHEMES",
    "StoreResult",
    "UsesBackend",
    "connect",
    "default_url",
    "redact_url",
    "split_url",
]

#: The embedded default store: a SQLite file in the working directory.
DEFAULT_URL = "sqlite:///timak.db"


def default_url() -> str:
    """``$TIMAK_URL`` if set, else ``DEFAULT_URL``."""
    return os.environ.get("TIMAK_URL") or DEFAULT_URL


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@")


def redact_url(url: str) -> str:
    """``url`` with its userinfo (user name and password) replaced by ``***``,
    for messages and logs: a URL may carry credentials, and they must not."""
    return _USERINFO.sub(r"\1***@", url) if isinstance(url, str) else url


#: URL scheme -> module implementing it. Each module has ``from_url(SplitResult)``.
#: Modules are imported only when their scheme is used, so a missing optional
#: driver matters only to the people who use that store.
SCHEMES = {
    "memory": "timak.backends.memory",
    "sqlite": "timak.backends.sqlite",
    "cassandra": "timak.backends.cassandra",
    "riak": "timak.backends.riak",
    "riaks": "timak.backends.riak",
}


class _StoreURL(SplitResult):
    """A split store URL whose ``geturl()`` gives back what the user wrote:
    ``urlsplit("sqlite://").geturl()`` is ``"sqlite:"``, which error messages
    then echoed as if the user had written that."""

    __slots__ = ()

    def geturl(self) -> str:
        query = f"?{self.query}" if self.query else ""
        fragment = f"#{self.fragment}" if self.fragment else ""
        return f"{self.scheme}://{self.netloc}{self.path}{query}{fragment}"


def split_url(url: str) -> SplitResult:
    """Split a store URL; raise ``ConfigError`` if it is not one.

    >>> split_url("sqlite://").geturl()
    'sqlite://'
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"expected a store URL such as 'sqlite:///timak.db', got {redact_url(url)!r}"
        )
    try:
        parts = _StoreURL(*urlsplit(url))
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as exc:
        # Not chained: the cause could repeat the URL, credentials included.
        raise ConfigError(f"malformed store URL {redact_url(url)!r}: {exc}") from None
    return parts


def connect(url: str) -> Backend:
    """Open the store that ``url`` names.

    >>> backend = connect("memory://")
    >>> backend.fetch("timelines", "nobody")
    Fetched(siblings=[])

    Raises ``ConfigError`` for an unknown scheme or malformed URL, and
    ``MissingDriverError`` when the store's driver package is not installed.
    """
    parts = split_url(url)
    module_name = SCHEMES.get(parts.scheme) or _plugins().get(parts.scheme)
    if module_name is None:
        known = ", ".join(f"{s}://" for s in sorted({*SCHEMES, *_plugins()}))
        raise ConfigError(
            f"unknown store {parts.scheme!r} in {redact_url(url)!r}; known: {known}"
        )
    module = importlib.import_module(module_name)
    backend: Backend = module.from_url(parts)
    return backend


#: The entry-point group through which other packages add stores:
#: ``[options.entry_points] timak.backends = myscheme = mypackage.mystore``
#: names a module with ``from_url(SplitResult) -> Backend``, as the
#: built-in backend modules have.
ENTRY_POINT_GROUP = "timak.backends"


def _plugins() -> dict[str, str]:
    """Third-party schemes -> module names, from installed packages' entry
    points. Built-in schemes cannot be taken over: ``SCHEMES`` is looked up first."""
    # Imported here: scanning installed distributions is only needed for a
    # scheme that is not built in, and the import alone costs every start.
    import importlib.metadata

    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep.value for ep in found if ep.name not in SCHEMES}


_Self = TypeVar("_Self", bound="UsesBackend")


class UsesBackend:
    """Base for objects built on one store (``Timeline``, ``Feed``).

    They take a ``Backend``, a store URL, a path (``os.PathLike``, such as
    Django's ``BASE_DIR / "timak.db"``: a SQLite file), or ``None``
    (``default_url()``); anything else raises ``ConfigError`` here, not at
    the first call. ``close()`` closes the backend only if they opened it
    themselves.
    """

    connection: Backend
    _owns_connection: bool

    def _use_backend(self, connection: Backend | str | os.PathLike[str] | None) -> None:
        if connection is None:
            connection = default_url()
        if isinstance(connection, Backend):
            self._owns_connection = False
            self.connection = connection
            return
        if isinstance(connection, os.PathLike):
            from .sqlite import SQLiteBackend

            self.connection = SQLiteBackend(connection)
        elif isinstance(connection, str):
            self.connection = connect(connection)
        else:
            raise ConfigError(
                "connection must be a store URL (such as 'sqlite:///timak.db'), a path to "
                f"a SQLite file, or a backend from timak.connect(url), got {connection!r:.80}"
            )
        self._owns_connection = True

    def close(self) -> None:
        """Close the backend if this object opened it from a URL."""
        if self._owns_connection:
            self.connection.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
