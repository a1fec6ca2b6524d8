"""``timak serve`` processes that stop, restart and share a store: a store
that fails mid-request (503 with Retry-After, nothing lost), SSE resume
with ``Last-Event-ID`` across a restart, two processes on one SQLite file
behaving as one service, and a graceful shutdown that ends subscriptions."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx", reason="the server tests need timak[client] (httpx)")
pytest.importorskip("starlette", reason="the server tests need timak[server]")

from servers import Served  # noqa: E402
from test_server import EventStream  # noqa: E402

pytestmark = pytest.mark.slow


def _changes(stream: EventStream) -> set[tuple[Any, ...]]:
    return {(c["key"], c["id"], c["score"], c["deleted"]) for c in stream.changes()}


@pytest.fixture
def riak() -> Iterator[Any]:
    pytest.importorskip("urllib3", reason="the Riak backend needs urllib3 (timak[riak])")
    from riak_double import RiakTestDouble

    with RiakTestDouble() as double:
        yield double


def test_a_store_failing_mid_request_is_503_and_loses_nothing(riak: Any) -> None:
    with Served(riak.url()) as served, httpx.Client(base_url=served.url, timeout=30) as http:
        followers = [f"f{n}" for n in range(5)]
        for follower in followers:
            assert http.post("/feeds/follow", json={"follower": follower,
                                                    "target": "alice"}).status_code == 200
        post = {"activity": {"actor": "alice", "verb": "post", "object": "p1", "time": 5}}
        # The author's feed is written, then the store fails on the
        # followers' home feeds: the request fails part-way.
        riak.fail_next(503, times=500, methods=["PUT"], path_contains="activity%2Ehome/keys")
        failed = http.post("/feeds/activities", json=post)
        assert failed.status_code == 503, failed.text
        assert failed.headers["retry-after"] == "1"
        assert failed.headers["content-type"] == "application/problem+json"
        assert failed.json()["error"] in ("UnavailableError", "BackendTimeoutError")
        assert http.get("/feeds/user/count/alice").json() == {"count": 1}  # acknowledged: kept
        riak.fail_next(503, times=500, methods=["GET"])
        down = http.get("/readyz")
        assert (down.status_code, down.headers["retry-after"]) == (503, "1")
        riak.clear_faults()
        assert http.get("/readyz").status_code == 200
        # The retry (the same activity: the same id) completes the fan-out once.
        assert http.post("/feeds/activities", json=post).json() == {"written": 6}
        for follower in followers:
            home = http.get(f"/feeds/home/read/{follower}").json()["activities"]
            assert [a["object"] for a in home] == ["p1"]


def test_subscriptions_outlive_a_store_outage(riak: Any) -> None:
    with Served(riak.url(), "--poll-interval", "0.2") as served, \
            httpx.Client(base_url=served.url, timeout=30) as http:
        stream = EventStream(f"{served.url}/timeline/events/k")
        riak.fail_next(503, times=10_000, methods=["GET"])
        deadline = time.monotonic() + 20
        while not any(e[0] == "store-error" for e in stream.events):
            assert time.monotonic() < deadline, stream.events
            time.sleep(0.05)
        riak.clear_faults()
        assert http.post("/timeline/add/k", json={"id": "after", "score": 1}).status_code == 200
        assert [c["id"] for c in stream.wait_for(1)] == ["after"]
        stream.close()


def test_sse_resumes_with_last_event_id_across_a_restart(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'timak.db'}"
    key = "alice:home"
    with Served(store, "--poll-interval", "0.2") as served, \
            httpx.Client(timeout=10) as http:
        def add(item: str, score: int) -> None:
            response = http.post(f"{served.url}/timeline/add/{key}",
                                 json={"id": item, "score": score})
            assert response.status_code == 200

        stream = EventStream(f"{served.url}/timeline/events/{key}")
        add("a", 1)
        add("b", 2)
        stream.wait_for(2)
        last_id = stream.ids[-1]
        before = _changes(stream)
        assert {c[1] for c in before} == {"a", "b"}
        # SIGTERM: streams end with a "bye", then the app shuts down (uvicorn
        # then re-raises the signal, so the status says SIGTERM).
        assert served.stop() in (0, -signal.SIGTERM)
        stream.close()
        assert any(e[0] == "bye" for e in stream.events)
        assert "Application shutdown complete" in served.log
        # Written while no server runs (another process, the library itself).
        from timak import Timeline

        with Timeline(store) as tl:
            tl.add(key, "c", 3)
            tl.delete(key, "a", 1)
        served.start()
        add("d", 4)
        resumed = EventStream(f"{served.url}/timeline/events/{key}",
                              {"Last-Event-ID": last_id})
        resumed.wait_for(3)
        time.sleep(0.6)  # a few more polls: nothing more may come
        after = _changes(resumed)
        # Everything after the last id, once, and nothing before it again.
        assert after == {(key, "c", 3, False), (key, "a", 1, True), (key, "d", 4, False)}
        assert len(resumed.changes()) == 3
        # Its "ready" names the resume point: cut off before the catch-up's
        # last change, it would resume from there again, not after it.
        assert resumed.ids[0] == last_id
        resumed.close()


def test_two_processes_on_one_sqlite_file_are_one_service(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'timak.db'}"
    with Served(store, "--poll-interval", "0.2") as one, \
            Served(store, "--poll-interval", "0.2") as two, httpx.Client(timeout=10) as http:
        key = f"k:{uuid.uuid4().hex[:6]}"
        on_one = EventStream(f"{one.url}/timeline/events/{key}")
        on_two = EventStream(f"{two.url}/timeline/events/{key}")
        for n in range(10):
            server = one if n % 2 else two
            http.post(f"{server.url}/timeline/add/{key}", json={"id": n, "score": n})
        assert len(on_one.wait_for(10)) >= 10 and len(on_two.wait_for(10)) >= 10
        assert {c["id"] for c in on_one.changes()} == set(range(10)) == {
            c["id"] for c in on_two.changes()}
        # Follows recorded through one are the graph the other fans out with.
        http.post(f"{one.url}/feeds/follow", json={"follower": "bob", "target": "alice"})
        http.post(f"{two.url}/feeds/activities",
                  json={"activity": {"actor": "alice", "verb": "post", "time": 1}})
        home = http.get(f"{one.url}/feeds/home/read/bob").json()["activities"]
        assert [a["actor"] for a in home] == ["alice"]
        on_one.close()
        on_two.close()


def test_sigterm_closes_websockets_with_going_away(tmp_path: Path) -> None:
    from httpx_ws import WebSocketDisconnect, connect_ws

    with Served(f"sqlite:///{tmp_path / 'timak.db'}") as served, \
            httpx.Client(timeout=10) as client, \
            connect_ws(served.url + "/ws", client) as ws:
        ws.send_json({"op": "subscribe", "key": "a"})
        assert ws.receive_json(timeout=10)["type"] == "subscribed"
        served.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json(timeout=10)
        assert closed.value.code == 1001
        assert served.process.wait(20) in (0, -signal.SIGTERM)  # type: ignore[union-attr]
