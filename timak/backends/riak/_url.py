"""Riak store URLs: ``riak://[user:password@]host[:8098]/?options``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import SplitResult, parse_qsl, unquote

from ...errors import (
    ConfigError,
    TimakError,
)
from ._backend import RiakBackend
from ._common import (
    DEFAULT_BUCKET_TYPE,
    DEFAULT_COUNT_SIBLINGS_BELOW,
    DEFAULT_MAX_SIZE,
    DEFAULT_WARN_SIZE,
    parse_size,
)

_OPTIONS = {
    "bucket_type", "r", "pr", "w", "dw", "pw", "timeout", "connect_timeout", "retries",
    "max_connections", "warn_size", "max_size", "count_siblings_below", "check_props",
    "tls", "ca_certs",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(options: Mapping[str, str], name: str, default: bool) -> bool:
    text = options.get(name)
    if text is None:
        return default
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {text!r}")


def _number(options: Mapping[str, str], name: str, default: float) -> float:
    text = options.get(name)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {text!r}") from None


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
    try:
        pairs = parse_qsl(url.query, keep_blank_values=True, strict_parsing=bool(url.query))
    except ValueError:
        raise ConfigError(f"malformed query in {shown!r}") from None
    options = dict(pairs)
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigError(
            f"unknown Riak options {sorted(unknown)} in {shown!r}; known: {sorted(_OPTIONS)}"
        )
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
            timeout=_number(options, "timeout", 10.0),
            connect_timeout=_number(options, "connect_timeout", 3.0),
            retries=int(_number(options, "retries", 2)),
            max_connections=int(_number(options, "max_connections", 16)),
            warn_size=parse_size(options.get("warn_size", str(DEFAULT_WARN_SIZE)), "warn_size"),
            max_size=parse_size(options.get("max_size", str(DEFAULT_MAX_SIZE)), "max_size"),
            count_siblings_below=parse_size(
                options.get("count_siblings_below", str(DEFAULT_COUNT_SIBLINGS_BELOW)),
                "count_siblings_below",
            ),
            check_props=_flag(options, "check_props", True),
            tls=url.scheme == "riaks" or _flag(options, "tls", False),
            ca_certs=options.get("ca_certs") or None,
            username=username,
            password=password,
        )
    except ValueError as exc:
        if isinstance(exc, TimakError):
            raise
        raise ConfigError(f"bad Riak URL {shown!r}: {exc}") from exc
