"""Riak store URLs: ``riak://[user:password@]host[:8098]/?options``."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import SplitResult, unquote

from ...errors import (
    ConfigError,
    TimakError,
)
from .._query import flag, number, parse_size, query_options, whole
from ._backend import RiakBackend
from ._common import (
    DEFAULT_BUCKET_TYPE,
    DEFAULT_COUNT_SIBLINGS_BELOW,
    DEFAULT_MAX_SIZE,
    DEFAULT_WARN_SIZE,
)

_OPTIONS = {
    "bucket_type", "r", "pr", "w", "dw", "pw", "timeout", "connect_timeout", "retries",
    "max_connections", "warn_size", "max_size", "count_siblings_below", "check_props",
    "tls", "ca_certs",
}


def from_url(url: SplitResult) -> RiakBackend:
    """``riak://[user:pass@]host[:port]/?bucket_type=timak&...``; ``riaks://`` is HTTPS.

    Credentials come from the URL, else ``TIMAK_RIAK_USER`` and
    ``TIMAK_RIAK_PASSWORD``. Unknown options raise ``ConfigError``.
    """
    # Never echo a password back in an error message.
    port = f":{url.port}" if url.port else ""
    shown = url._replace(netloc=f"{url.hostname or ''}{port}").geturl()
    if url.path not in ("", "/"):
        raise ConfigError(f"Riak URLs take options, not a path: {shown!r}")
    options = query_options(url, "riak", _OPTIONS)
    if not url.hostname:
        raise ConfigError(f"Riak URL names no host: {shown!r}")
    username = unquote(url.username) if url.username is not None else None
    password = unquote(url.password) if url.password is not None else None
    if username is None:
        username = os.environ.get("TIMAK_RIAK_USER") or None
        password = os.environ.get("TIMAK_RIAK_PASSWORD") if username else None
        if username is not None and password is None:
            raise ConfigError("TIMAK_RIAK_USER is set but TIMAK_RIAK_PASSWORD is not")
    elif password is None:
        password = os.environ.get("TIMAK_RIAK_PASSWORD")
        if password is None:
            raise ConfigError("the Riak URL names a user but no password (nor TIMAK_RIAK_PASSWORD)")
    def get(name: str, parse: Callable[[str, str, str], Any], default: Any) -> Any:
        return default if name not in options else parse("riak", name, options[name])

    def size(_store: str, name: str, text: str) -> int:
        return parse_size(text, name)

    try:
        return RiakBackend(
            url.hostname,
            url.port or 8098,
            bucket_type=options.get("bucket_type", DEFAULT_BUCKET_TYPE),
            r=options.get("r"),
            pr=options.get("pr"),
            w=options.get("w"),
            dw=options.get("dw"),
            pw=options.get("pw"),
            timeout=get("timeout", number, 10.0),
            connect_timeout=get("connect_timeout", number, 3.0),
            retries=get("retries", partial(whole, minimum=0), 2),
            max_connections=get("max_connections", whole, 16),
            warn_size=get("warn_size", size, DEFAULT_WARN_SIZE),
            max_size=get("max_size", size, DEFAULT_MAX_SIZE),
            count_siblings_below=get("count_siblings_below", size, DEFAULT_COUNT_SIBLINGS_BELOW),
            check_props=get("check_props", flag, True),
            tls=url.scheme == "riaks" or get("tls", flag, False),
            ca_certs=options.get("ca_certs") or None,
            username=username,
            password=password,
        )
    except ValueError as exc:
        if isinstance(exc, TimakError):
            raise
        raise ConfigError(f"bad Riak URL {shown!r}: {exc}") from exc
