"""Does the Riak backend's HTTP pool stall on large bodies? (issue 11, item 1)

    python benchmarks/riak_large_bodies.py

Times ``fetch`` + ``store`` (with the fetch's context) and ``fetch`` of a
1 KB and a 200 KB value through ``timak``'s Riak backend against the HTTP
test double in ``tests/riak_double.py`` (a stdlib HTTP server, not Riak),
and reads ``TCP_NODELAY`` back from the pool's live socket. A Nagle stall
shows up as a 200 KB median tens of milliseconds above the 1 KB one.
urllib3 sets ``TCP_NODELAY`` on every connection it opens
(``HTTPConnection.default_socket_options``) and the backend does not
override ``socket_options``, so none is expected.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from riak_double import RiakTestDouble

from timak.backends import connect
from timak.backends.riak import RiakBackend

ROUNDS = 60


def main() -> None:
    with RiakTestDouble() as riak:
        backend = connect(riak.url())
        assert isinstance(backend, RiakBackend)
        try:
            for size in (1024, 200 * 1024):
                data, key = os.urandom(size), f"k{size}"
                writes, reads = [], []
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    fetched = backend.fetch("bench", key)
                    backend.store("bench", key, data, fetched.context)
                    writes.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    fetched = backend.fetch("bench", key)
                    reads.append(time.perf_counter() - started)
                    assert list(fetched.siblings) == [data]
                print(f"{size:>7} B: fetch+store median {statistics.median(writes) * 1e3:.2f} ms"
                      f" (max {max(writes) * 1e3:.1f}), fetch median "
                      f"{statistics.median(reads) * 1e3:.2f} ms (max {max(reads) * 1e3:.1f})")
            pool = backend._pool.connection_from_url(backend.base_url)
            live = [c for c in list(pool.pool.queue) if c is not None and c.sock is not None]
            for conn in live[:1]:
                nodelay = conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                print(f"pooled socket TCP_NODELAY = {nodelay}")
        finally:
            backend.close()


if __name__ == "__main__":
    main()
