"""JSON in and out: what requests may hold, and how timak's values are sent.

Out: data stored by Python programs may hold what JSON cannot (bytes,
non-finite floats, non-str dict keys); it is sent as ``{"base64": ...}``,
the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``, and str keys. In:
bodies must be JSON objects with known members of the right JSON types;
anything else raises an ``InvalidInputError`` (a 400), before anything is
written. Ids, scores and data are then checked by timak itself.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

from ..activity import Activity, ActivityPage, AggregatedPage, Group
from ..errors import InvalidCursorError, InvalidInputError
from ..timelines import Change
from ..value import Record

__all__ = [
    "activity_json",
    "aggregated_json",
    "change_json",
    "cursor_param",
    "dumps",
    "flat_json",
    "int_param",
    "jsonable",
    "parse_body",
    "record_json",
    "score_param",
    "take",
]


def jsonable(value: Any) -> Any:
    """``value`` with everything JSON cannot hold replaced (see the module doc)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes | bytearray):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    """Compact JSON bytes of ``value`` (already made ``jsonable``)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def record_json(record: Record) -> dict[str, Any]:
    """A timeline item: id, score, deleted, data, arrival time (µs)."""
    return {
        "id": record.id,
        "score": jsonable(record.score),
        "deleted": record.deleted,
        "data": jsonable(record.data),
        "arrived": record.arrived,
    }


def change_json(change: Change) -> dict[str, Any]:
    """One change of ``Timeline.changes``."""
    return {
        "key": change.key,
        "id": change.id,
        "score": jsonable(change.score),
        "deleted": change.deleted,
        "data": jsonable(change.data),
        "arrived": change.arrived,
    }


def activity_json(activity: Activity) -> dict[str, Any]:
    """An activity with every field (``time`` is its score)."""
    return {
        "id": activity.id,
        "actor": activity.actor,
        "verb": activity.verb,
        "object": activity.object,
        "target": activity.target,
        "time": jsonable(activity.time),
        "extra": jsonable(activity.extra),
    }


def flat_json(page: ActivityPage) -> dict[str, Any]:
    return {"activities": [activity_json(a) for a in page.activities], "cursor": page.cursor}


def _group_json(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "verb": group.verb,
        "activities": [activity_json(a) for a in group.activities],
        "total": group.total,
        "actors": group.actors,
        "actor_count": group.actor_count,
        "newest": jsonable(group.newest),
        "seen": group.seen,
        "read": group.read,
    }


def aggregated_json(page: AggregatedPage) -> dict[str, Any]:
    return {
        "groups": [_group_json(g) for g in page.groups],
        "cursor": page.cursor,
        "unseen": page.unseen,
        "unread": page.unread,
    }


def _refuse_constant(name: str) -> Any:
    raise InvalidInputError(f"JSON {name} is not allowed: data must be finite")


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object; ``InvalidInputError`` otherwise."""
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"the body is not valid JSON: {exc}"[:200]) from None
    if not isinstance(body, dict):
        raise InvalidInputError(f"the body must be a JSON object, got {type(body).__name__}")
    return body


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "ref": (str, int),
    "id": (str, int),
    "score": (str, int, float),
    "int": (int,),
    "bool": (bool,),
    "list": (list,),
    "object": (dict,),
    "any": (object,),
}


def take(body: dict[str, Any], spec: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    """Check ``body`` against ``spec`` (member -> (JSON kind, required)) and
    return the members given. Unknown members, missing required ones and
    members of the wrong kind raise ``InvalidInputError``."""
    unknown = sorted(set(body) - set(spec))
    if unknown:
        raise InvalidInputError(f"unknown member {unknown[0]!r:.80}; expected {sorted(spec)}")
    found: dict[str, Any] = {}
    for name, (kind, required) in spec.items():
        if name not in body or (body[name] is None and not required):
            if required:
                raise InvalidInputError(f"the body needs a member {name!r}")
            continue
        value = body[name]
        bad_bool = isinstance(value, bool) and kind not in ("bool", "any")
        if bad_bool or not isinstance(value, _TYPES[kind]):
            raise InvalidInputError(
                f"member {name!r} must be a JSON {kind}, got {type(value).__name__}"
            )
        found[name] = value
    return found


def int_param(params: Mapping[str, str], name: str, default: int, *, low: int | None = 1,
              high: int | None = None) -> int:
    """An integer query parameter within ``[low, high]`` (``low`` ``None``:
    timak checks the low end itself, with its own words)."""
    text = params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidInputError(
            f"query parameter {name} must be an integer, got {text!r:.40}"
        ) from None
    if (low is not None and value < low) or (high is not None and value > high):
        bound = f"at most {high}" if low is None else (
            f"between {low} and {high}" if high is not None else f"at least {low}")
        raise InvalidInputError(f"query parameter {name} must be {bound}, got {value}")
    return value


def score_param(text: str | None) -> int | float | str | None:
    """A score from a query parameter: a number if it reads as one, else the
    string (an ISO-8601 datetime, checked by timak)."""
    if text is None:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def cursor_param(params: Mapping[str, str], name: str = "cursor") -> str | None:
    """A cursor query parameter; an empty one is refused."""
    text = params.get(name)
    if text is not None and not text:
        raise InvalidCursorError(f"an empty {name} is not a cursor: leave it out")
    return text
