"""How the command line shows scores, ids and data. No I/O beyond printing.

Scores carry no type: a datetime is stored as microseconds since the epoch,
an ``int`` like any other (see ``timak._scores``). So the shell guesses, and
says how in ``--scores``:

* ``auto`` (the default): an integer score between 2001-01-01 and
  2100-01-01 in microseconds is shown as an ISO-8601 datetime, anything else
  as the number. A counter or a small number never looks like a date; an
  integer score that happens to fall in that range (above 9.8e14) does.
* ``iso``: every score that fits the datetime range is shown as a datetime.
* ``raw``: numbers only.

JSON output always carries the raw ``score`` beside ``datetime`` (the ISO
text, or ``null`` where ``--scores`` does not show one), and is always valid
JSON: non-finite floats that a Python writer stored in ``obj_data`` come out
as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, bytes as
``{"base64": ...}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import Any

from .._scores import to_datetime

__all__ = [
    "SCORE_MODES", "datetime_text", "dump_json", "iso", "print_table", "score_text", "text",
]

SCORE_MODES = ("auto", "iso", "raw")
#: Integer scores in this range (2001-01-01 to 2100-01-01, in µs) look like datetimes.
AUTO_RANGE = (978_307_200_000_000, 4_102_444_800_000_000)
_MIN_US = -62_135_596_800_000_000  # 0001-01-01
_MAX_US = 253_402_300_799_999_999  # 9999-12-31


def iso(micros: int) -> str:
    """``micros`` since the epoch as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return to_datetime(micros).isoformat(timespec="microseconds").replace("+00:00", "Z")


def datetime_text(score: float, mode: str = "auto") -> str | None:
    """The ISO-8601 text of ``score`` if ``mode`` shows it as a datetime, else None."""
    if mode == "raw" or isinstance(score, bool):
        return None
    if mode == "auto":
        if isinstance(score, int) and AUTO_RANGE[0] <= score < AUTO_RANGE[1]:
            return iso(score)
        return None
    if math.isfinite(score) and _MIN_US <= score <= _MAX_US:
        return iso(int(score))
    return None


def score_text(score: float, mode: str = "auto") -> str:
    """``score`` for a human: a datetime where ``mode`` shows one, else the number."""
    return datetime_text(score, mode) or repr(score)


def text(value: str) -> str:
    """A key or id for a column: quoted as JSON if it is empty or holds
    whitespace or control characters, so one field stays one field."""
    if value and value.isprintable() and not any(c.isspace() for c in value):
        return value
    return json.dumps(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes | bytearray):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def dump_json(value: Any) -> str:
    """``value`` as one line of strictly valid JSON (never NaN or Infinity)."""
    return json.dumps(_jsonable(value), allow_nan=False, ensure_ascii=False)


def data_text(data: Any) -> str:
    """Item data for a column: its JSON, or ``-`` for none."""
    return "-" if data is None else dump_json(data)


def print_table(rows: Sequence[Sequence[str]], header: Sequence[str] | None) -> None:
    """Print ``rows`` in columns two spaces apart; the last column is not padded."""
    every = [list(header)] if header else []
    every += [list(r) for r in rows]
    if not every:
        return
    widths = [max(len(r[i]) for r in every) for i in range(len(every[0]) - 1)]
    for row in every:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
