"""``timak serve`` as a real process on loopback, through a real HTTP client:
every route, tokens, limits, bad input (4xx and nothing written), a store
that fails mid-request (503, nothing lost), subscriptions (SSE and
WebSocket, one poll per key), health and metrics."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx", reason="the server tests need timak[client] (httpx)")
pytest.importorskip("starlette", reason="the server tests need timak[server]")

from servers import READ_TOKEN, WRITE_TOKEN, InThread, Served, token_file  # noqa: E402

WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}


#: In the fast loop the service runs in a thread here (the same server
#: ``timak serve`` builds: real HTTP on loopback, and coverage sees it);
#: with TIMAK_SLOW=1 every test also runs against a ``timak serve`` process.
MODES = ["thread", "process"] if os.environ.get("TIMAK_SLOW") == "1" else ["thread"]


@pytest.fixture(scope="module", params=MODES)
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("serve")
    kind = InThread if request.param == "thread" else Served
    with kind(f"sqlite:///{directory / 'timak.db'}", "--poll-interval", "0.2",
              "--heartbeat", "0.5", "--max-body-bytes", "20000", "--max-page", "100",
              tokens=token_file(directory)) as server:
        yield server


@pytest.fixture
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, headers=WRITE, timeout=10) as client:
        yield client


def fresh(prefix: str = "k") -> str:
    return f"{prefix}:{uuid.uuid4().hex[:8]}"


def problem(response: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    if error is not None:
        assert body.get("error") == error, body
    return body


# -- timelines ---------------------------------------------------------------


def test_timeline_routes_answer_as_the_library_does(http: httpx.Client) -> None:
    key = fresh()
    add = http.post(f"/timeline/add/{key}", json={"id": "p1", "score": "2024-05-01T12:00:00Z",
                                                  "data": {"text": "hi"}})
    assert add.json() == {"items": [{"text": "hi"}]}
    for n in range(2, 6):
        http.post(f"/timeline/add/{key}", json={"id": f"p{n}", "score": n})
    first = http.get(f"/timeline/page/{key}", params={"limit": 2}).json()
    assert first["items"] == [{"text": "hi"}, "p5"]
    second = http.get(f"/timeline/page/{key}", params={"limit": 2, "cursor": first["cursor"]})
    assert second.json()["items"] == ["p4", "p3"]
    raw = http.get(f"/timeline/page/{key}", params={"limit": 1, "raw": "true"}).json()
    assert raw["items"][0]["id"] == "p1" and raw["items"][0]["score"] == 1714564800000000
    assert http.get(f"/timeline/range/{key}", params={"start": 3, "stop": 4}).json() == {
        "items": ["p4", "p3"]}
    assert http.get(f"/timeline/count/{key}").json() == {"count": 5}
    deleted = http.post(f"/timeline/delete/{key}", json={"id": "p5"}).json()
    assert deleted["items"] == [{"text": "hi"}, "p4", "p3", "p2"]
    whole = http.get(f"/timeline/get/{key}", params={"raw": "true"}).json()["items"]
    assert [(r["id"], r["deleted"]) for r in whole][:2] == [("p1", False), ("p5", True)]
    changes = http.get(f"/timeline/changes/{key}").json()
    assert {c["id"] for c in changes["changes"]} == {"p1", "p2", "p3", "p4", "p5"}
    later = http.get(f"/timeline/changes/{key}", params={"since": changes["cursor"]}).json()
    assert later["changes"] == []


def test_fanout_writes_every_key(http: httpx.Client) -> None:
    keys = [fresh("home") for _ in range(30)]
    written = http.post("/timeline/fanout", json={"keys": keys, "id": 7, "score": 70,
                                                  "data": {"b": [1, 2]}})
    assert written.json() == {"written": 30}
    assert http.get(f"/timeline/get/{keys[-1]}").json() == {"items": [{"b": [1, 2]}]}


def test_int_and_str_ids_stay_apart(http: httpx.Client) -> None:
    key = fresh()
    http.post(f"/timeline/add/{key}", json={"id": 1, "score": 1})
    http.post(f"/timeline/add/{key}", json={"id": "1", "score": 2})
    assert http.get(f"/timeline/get/{key}").json() == {"items": ["1", 1]}


# -- activity feeds ------------------------------------------------------------


def test_feed_routes_follow_post_read_mark_unfollow(http: httpx.Client) -> None:
    alice, bob = fresh("alice"), fresh("bob")
    assert http.post("/feeds/follow", json={"follower": bob, "target": alice}).json() == {
        "copied": 0}
    assert http.get(f"/feeds/followers/{alice}").json() == {"followers": [bob]}
    post = {"actor": alice, "verb": "post", "object": "photo:1", "time": "2024-05-01T12:00:00Z",
            "extra": {"text": "sunset"}}
    written = http.post("/feeds/activities", json={"activity": post,
                                                   "to": [["notification", bob]]})
    assert written.json() == {"written": 3}  # alice's feed, bob's home, bob's bell
    home = http.get(f"/feeds/home/read/{bob}").json()
    assert [(a["actor"], a["extra"]["text"]) for a in home["activities"]] == [(alice, "sunset")]
    assert home["cursor"] is None
    assert http.get(f"/feeds/home/count/{bob}").json() == {"count": 1}
    assert http.get(f"/notifications/counts/{bob}").json() == {"unseen": 1, "unread": 1}
    bell = http.get(f"/notifications/page/{bob}").json()
    group = bell["groups"][0]
    assert (group["verb"], group["actors"], group["seen"]) == ("post", [alice], False)
    assert http.post(f"/notifications/seen/{bob}").json() == {"marked": 1}
    assert http.post(f"/notifications/read/{bob}", json={"groups": [group["id"]]}).json() == {
        "marked": 1}
    assert http.get(f"/notifications/counts/{bob}").json() == {"unseen": 0, "unread": 0}
    missing = http.post(f"/notifications/read/{bob}", json={"groups": ["no|such|group"]})
    problem(missing, 404, "UnknownActivityGroupError")
    aggregated = http.get(f"/feeds/notification/aggregated/{bob}").json()
    assert aggregated["groups"][0]["id"] == group["id"]
    assert http.post("/feeds/unfollow", json={"follower": bob, "target": alice}).json() == {
        "removed": 1}
    assert http.get(f"/feeds/home/read/{bob}").json()["activities"] == []
    assert http.get(f"/feeds/followers/{alice}").json() == {"followers": []}
    removed = http.post("/feeds/activities/remove", json={"activity": post})
    assert removed.json() == {"written": 1}
    assert http.get(f"/feeds/user/count/{alice}").json() == {"count": 0}


def test_a_follow_copies_and_posts_reach_followers(http: httpx.Client) -> None:
    alice, carol = fresh("alice"), fresh("carol")
    for n in range(3):
        http.post("/feeds/activities", json={"activity": {"actor": alice, "verb": "post",
                                                          "object": n, "time": n + 1}})
    assert http.post("/feeds/follow", json={"follower": carol, "target": alice,
                                            "copy_limit": 2}).json() == {"copied": 2}
    page = http.get(f"/feeds/home/read/{carol}", params={"limit": 1}).json()
    rest = http.get(f"/feeds/home/read/{carol}", params={"cursor": page["cursor"]}).json()
    assert [a["object"] for a in page["activities"] + rest["activities"]] == [2, 1]


# -- tokens -----------------------------------------------------------------------


def test_tokens_scopes_and_no_token_in_logs(served: Served) -> None:
    key = fresh()
    with httpx.Client(base_url=served.url, timeout=10) as anon:
        missing = anon.get(f"/timeline/page/{key}")
        problem(missing, 401, "AccessDeniedError")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = anon.get(f"/timeline/page/{key}", headers={"Authorization": "Bearer " + "x" * 30})
        problem(wrong, 401)
        basic = anon.get(f"/timeline/page/{key}", headers={"Authorization": f"Basic {WRITE_TOKEN}"})
        problem(basic, 401)
        assert anon.get(f"/timeline/page/{key}", headers=READ).status_code == 200
        refused = anon.post(f"/timeline/add/{key}", headers=READ, json={"id": "a", "score": 1})
        problem(refused, 403, "AccessDeniedError")
        # The query-string token works only where browsers need it.
        problem(anon.get(f"/timeline/page/{key}", params={"access_token": WRITE_TOKEN}), 401)
        with anon.stream("GET", f"/timeline/events/{key}",
                         params={"access_token": READ_TOKEN}) as events:
            assert events.status_code == 200
        assert anon.get(f"/timeline/count/{key}", headers=READ).json() == {"count": 0}
        for public in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/demo"):
            assert anon.get(public).status_code == 200, public
    time.sleep(0.3)
    assert WRITE_TOKEN not in served.log and READ_TOKEN not in served.log
    assert f"/timeline/events/{key}" in served.log  # the access log is there
    assert "access_token" not in served.log


def test_a_service_without_tokens_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    import subprocess
    import sys

    from servers import ROOT

    result = subprocess.run(
        [sys.executable, "-m", "timak", "--url", "memory://", "serve", "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr


# -- bad input: 4xx, and nothing written ---------------------------------------


@pytest.mark.parametrize(("body", "status", "error"), [
    (b'{"id": "a", "score": 1', 400, "InvalidInputError"),           # malformed JSON
    (b'["a", 1]', 400, "InvalidInputError"),                          # not an object
    (b'{"id": "a", "score": NaN}', 400, "InvalidInputError"),         # not JSON
    (b'{"id": "a", "score": 1, "colour": 2}', 400, "InvalidInputError"),  # unknown member
    (b'{"id": "a"}', 400, "InvalidInputError"),                       # missing member
    (b'{"id": ["a"], "score": 1}', 400, "InvalidInputError"),         # wrong JSON type
    (b'{"id": true, "score": 1}', 400, "InvalidInputError"),
    (b'{"id": "", "score": 1}', 400, "InvalidItemError"),             # timak refuses it
    (b'{"id": "a", "score": "yesterday"}', 400, "InvalidScoreError"),
    (b'{"id": "a", "score": 1e400}', 400, "InvalidScoreError"),
    # An item over timak's item limit at capacity 1,000 (16 MiB / 1,048
    # slots), in a body under the service's 20 KB limit: timak refuses it.
    (b'{"id": "a", "score": 1, "data": "' + b"x" * 17000 + b'"}', 413, "ValueTooLargeError"),
    (b'{"id": "a", "score": 1, "data": "' + b"x" * 30000 + b'"}', 413, "ValueTooLargeError"),
    (b"\xff\xfe", 400, "InvalidInputError"),
])
def test_bad_bodies_are_refused_and_write_nothing(
    http: httpx.Client, body: bytes, status: int, error: str
) -> None:
    key = fresh()
    response = http.post(f"/timeline/add/{key}", params={"max_items": 1000}, content=body,
                         headers={"content-type": "application/json"})
    problem(response, status, error)
    assert http.get(f"/timeline/get/{key}", params={"raw": "true"}).json() == {"items": []}


def test_oversized_bodies_are_refused_before_they_are_read(http: httpx.Client) -> None:
    keys = [fresh("home") for _ in range(2000)]  # about 30 KB: over the 20 KB limit
    problem(http.post("/timeline/fanout", json={"keys": keys, "id": "a", "score": 1}), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"keys": ['
        for key in keys:
            yield json.dumps(key).encode() + b","
        yield b'"x"], "id": "a", "score": 1}'

    problem(http.post("/timeline/fanout", content=chunks()), 413)
    assert http.get(f"/timeline/count/{keys[0]}").json() == {"count": 0}


@pytest.mark.parametrize(("path", "params", "status", "error"), [
    ("/timeline/page/K", {"cursor": "p1.garbage"}, 400, "InvalidCursorError"),
    ("/timeline/page/K", {"cursor": "c1.k6FjzwAGYe"}, 400, "InvalidCursorError"),
    ("/timeline/page/K", {"cursor": ""}, 400, "InvalidCursorError"),
    ("/timeline/page/K", {"limit": "0"}, 400, None),
    ("/timeline/page/K", {"limit": "101"}, 400, None),
    ("/timeline/page/K", {"limit": "ten"}, 400, None),
    ("/timeline/page/K", {"raw": "maybe"}, 400, None),
    ("/timeline/page/K", {"bucket": ""}, 400, "InvalidKeyError"),
    ("/timeline/changes/K", {"since": "f1.abc"}, 400, "InvalidCursorError"),
    ("/timeline/range/K", {"start": 5, "stop": 1}, 400, "InvalidScoreError"),
    ("/feeds/nope/read/alice", {}, 404, "UnknownFeedGroupError"),
    ("/feeds/home/aggregated/alice", {}, 404, "UnknownFeedGroupError"),
    ("/feeds/home/read/alice", {"cursor": "zz"}, 400, "InvalidCursorError"),
    ("/timeline/events/K", {"since": "nope"}, 400, "InvalidCursorError"),
    ("/timeline/events/" + "k" * 1100, {}, 400, "InvalidKeyError"),
    ("/feeds/nope/events/alice", {}, 404, "UnknownFeedGroupError"),
    ("/no/such/route", {}, 404, None),
])
def test_bad_queries_are_4xx_problems(http: httpx.Client, path: str, params: dict[str, Any],
                                      status: int, error: str | None) -> None:
    problem(http.get(path, params=params), status, error)


@pytest.mark.parametrize(("path", "body", "status", "error"), [
    ("/feeds/activities", {"activity": {"actor": "", "verb": "post"}}, 400,
     "InvalidActivityError"),
    ("/feeds/activities", {"activity": {"actor": "a", "verb": "post"}, "to": [["nope", "b"]]},
     404, "UnknownFeedGroupError"),
    ("/feeds/activities", {"activity": {"actor": "a", "verb": "post"}, "to": ["b"]}, 400, None),
    ("/feeds/activities", {"activity": {"actor": "a", "verb": "post", "when": 1}}, 400, None),
    ("/feeds/follow", {"follower": "a", "target": "a"}, 400, "InvalidFollowError"),
    ("/feeds/follow", {"follower": "b", "target": "a", "copy_limit": -1}, 400,
     "InvalidFollowError"),
    ("/feeds/follow", {"follower": "b", "target": "a", "feeds": ["user"]}, 404,
     "UnknownFeedGroupError"),
])
def test_bad_feed_writes_write_nothing(http: httpx.Client, path: str, body: dict[str, Any],
                                       status: int, error: str | None) -> None:
    problem(http.post(path, json=body), status, error)
    assert http.get("/feeds/user/count/a").json() == {"count": 0}
    assert http.get("/feeds/followers/a").json() == {"followers": []}


# -- health, metrics, documents ---------------------------------------------------


def test_health_metrics_and_openapi(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}
    http.get(f"/timeline/page/{fresh()}")
    metrics = http.get("/metrics").text
    assert 'timak_http_request_duration_seconds_count{method="GET",route="/timeline/page/' \
        in metrics
    assert "timak_timeline_reads_total" in metrics
    assert 'timak_errors_total{error="InvalidCursorError"}' in metrics  # from the tests above
    document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/timeline/page/{key}" in document["paths"]


# -- subscriptions ----------------------------------------------------------------


class EventStream:
    """Reads one SSE stream in a thread: ``events`` are (event, id, data)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.events: list[tuple[str, str | None, Any]] = []
        self.ids: list[str] = []
        self._stop = threading.Event()
        self.status = 0
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, headers or {}),
                                        daemon=True)
        self._thread.start()
        assert self.ready.wait(10), "no ready event"

    def _read(self, url: str, headers: dict[str, str]) -> None:
        with httpx.Client(timeout=30) as client, client.stream("GET", url,
                                                                headers=headers) as response:
            self.status = response.status_code
            event, event_id, data = "message", None, ""
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if not line:
                    if data:
                        self.events.append((event, event_id, json.loads(data)))
                        if event == "ready":
                            self.ready.set()
                    event, event_id, data = "message", None, ""
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("id: "):
                    event_id = line[4:]
                    self.ids.append(event_id)
                elif line.startswith("data: "):
                    data = line[6:]
        self.ready.set()

    def changes(self) -> list[dict[str, Any]]:
        return [data for event, _, data in self.events if event == "change"]

    def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.changes()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.changes()

    def close(self) -> None:
        self._stop.set()


def test_sse_delivers_changes_with_cursor_ids(http: httpx.Client, served: Served) -> None:
    key = fresh()
    stream = EventStream(f"{served.url}/timeline/events/{key}", READ)
    try:
        http.post(f"/timeline/add/{key}", json={"id": "a", "score": 1, "data": {"n": 1}})
        http.post(f"/timeline/delete/{key}", json={"id": "a", "score": 1})
        http.post(f"/timeline/add/{key}", json={"id": "b", "score": 2})
        changes = stream.wait_for(2)
        assert {(c["id"], c["deleted"]) for c in changes} >= {("b", False)}
        assert stream.ids[-1].startswith("c1.")
        # The last id resumes: nothing after it is repeated.
        resumed = http.get(f"/timeline/changes/{key}", params={"since": stream.ids[-1]})
        assert resumed.json()["changes"] == []
    finally:
        stream.close()


def test_one_poll_per_key_however_many_watch(http: httpx.Client, served: Served) -> None:
    key = fresh()

    def polls() -> float:
        for line in http.get("/metrics").text.splitlines():
            if line.startswith("timak_subscription_polls_total "):
                return float(line.split()[1])
        raise AssertionError("no poll counter")

    streams = [EventStream(f"{served.url}/timeline/events/{key}", READ) for _ in range(8)]
    try:
        before, started = polls(), time.monotonic()
        time.sleep(2.0)
        done, elapsed = polls() - before, time.monotonic() - started
        intervals = elapsed / 0.2
        # Eight watchers of one key: about one poll per interval, not eight.
        assert done <= intervals + 2, (done, intervals)
        metrics = http.get("/metrics").text
        assert 'timak_subscriptions{kind="sse"} 8.0' in metrics
        http.post(f"/timeline/add/{key}", json={"id": "x", "score": 1})
        assert all(s.wait_for(1) for s in streams)
    finally:
        for s in streams:
            s.close()


def test_websocket_subscribes_and_unsubscribes_many_keys(
    http: httpx.Client, served: Served
) -> None:
    from httpx_ws import connect_ws

    first, second, owner = fresh(), fresh(), fresh("dave")
    ws_url = served.url + "/ws"
    with httpx.Client(headers=READ, timeout=10) as client, connect_ws(ws_url, client) as ws:
        for key in (first, second):
            ws.send_json({"op": "subscribe", "key": key})
            reply = ws.receive_json(timeout=10)
            assert (reply["type"], reply["key"], reply["cursor"][:3]) == ("subscribed", key, "c1.")
        ws.send_json({"op": "subscribe", "feed": "notification", "key": owner})
        assert ws.receive_json(timeout=10)["bucket"] == "activity.notification"
        ws.send_json({"op": "subscribe"})
        assert ws.receive_json(timeout=10)["type"] == "error"
        ws.send_text("not json")
        assert ws.receive_json(timeout=10)["error"] == "InvalidInputError"
        http.post(f"/timeline/add/{first}", json={"id": "one", "score": 1})
        http.post(f"/timeline/add/{second}", json={"id": "two", "score": 2})
        http.post("/feeds/activities", json={"activity": {"actor": "erin", "verb": "like"},
                                             "to": [["notification", owner]]})
        seen: dict[str, list[Any]] = {}
        while len(seen) < 3:
            message = ws.receive_json(timeout=10)
            assert message["type"] == "changes"
            seen.setdefault(message["key"], []).extend(c["id"] for c in message["changes"])
        assert seen[first] == ["one"] and seen[second] == ["two"]
        ws.send_json({"op": "unsubscribe", "key": first})
        assert ws.receive_json(timeout=10)["type"] == "unsubscribed"
        http.post(f"/timeline/add/{first}", json={"id": "gone", "score": 3})
        http.post(f"/timeline/add/{second}", json={"id": "three", "score": 3})
        message = ws.receive_json(timeout=10)
        assert (message["key"], [c["id"] for c in message["changes"]]) == (second, ["three"])


def test_websocket_needs_a_token(served: Served) -> None:
    from httpx_ws import WebSocketUpgradeError, connect_ws

    with httpx.Client(timeout=10) as client, pytest.raises(WebSocketUpgradeError), \
            connect_ws(served.url + "/ws", client):
        pass


def test_idle_streams_get_heartbeats(served: Served) -> None:
    lines: list[str] = []
    with httpx.Client(timeout=10, headers=READ) as client, \
            client.stream("GET", f"{served.url}/timeline/events/{fresh()}") as response:
        started = time.monotonic()
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith(": heartbeat") or time.monotonic() - started > 5:
                break
    assert ": heartbeat" in lines  # --heartbeat 0.5


def test_a_subscriber_that_stops_reading_is_dropped_with_a_reason() -> None:
    from timak.server._subscriptions import QUEUE_SIZE, Subscriber

    sub = Subscriber()
    for n in range(QUEUE_SIZE + 10):
        sub.put(("changes", "b", "k", [], f"c{n}"))
    assert sub.dropped
    drained = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert drained[-1] == ("overflow",)
    assert len(drained) == QUEUE_SIZE
