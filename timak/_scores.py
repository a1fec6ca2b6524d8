"""Turning what callers pass as a score into a stored score. Pure, no I/O.

=====================================  =========================================
caller passes                          stored score
=====================================  =========================================
``int`` / ``float`` (finite)           itself
aware ``datetime``                     microseconds since the Unix epoch (int)
naive ``datetime``                     the same, reading it as UTC
``date``                               its midnight, UTC
ISO-8601 ``str``                       parsed by python-dateutil, then as above
=====================================  =========================================

Microsecond integers sort exactly like the datetimes they came from and keep
their full precision, which a float of seconds would not. Calls that take
two datetimes (a range) refuse a naive one beside an aware one: the naive
one is almost always local time by mistake.
"""

from __future__ import annotations

import datetime as dt

from dateutil import parser as date_parser

from .errors import InvalidScoreError
from .value import Score, check_score

__all__ = ["ScoreLike", "from_datetime", "to_datetime", "to_score", "to_scores"]

ScoreLike = int | float | dt.datetime | dt.date | str
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICRO = dt.timedelta(microseconds=1)


def from_datetime(when: dt.datetime) -> int:
    """Microseconds since the epoch; a naive ``when`` is read as UTC."""
    if when.tzinfo is None or when.utcoffset() is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return (when - _EPOCH) // _MICRO


def to_datetime(score: Score) -> dt.datetime:
    """The aware UTC datetime for a score made from a datetime."""
    try:
        return _EPOCH + dt.timedelta(microseconds=int(score))
    except OverflowError:
        raise InvalidScoreError(f"score {score} is not a datetime score") from None


def to_score(score: object) -> Score:
    """Convert one caller-given score; raise ``InvalidScoreError`` if unusable."""
    if isinstance(score, str):
        score = _parse_iso(score)
    if isinstance(score, dt.datetime):
        return from_datetime(score)
    if isinstance(score, dt.date):
        return from_datetime(dt.datetime(score.year, score.month, score.day))
    return check_score(score)


def to_scores(*scores: object) -> list[Score | None]:
    """Convert several scores given in one call (``None`` passes through).

    Raises ``InvalidScoreError`` if naive and aware datetimes are mixed.
    """
    parsed = [_parse_iso(s) if isinstance(s, str) else s for s in scores]
    kinds = {_is_aware(s) for s in parsed if isinstance(s, dt.datetime)}
    if len(kinds) > 1:
        raise InvalidScoreError(
            "cannot mix naive and timezone-aware datetimes in one call; "
            "give both a tzinfo (naive ones are read as UTC)"
        )
    return [None if s is None else to_score(s) for s in parsed]


def _is_aware(when: dt.datetime) -> bool:
    return when.tzinfo is not None and when.utcoffset() is not None


def _parse_iso(text: str) -> dt.datetime:
    try:
        return date_parser.isoparse(text)
    except (ValueError, OverflowError) as exc:
        raise InvalidScoreError(f"score {text!r:.80} is not an ISO-8601 datetime: {exc}") from None
