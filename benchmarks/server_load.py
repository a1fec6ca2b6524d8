"""Load on ``timak serve``, beside the library in-process and beside Redis.

    PYTHONPATH=. python benchmarks/server_load.py --json benchmarks/results-$(date +%F)-server.json

Bounded: each phase runs ``--seconds`` (default 5) and the fan-out sends
``--posts`` (3) posts to ``--subscribers`` (1,000) SSE streams. On a
temporary SQLite file unless ``--url`` names a store (a Cassandra URL runs
it on Cassandra). One ``timak serve`` process (uvicorn, one worker) on
loopback, without tokens, against ``--clients`` (4) client threads:

* newest page (50 of 1,000 items) and add, through HTTP, beside the same
  call in-process with the same thread count (the floor), and beside Redis
  answering the same page with redis-py (``ZREVRANGE`` + JSON decode, on a
  redis-server the run starts; skipped without one). HTTP is measured
  twice: from httpx (one keep-alive connection per thread: what a Python
  app sees, client costs included) and from plain asyncio sockets (as many
  connections; what the service itself sustains);
* SSE fan-out: ``--subscribers`` streams on one key (plain asyncio sockets,
  so the client costs little), one post, the delay until each stream has
  the change; p50/p99/max beside the poll interval.

The client threads share the machine's cores with the server, and the
in-process floor has no HTTP client to run: the ratio is a lower bound of
what a separate client machine would see. Never a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import Served

from timak import Timeline

KEY, ITEMS, PAGE = "bench:home", 1000, 50


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def hammer(make: Callable[[], Callable[[int], Any]], clients: int, seconds: float
           ) -> dict[str, float]:
    """``clients`` threads each calling their own ``make()`` for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def worker(n: int) -> None:
        call = make()
        start.wait()
        ends = time.perf_counter() + seconds
        i = 0
        while (now := time.perf_counter()) < ends:
            call(n * 10_000_000 + i)
            latencies[n].append(time.perf_counter() - now)
            i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - began
    flat = [x for part in latencies for x in part]
    return {"requests_per_s": round(len(flat) / took, 1),
            "p50_ms": round(percentile(flat, 0.5) * 1000, 3),
            "p99_ms": round(percentile(flat, 0.99) * 1000, 3), "count": len(flat)}


async def raw_load(url: str, clients: int, seconds: float,
                   request: Callable[[int], bytes]) -> dict[str, float]:
    """``clients`` keep-alive connections, each sending ``request(n)`` and reading
    the answer in turn for ``seconds``: plain asyncio sockets, so the client
    costs little beside the server it measures."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    ends = time.perf_counter() + seconds

    async def connection(first: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        n = first
        while (now := time.perf_counter()) < ends:
            writer.write(request(n))
            n += 1
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            assert head.startswith(b"HTTP/1.1 200"), head + body
            latencies.append(time.perf_counter() - now)
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection(c * 10_000_000) for c in range(clients)))
    took = time.perf_counter() - began
    return {"requests_per_s": round(len(latencies) / took, 1),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 3),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 3), "count": len(latencies)}


def get(url: str, path: str) -> bytes:
    host = url.removeprefix("http://")
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def post(url: str, path: str, body: dict[str, Any]) -> bytes:
    host, data = url.removeprefix("http://"), json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


async def fanout(url: str, key: str, subscribers: int, posts: int) -> dict[str, Any]:
    """Delays (s) from each post to each subscriber having it."""
    host, port = url.removeprefix("http://").split(":")
    ready = 0
    arrived: dict[str, list[float]] = {}
    all_ready = asyncio.Event()

    async def subscribe() -> None:
        nonlocal ready
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET /timeline/events/{key} HTTP/1.1\r\nHost: {host}\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        try:
            while line := await reader.readline():
                if line.startswith(b"event: ready"):
                    ready += 1
                    if ready == subscribers:
                        all_ready.set()
                elif line.startswith(b"data: ") and b'"id":"post-' in line:
                    item = json.loads(line[6:])["id"]
                    arrived.setdefault(item, []).append(time.perf_counter())
        finally:
            writer.close()

    tasks = [asyncio.create_task(subscribe()) for _ in range(subscribers)]
    await asyncio.wait_for(all_ready.wait(), 120)
    delays: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for n in range(posts):
            await asyncio.sleep(0.3)
            sent = time.perf_counter()
            await http.post(f"/timeline/add/{key}", json={"id": f"post-{n}", "score": n})
            deadline = time.monotonic() + 30
            while len(arrived.get(f"post-{n}", ())) < subscribers and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            delays += [t - sent for t in arrived.get(f"post-{n}", [])]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"subscribers": subscribers, "posts": posts, "delivered": len(delays),
            "expected": subscribers * posts,
            "p50_ms": round(percentile(delays, 0.5) * 1000, 1),
            "p99_ms": round(percentile(delays, 0.99) * 1000, 1),
            "max_ms": round(max(delays, default=float("nan")) * 1000, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="store URL (default: a temporary SQLite file)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=3)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    results: dict[str, Any] = {"clients": args.clients, "seconds": args.seconds,
                               "poll_interval_s": args.poll_interval,
                               "load_average_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as directory:
        url = args.url or f"sqlite:///{directory}/bench.db"
        results["store"] = url.split(":")[0]
        with Timeline(url, max_items=ITEMS) as tl:
            tl.add_many(KEY, [(n, n, {"text": f"item {n}"}) for n in range(ITEMS)])

            def in_process_page() -> Callable[[int], Any]:
                return lambda _: tl.page(KEY, PAGE)

            def in_process_add() -> Callable[[int], Any]:
                return lambda n: tl.add("bench:posts", n, n)

            results["page_in_process"] = hammer(in_process_page, args.clients, args.seconds)
            results["add_in_process"] = hammer(in_process_add, args.clients, args.seconds)
        with Served(url, "--poll-interval", str(args.poll_interval), "--log-level",
                    "warning") as served:
            def http_page() -> Callable[[int], Any]:
                client = httpx.Client(base_url=served.url)
                return lambda _: client.get(f"/timeline/page/{KEY}", params={"limit": PAGE})

            def http_add() -> Callable[[int], Any]:
                client = httpx.Client(base_url=served.url)
                return lambda n: client.post("/timeline/add/bench:http-posts",
                                             json={"id": n, "score": n})

            results["page_http_httpx"] = hammer(http_page, args.clients, args.seconds)
            results["add_http_httpx"] = hammer(http_add, args.clients, args.seconds)
            # The same requests from a client that costs little.
            page_request = get(served.url, f"/timeline/page/{KEY}?limit={PAGE}")
            results["page_http"] = asyncio.run(
                raw_load(served.url, args.clients, args.seconds, lambda _: page_request))
            results["add_http"] = asyncio.run(raw_load(
                served.url, args.clients, args.seconds,
                lambda n: post(served.url, "/timeline/add/bench:raw-posts",
                               {"id": n, "score": n})))
            results["sse_fanout"] = asyncio.run(
                fanout(served.url, "bench:fanout", args.subscribers, args.posts))
        results["page_redis"] = redis_page(args.clients, args.seconds)
    for name in ("page", "add"):
        floor = results[f"{name}_in_process"]["requests_per_s"]
        results[f"{name}_http_vs_in_process"] = round(
            results[f"{name}_http"]["requests_per_s"] / floor, 3)
    results["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def redis_page(clients: int, seconds: float) -> dict[str, Any] | str:
    try:
        from timak._bench.redis_peer import running_redis

        with running_redis() as peer:
            peer.fill([KEY], ITEMS)

            def page() -> Callable[[int], Any]:
                return lambda _: peer.newest(KEY, PAGE)

            return hammer(page, clients, seconds)
    except Exception as exc:  # no redis-server, no redis-py: say so in the results
        return f"skipped: {exc}"


if __name__ == "__main__":
    sys.exit(main())
