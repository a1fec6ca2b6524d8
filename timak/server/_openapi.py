"""The OpenAPI 3.1 document the service serves at ``/openapi.json``.

Written by hand beside the routes in ``_app`` (one entry per route), so it
says what the routes promise, including every error status; Schemathesis
(``tests/test_server_fuzz.py``) checks the running service against it.
"""

from __future__ import annotations

from typing import Any

from .._version import __version__

__all__ = ["openapi_document"]

_REF = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
_SCORE = {"oneOf": [{"type": "number"}, {"type": "string"}]}
_CURSOR = {"type": ["string", "null"]}
_RECORD = {
    "type": "object",
    "required": ["id", "score", "deleted", "data", "arrived"],
    "properties": {"id": _REF, "score": {}, "deleted": {"type": "boolean"}, "data": {},
                   "arrived": {"type": "integer"}},
}
_ITEMS = {
    "type": "object", "required": ["items"],
    "properties": {"items": {"type": "array"}, "cursor": _CURSOR},
}
_ACTIVITY = {
    "type": "object",
    "required": ["actor", "verb"],
    "properties": {
        "actor": _REF, "verb": {"type": "string"}, "object": {"oneOf": [*_REF["oneOf"],
                                                                      {"type": "null"}]},
        "target": {"oneOf": [*_REF["oneOf"], {"type": "null"}]}, "time": {},
        "extra": {"type": "object"}, "id": {"type": "string"},
    },
}
_GROUP = {
    "type": "object",
    "required": ["id", "verb", "activities", "total", "actors", "actor_count", "newest"],
    "properties": {
        "id": {"type": "string"}, "verb": {"type": "string"},
        "activities": {"type": "array", "items": _ACTIVITY}, "total": {"type": "integer"},
        "actors": {"type": "array"}, "actor_count": {"type": "integer"}, "newest": {},
        "seen": {"type": ["boolean", "null"]}, "read": {"type": ["boolean", "null"]},
    },
}
_FLAT = {
    "type": "object", "required": ["activities", "cursor"],
    "properties": {"activities": {"type": "array", "items": _ACTIVITY}, "cursor": _CURSOR},
}
_AGGREGATED = {
    "type": "object", "required": ["groups", "cursor"],
    "properties": {"groups": {"type": "array", "items": _GROUP}, "cursor": _CURSOR,
                   "unseen": {"type": ["integer", "null"]},
                   "unread": {"type": ["integer", "null"]}},
}
_PROBLEM = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"},
                   "error": {"type": "string"}},
}


def _counted(name: str) -> dict[str, Any]:
    return {"type": "object", "required": [name], "properties": {name: {"type": "integer"}}}


def _param(name: str, where: str = "query", schema: dict[str, Any] | None = None,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema or {"type": "string"}}


_PAGE = [_param("limit", schema={"type": "integer", "minimum": 1}), _param("cursor")]
_BUCKET = [_param("bucket"), _param("raw", schema={"type": "boolean"})]
_WRITES = [_param("bucket"), _param("max_items", schema={"type": "integer", "minimum": 1}),
           _param("raw", schema={"type": "boolean"})]


def _errors(*statuses: int) -> dict[str, Any]:
    problem = {"content": {"application/problem+json": {"schema": _PROBLEM}}}
    return {str(s): {"description": "a problem", **problem} for s in statuses}


def _op(summary: str, result: dict[str, Any], params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, write: bool = False) -> dict[str, Any]:
    statuses = [400, 401, 404, 410, 413, 503] if body else [400, 401, 404, 410, 503]
    if write:
        statuses.insert(2, 403)
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params or [],
        "responses": {
            "200": {"description": "done",
                    "content": {"application/json": {"schema": result}}},
            **_errors(*statuses),
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}
    return op


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props,
            "additionalProperties": False}


def openapi_document(groups: list[str] | None = None) -> dict[str, Any]:
    """The document (a fresh dict each call); ``groups``: the feed group names."""
    names = {"type": "string", "enum": groups or ["user", "home", "notification"]}
    key = [_param("key", "path")]
    item = _obj(["id", "score"], id=_REF, score=_SCORE, data={})
    feed_owner = [_param("feed", "path", names), _param("owner", "path")]
    reader = [_param("reader", "path"), _param("feed", schema=names)]
    posting = _obj(["activity"], activity=_ACTIVITY,
                   to={"type": "array", "items": {"type": "array"}},
                   fanout_to={"type": "array", "items": {"type": "string"}})
    following = {"follower": _REF, "target": _REF,
                 "feeds": {"type": "array", "items": {"type": "string"}}}
    paths = {
        "/timeline/page/{key}": {"get": _op("a page, newest first", _ITEMS,
                                            key + _PAGE + _BUCKET)},
        "/timeline/get/{key}": {"get": _op(
            "the whole timeline", _ITEMS,
            [*key, *_BUCKET, _param("skip_corrupt", schema={"type": "boolean"})])},
        "/timeline/range/{key}": {"get": _op(
            "items with start <= score <= stop", _ITEMS,
            key + _BUCKET + [_param("start"), _param("stop")])},
        "/timeline/count/{key}": {"get": _op("visible items", _counted("count"),
                                             [*key, _param("bucket")])},
        "/timeline/changes/{key}": {"get": _op(
            "adds and deletes after a cursor",
            {"type": "object", "required": ["changes", "cursor"],
             "properties": {"changes": {"type": "array"}, "cursor": {"type": "string"}}},
            [*key, _param("bucket"), _param("since")])},
        "/timeline/add/{key}": {"post": _op("add an item", _ITEMS, key + _WRITES, item,
                                            write=True)},
        "/timeline/delete/{key}": {"post": _op(
            "delete an item", _ITEMS, key + _WRITES,
            _obj(["id"], id=_REF, score=_SCORE), write=True)},
        "/timeline/fanout": {"post": _op(
            "one item to many keys, blind", _counted("written"), _WRITES[:2],
            _obj(["keys", "id", "score"], keys={"type": "array", "items": {"type": "string"}},
                 id=_REF, score=_SCORE, data={}, deleted={"type": "boolean"}), write=True)},
        "/feeds/activities": {"post": _op("post an activity", _counted("written"),
                                          body=posting, write=True)},
        "/feeds/activities/remove": {"post": _op("remove an activity everywhere",
                                                 _counted("written"), body=posting,
                                                 write=True)},
        "/feeds/follow": {"post": _op(
            "record a follow, copy the newest activities", _counted("copied"),
            body=_obj(["follower", "target"], **following, copy_limit={"type": "integer"}),
            write=True)},
        "/feeds/unfollow": {"post": _op(
            "remove a follow and its copies", _counted("removed"),
            body=_obj(["follower", "target"], **following, keep_history={"type": "boolean"}),
            write=True)},
        "/feeds/followers/{actor}": {"get": _op(
            "who follows an actor",
            {"type": "object", "required": ["followers"],
             "properties": {"followers": {"type": "array"}}}, [_param("actor", "path")])},
        "/feeds/{feed}/read/{owner}": {"get": _op("a flat page", _FLAT, feed_owner + _PAGE)},
        "/feeds/{feed}/aggregated/{owner}": {"get": _op(
            "a page of groups", _AGGREGATED,
            feed_owner + _PAGE + [_param("group_limit", schema={"type": "integer",
                                                                "minimum": 1})])},
        "/feeds/{feed}/count/{owner}": {"get": _op("activities held", _counted("count"),
                                                   feed_owner)},
        "/notifications/page/{reader}": {"get": _op("notification groups", _AGGREGATED,
                                                    reader + _PAGE)},
        "/notifications/counts/{reader}": {"get": _op(
            "unseen and unread groups", {**_counted("unseen"), "required": ["unseen", "unread"],
                                         "properties": {"unseen": {"type": "integer"},
                                                        "unread": {"type": "integer"}}},
            reader)},
        "/notifications/seen/{reader}": {"post": _op("mark all seen", _counted("marked"),
                                                     reader, write=True)},
        "/notifications/read/{reader}": {"post": _op(
            "mark groups (or all) read", _counted("marked"), reader,
            _obj([], groups={"type": ["array", "null"], "items": {"type": "string"}}),
            write=True)},
        "/healthz": {"get": {"summary": "the process answers", "security": [],
                             "responses": {"200": {"description": "alive"}}}},
        "/readyz": {"get": {"summary": "the store answers", "security": [],
                            "responses": {"200": {"description": "ready"},
                                          **_errors(503)}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "timak", "version": __version__,
                 "description": "Timelines and activity feeds over HTTP (docs/server.md). "
                 "Subscriptions: GET /timeline/events/{key} and /feeds/{feed}/events/{owner} "
                 "(Server-Sent Events), /ws (WebSocket)."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
