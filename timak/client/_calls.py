"""What each client method sends and how its answer is read, shared by the
sync (``timak.client``) and async (``timak.client.aio``) classes: each
method builds a ``Call`` here and runs it on its own HTTP pool.

Answers become what the library returns (``Page``, ``Changes``,
``Record``, ``Activity``, ``ActivityPage``, ``AggregatedPage``); problem
responses become the timak exception they name (``raise_for``), so code
written against the library catches the same errors.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from .. import errors, from_datetime
from .._version import __version__
from ..activity import Activity, ActivityPage, AggregatedPage, Group
from ..errors import (
    AccessDeniedError,
    BackendTimeoutError,
    ConfigError,
    InvalidActivityError,
    InvalidKeyError,
    TimakError,
    UnavailableError,
)
from ..timelines import Change, Changes, Page
from ..value import Record, check_score

__all__ = [
    "TOKEN_ENV",
    "Call",
    "FeedCalls",
    "TimelineCalls",
    "change",
    "chunks",
    "headers",
    "raise_for",
    "raise_for_message",
    "transport_error",
    "unsendable",
    "watched",
]

#: The environment variable a client reads its token from when given none.
TOKEN_ENV = "TIMAK_TOKEN"


@dataclass
class Call:
    """One request and the function that reads its JSON answer."""

    method: str
    path: str
    decode: Callable[[Any], Any]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None


def headers(token: str | None) -> dict[str, str]:
    found = token if token is not None else os.environ.get(TOKEN_ENV)
    sent = {"User-Agent": f"timak-client/{__version__}"}
    if found:
        sent["Authorization"] = f"Bearer {found}"
    return sent


def segment(text: object) -> str:
    """One path segment: every reserved character escaped, dots too (so a
    key of ``..`` stays a key)."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise InvalidKeyError(f"a key or owner is a str, got {type(text).__name__}")
    return quote(str(text), safe="").replace(".", "%2E") or "%00"


def score(value: Any) -> Any:
    """A score for JSON: datetimes as µs since the epoch, as timak stores them."""
    if isinstance(value, dt.datetime):
        return from_datetime(value)
    if isinstance(value, dt.date):
        return from_datetime(dt.datetime(value.year, value.month, value.day))
    if isinstance(value, float) and not math.isfinite(value):
        check_score(value)  # raises, with the library's words
    return value


def raise_for(response: httpx.Response) -> None:
    """Raise the timak exception a problem response names, if it is one."""
    if response.status_code < 400:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    detail = str(problem.get("detail") or response.text[:200] or response.reason_phrase)
    name = problem.get("error")
    found = getattr(errors, name, None) if isinstance(name, str) else None
    status = response.status_code
    if status in (401, 403):
        raise AccessDeniedError(detail)
    if isinstance(found, type) and issubclass(found, TimakError):
        if found is errors.CursorExpiredError:
            raise errors.CursorExpiredError(detail, pruned_through=0)
        raise found(detail)
    if status == 503:
        raise UnavailableError(detail)
    if status == 504:
        raise BackendTimeoutError(detail)
    if 400 <= status < 500:
        raise errors.InvalidInputError(detail)
    raise TimakError(f"HTTP {status}: {detail}")


def unsendable(exc: ValueError) -> TimakError:
    """The error for a body JSON cannot carry (NaN or infinite floats in data)."""
    return errors.InvalidDataError(f"obj_data cannot be sent to a timak service as JSON: {exc}")


def transport_error(exc: httpx.TransportError, url: str) -> TimakError:
    """The timak error for a service that cannot be reached: to the app, the
    service is its store."""
    if isinstance(exc, httpx.TimeoutException):
        return BackendTimeoutError(f"timak service {url} did not answer in time: {exc}")
    return UnavailableError(f"timak service {url} cannot be reached: {exc}")


# -- reading answers -----------------------------------------------------------


def record(item: dict[str, Any]) -> Record:
    return Record(item["id"], item["score"], item["deleted"], item["data"], item["arrived"])


def items(raw: bool) -> Callable[[Any], list[Any]]:
    def read(answer: Any) -> list[Any]:
        found: list[Any] = answer["items"]
        return [record(i) for i in found] if raw else found
    return read


def page(raw: bool) -> Callable[[Any], Page]:
    def read(answer: Any) -> Page:
        return Page(items(raw)(answer), answer["cursor"])
    return read


def change(item: dict[str, Any]) -> Change:
    return Change(item["key"], item["id"], item["score"], item["deleted"], item["data"],
                  item["arrived"])


def changes(answer: Any) -> Changes:
    return Changes([change(c) for c in answer["changes"]], answer["cursor"])


def activity(item: dict[str, Any]) -> Activity:
    return Activity(item["actor"], item["verb"], item["object"], item["target"], item["time"],
                    item["extra"], item["id"])


def activity_body(value: Activity) -> dict[str, Any]:
    if not isinstance(value, Activity):
        raise InvalidActivityError(f"expected an Activity, got {type(value).__name__}")
    return {"actor": value.actor, "verb": value.verb, "object": value.object,
            "target": value.target, "time": value.time, "extra": dict(value.extra),
            "id": value.id}


def flat(answer: Any) -> ActivityPage:
    return ActivityPage([activity(a) for a in answer["activities"]], answer["cursor"])


def aggregated(answer: Any) -> AggregatedPage:
    groups = [
        Group(g["id"], g["verb"], [activity(a) for a in g["activities"]], g["total"],
              g["actors"], g["actor_count"], g["newest"], g["seen"], g["read"])
        for g in answer["groups"]
    ]
    return AggregatedPage(groups, answer["cursor"], answer["unseen"], answer["unread"])


def member(name: str) -> Callable[[Any], Any]:
    return lambda answer: answer[name]


# -- the calls -------------------------------------------------------------------


def _flag(value: bool) -> str:
    return "true" if value else "false"


class TimelineCalls:
    """The calls of ``Timeline`` methods, for one bucket and capacity."""

    def __init__(self, bucket: str, max_items: int | None) -> None:
        self.bucket = bucket
        self.max_items = max_items

    def _read(self, raw: bool | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"bucket": self.bucket}
        if raw is not None:
            params["raw"] = _flag(raw)
        return params

    def _write(self, raw: bool | None = None) -> dict[str, Any]:
        params = self._read(raw)
        if self.max_items is not None:
            params["max_items"] = self.max_items
        return params

    def get(self, key: str, raw: bool, skip_corrupt: bool) -> Call:
        params = self._read(raw)
        if skip_corrupt:
            params["skip_corrupt"] = "true"
        return Call("GET", f"/timeline/get/{segment(key)}", items(raw), params)

    def add(self, key: str, id: Any, score_: Any, obj_data: Any, raw: bool) -> Call:
        body = {"id": id, "score": score(score_), "data": obj_data}
        return Call("POST", f"/timeline/add/{segment(key)}", items(raw), self._write(raw), body)

    def delete(self, key: str, id: Any, score_: Any, raw: bool) -> Call:
        body = {"id": id, "score": score(score_)}
        return Call("POST", f"/timeline/delete/{segment(key)}", items(raw), self._write(raw),
                    body)

    def fanout(self, keys: list[str], id: Any, score_: Any, obj_data: Any,
               deleted: bool) -> Call:
        body = {"keys": keys, "id": id, "score": score(score_), "data": obj_data,
                "deleted": deleted}
        return Call("POST", "/timeline/fanout", member("written"), self._write(), body)

    def count(self, key: str) -> Call:
        return Call("GET", f"/timeline/count/{segment(key)}", member("count"), self._read())

    def page(self, key: str, limit: int, cursor: str | None, raw: bool) -> Call:
        params = {**self._read(raw), "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return Call("GET", f"/timeline/page/{segment(key)}", page(raw), params)

    def range(self, key: str, start: Any, stop: Any, raw: bool) -> Call:
        params = self._read(raw)
        for name, bound in (("start", start), ("stop", stop)):
            if bound is not None:
                params[name] = score(bound)
        return Call("GET", f"/timeline/range/{segment(key)}", items(raw), params)

    def changes(self, key: str, since: str | None) -> Call:
        params = self._read()
        if since is not None:
            params["since"] = since
        return Call("GET", f"/timeline/changes/{segment(key)}", changes, params)


def chunks(keys: Iterable[str], size: int) -> list[list[str]]:
    """``keys`` in requests of at most ``size`` (a fan-out is split)."""
    if isinstance(keys, str | bytes):
        raise InvalidKeyError(f"fanout takes an iterable of keys, not one {type(keys).__name__}"
                              f" ({keys!r:.60}): pass [key]")
    listed = list(keys)
    return [listed[i:i + size] for i in range(0, len(listed), size)] or [[]]


class FeedCalls:
    """The calls of ``Feeds`` methods."""

    def spread(self, value: Activity, fanout_to: Iterable[str] | None,
               to: Iterable[tuple[str, Any]], remove: bool) -> Call:
        body: dict[str, Any] = {"activity": activity_body(value),
                                "to": [[g, o] for g, o in to]}
        if fanout_to is not None:
            body["fanout_to"] = [fanout_to] if isinstance(fanout_to, str) else list(fanout_to)
        path = "/feeds/activities/remove" if remove else "/feeds/activities"
        return Call("POST", path, member("written"), body=body)

    def follow(self, follower: Any, target: Any, copy_limit: int,
               feeds: Iterable[str] | None) -> Call:
        body = {"follower": follower, "target": target, "copy_limit": copy_limit,
                "feeds": None if feeds is None else list(feeds)}
        return Call("POST", "/feeds/follow", member("copied"), body=body)

    def unfollow(self, follower: Any, target: Any, keep_history: bool,
                 feeds: Iterable[str] | None) -> Call:
        body = {"follower": follower, "target": target, "keep_history": keep_history,
                "feeds": None if feeds is None else list(feeds)}
        return Call("POST", "/feeds/unfollow", member("removed"), body=body)

    @staticmethod
    def _page(limit: int, cursor: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return params

    def read(self, feed: str, owner: Any, limit: int, cursor: str | None) -> Call:
        return Call("GET", f"/feeds/{segment(feed)}/read/{segment(owner)}", flat,
                    self._page(limit, cursor))

    def aggregated(self, feed: str, owner: Any, limit: int, cursor: str | None,
                   group_limit: int) -> Call:
        params = {**self._page(limit, cursor), "group_limit": group_limit}
        return Call("GET", f"/feeds/{segment(feed)}/aggregated/{segment(owner)}", aggregated,
                    params)

    def notifications(self, reader: Any, limit: int, cursor: str | None, feed: str) -> Call:
        params = {**self._page(limit, cursor), "feed": feed}
        return Call("GET", f"/notifications/page/{segment(reader)}", aggregated, params)

    def mark_seen(self, reader: Any, feed: str) -> Call:
        return Call("POST", f"/notifications/seen/{segment(reader)}", member("marked"),
                    {"feed": feed})

    def mark_read(self, reader: Any, groups: Iterable[str] | None, feed: str) -> Call:
        listed = None if groups is None else ([groups] if isinstance(groups, str)
                                               else list(groups))
        return Call("POST", f"/notifications/read/{segment(reader)}", member("marked"),
                    {"feed": feed}, {"groups": listed})

    def counts(self, reader: Any, feed: str, which: str) -> Call:
        return Call("GET", f"/notifications/counts/{segment(reader)}", member(which),
                    {"feed": feed})

    def count(self, feed: str, owner: Any) -> Call:
        return Call("GET", f"/feeds/{segment(feed)}/count/{segment(owner)}", member("count"))


def watched(keys: Sequence[str] | None, feed_cursor: str | None) -> list[str]:
    """The keys a client ``watch`` subscribes to: the service follows keys,
    not the global change feed."""
    if keys is None or isinstance(keys, str) or not keys or feed_cursor is not None:
        raise ConfigError("watch() through a timak service needs a list of keys "
                          "(the global change feed is not served)")
    return list(keys)


def raise_for_message(message: dict[str, Any]) -> None:
    """Raise the timak exception a WebSocket ``error`` or ``store-error`` names."""
    if message.get("type") == "store-error":
        raise UnavailableError(str(message.get("detail")))
    if message.get("type") == "error":
        found = getattr(errors, str(message.get("error")), None)
        kind = found if isinstance(found, type) and issubclass(found, TimakError) else TimakError
        if kind is errors.CursorExpiredError:
            raise errors.CursorExpiredError(str(message.get("detail")), pruned_through=0)
        raise kind(str(message.get("detail")))
