"""Checks for constructor options, shared by every layer. Pure, no I/O.

Each raises ``ConfigError`` naming the option and what it got, so a bad
option fails where it is given, not later inside a write.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .errors import ConfigError
from .value import INT64_RANGE

__all__ = ["checked_clock", "flag_option", "int_option", "number_option"]


def int_option(name: str, value: object, least: int, most: int | None = None) -> int:
    """``value`` if it is an ``int`` (not a bool) in ``[least, most]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an int, got {type(value).__name__}: {value!r:.80}")
    if value < least or (most is not None and value > most):
        bound = f"at least {least}" if most is None else f"from {least} to {most}"
        raise ConfigError(f"{name} must be an int {bound}, got {value!r}")
    return value


def number_option(name: str, value: object, *, positive: bool = False) -> float:
    """``value`` if it is a finite int or float, ``> 0`` when ``positive``
    (else ``>= 0``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r:.80}")
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"{name} must be {'positive' if positive else 'at least 0'}, "
                          f"got {value!r}")
    return float(value)


def flag_option(name: str, value: object) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r:.80}")
    return value


def checked_clock(clock: object) -> Callable[[], int]:
    """``clock`` wrapped so that every reading is checked, after one reading
    up front.

    Records store the clock's reading as their arrival time, and a value
    whose arrival is not an int of microseconds in ``[0, 2**63)`` does not
    decode: a write with such a reading would be acknowledged, then every
    read of its key would fail. So a clock must return an ``int`` of
    microseconds since the epoch (``time.time`` returns float seconds: use
    ``timak.timelines.now_us``); anything else raises ``ConfigError`` before
    a write, here or at the reading that goes wrong.
    """
    if not callable(clock):
        raise ConfigError(f"clock must be a callable returning µs, got {clock!r:.80}")

    def reading() -> int:
        now = clock()
        if type(now) is not int or not 0 <= now <= INT64_RANGE[1]:
            raise ConfigError(
                f"clock {clock!r:.60} returned {now!r:.40}; a clock must return an int "
                f"of microseconds since the epoch in [0, 2**63) (e.g. time.time_ns() // 1000)"
            )
        return now

    reading()
    return reading
