"""Two ``timak serve`` processes on the real Cassandra behave as one service:
a write through one reaches the SSE subscribers of the other, and a follow
recorded through one is the graph the other fans out with."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("cassandra", reason="the Cassandra tests need timak[cassandra]")
httpx = pytest.importorskip("httpx", reason="needs timak[client]")
pytest.importorskip("starlette", reason="needs timak[server]")

# The service helpers live beside the fast tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import Served  # noqa: E402
from test_server import EventStream  # noqa: E402


@pytest.mark.cassandra
@pytest.mark.slow
def test_two_processes_on_cassandra_are_one_service(cassandra_url: str) -> None:
    with Served(cassandra_url, "--poll-interval", "0.2") as one, \
            Served(cassandra_url, "--poll-interval", "0.2") as two, \
            httpx.Client(timeout=30) as http:
        key = f"k:{uuid.uuid4().hex[:8]}"
        on_one = EventStream(f"{one.url}/timeline/events/{key}")
        on_two = EventStream(f"{two.url}/timeline/events/{key}")
        for n in range(10):
            server = one if n % 2 else two
            response = http.post(f"{server.url}/timeline/add/{key}", json={"id": n, "score": n})
            assert response.status_code == 200, response.text
        for stream in (on_one, on_two):
            assert {c["id"] for c in stream.wait_for(10, timeout=20)} == set(range(10))
            stream.close()
        tag = uuid.uuid4().hex[:6]
        bob, alice = f"bob{tag}", f"alice{tag}"
        http.post(f"{one.url}/feeds/follow", json={"follower": bob, "target": alice})
        http.post(f"{two.url}/feeds/activities",
                  json={"activity": {"actor": alice, "verb": "post", "time": 1}})
        home = http.get(f"{one.url}/feeds/home/read/{bob}").json()["activities"]
        assert [a["actor"] for a in home] == [alice]
        assert http.get(f"{two.url}/readyz").status_code == 200
