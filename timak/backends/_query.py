"""Store URL options (``?name=value&...``): one parser and one set of value
rules for every store, so that ``riak://`` and ``cassandra://`` read flags,
numbers and sizes alike and refuse the same mistakes with ``ConfigError``:

* a malformed query, or an option given twice;
* an option the store does not know (the message lists the ones it does);
* a flag other than ``1/true/yes/on`` or ``0/false/no/off``;
* a number, whole number or byte size that does not parse or is out of range.

Messages name the option as the URL wrote it and never repeat credentials.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import SplitResult, parse_qsl

from ..errors import ConfigError

__all__ = ["flag", "number", "parse_size", "query_options", "whole"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_MIB = 1024 * 1024
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "kb": 1024, "kib": 1024, "mb": _MIB, "mib": _MIB,
               "gb": 1024 * _MIB, "gib": 1024 * _MIB}


def query_options(parts: SplitResult, store: str, known: Collection[str]) -> dict[str, str]:
    """The options of a store URL's query, each given at most once and known.

    >>> from urllib.parse import urlsplit
    >>> query_options(urlsplit("riak://h/?tls=1&timeout=5"), "riak", {"tls", "timeout"})
    {'tls': '1', 'timeout': '5'}
    """
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigError(
            f"malformed {store} URL query {parts.query!r}: expected name=value&..."
        ) from None
    options: dict[str, str] = {}
    for name, text in pairs:
        if name in options:
            raise ConfigError(f"{store} URL option {name} given twice")
        if name not in known:
            raise ConfigError(
                f"unknown {store} URL option {name!r}; known: {', '.join(sorted(known))}"
            )
        options[name] = text
    return options


def flag(store: str, name: str, text: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case)."""
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{store} URL option {name} must be 1 or 0 (true or false), got {text!r}")


def whole(store: str, name: str, text: str, *, minimum: int = 1) -> int:
    """A whole number of at least ``minimum``."""
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(
            f"{store} URL option {name} must be a whole number, got {text!r}"
        ) from None
    if value < minimum:
        raise ConfigError(f"{store} URL option {name} must be at least {minimum}, got {value}")
    return value


def number(store: str, name: str, text: str, *, below: float | None = None) -> float:
    """A positive, finite number (seconds, say), smaller than ``below`` if given."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{store} URL option {name} must be a number, got {text!r}") from None
    if not 0 < value < (float("inf") if below is None else below):
        bound = "positive" if below is None else f"in (0, {below:g})"
        raise ConfigError(f"{store} URL option {name} must be {bound}, got {text!r}")
    return value


def parse_size(text: str, name: str = "size") -> int:
    """A byte count from a URL option. Units are 1024-based, as in riak.conf.

    >>> parse_size("5MB"), parse_size("256 KiB"), parse_size("1000")
    (5242880, 262144, 1000)
    """
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"{name} must be a byte count such as 1048576 or 5MB, got {text!r}")
    unit = match.group(2).lower() if match.group(2) else None
    return int(match.group(1)) * _SIZE_UNITS[unit]
