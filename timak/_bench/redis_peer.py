"""The peer: Redis sorted sets, on a ``redis-server`` the benchmark starts.

What a user who picked Redis for timelines would write with redis-py: one
sorted set per timeline, each member the item inline as compact JSON
(``{"id", "score", "data"}``) scored by the item's score;

* a write (fan-out, add): one pipeline of ``ZADD key score member`` +
  ``ZREMRANGEBYRANK key 0 -(capacity + 1)`` (trim to capacity) per key;
* newest 50: ``ZREVRANGE key 0 49`` and ``json.loads`` of every member;
* bytes: ``MEMORY USAGE key SAMPLES 0`` (what the server holds) and the
  length of ``DUMP key`` (its serialized form).

``running_redis`` starts a private server on a free loopback port with
persistence off (``--save '' --appendonly no``, in a temporary directory), in
its own session so a Ctrl-C in the terminal reaches only the benchmark, and
stops it on the way out however the block ends (``SHUTDOWN NOSAVE``, then
terminate, then kill); on Linux the kernel also stops it if the benchmark
process is killed outright (``PR_SET_PDEATHSIG``). When there can be no
peer, ``running_redis`` raises ``UnavailableError`` saying why.
``$TIMAK_BENCH_REDIS_SERVER`` names the redis-server binary to use instead
of the one on ``PATH`` (or Debian's ``/usr/bin/redis-server``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import UnavailableError
from .data import chunks, redis_member, score

__all__ = ["RedisPeer", "running_redis"]

_START_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class RedisPeer:
    """A client of the benchmark's own redis-server, with the peer's operations."""

    def __init__(self, client: Any, process: subprocess.Popen[bytes], port: int) -> None:
        self.client = client
        self.process = process
        self.port = port
        self.version = str(client.info("server").get("redis_version", "?"))

    @property
    def name(self) -> str:
        return f"redis {self.version} zset"

    def flush(self) -> None:
        self.client.flushdb()

    def fill(self, keys: Sequence[str], items: int) -> None:
        """Give every key the sorted set of items ``0 .. items - 1``: the
        first key is built with ZADDs, the others are server-side ``COPY``s."""
        first = keys[0]
        members = [(redis_member(i), score(i)) for i in range(items)]
        pipe = self.client.pipeline(transaction=False)
        for part in chunks(members, 500):
            pipe.zadd(first, dict(part))
        pipe.execute()
        for part in chunks(keys[1:], 500):
            pipe = self.client.pipeline(transaction=False)
            for key in part:
                pipe.copy(first, key, replace=True)
            pipe.execute()

    def post(self, keys: Sequence[str], item: int, capacity: int) -> None:
        """Add item ``item`` to every key and trim each to ``capacity``."""
        member = {redis_member(item): score(item)}
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.zadd(key, member)
            pipe.zremrangebyrank(key, 0, -(capacity + 1))
        pipe.execute()

    def newest(self, key: str, limit: int) -> list[Any]:
        return [json.loads(m) for m in self.client.zrevrange(key, 0, limit - 1)]

    def server_cpu_s(self) -> float:
        """CPU seconds the server process has used (user + system)."""
        cpu = self.client.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    def bytes_of(self, key: str) -> tuple[int, int]:
        """``(MEMORY USAGE, len(DUMP))`` of ``key``."""
        usage = int(self.client.memory_usage(key, samples=0))
        return usage, len(self.client.dump(key))


@contextlib.contextmanager
def running_redis(executable: str | None = None) -> Iterator[RedisPeer]:
    """A fresh redis-server for the benchmark, stopped when the block ends.

    Raises ``UnavailableError`` (before yielding) when redis-server or redis-py
    is missing or the server does not start.
    """
    try:
        import redis
    except ImportError:
        raise UnavailableError("redis-py is not installed (pip install redis)") from None
    binary = (executable or os.environ.get("TIMAK_BENCH_REDIS_SERVER")
              or shutil.which("redis-server") or "/usr/bin/redis-server")
    if not shutil.which(binary):
        raise UnavailableError(f"redis-server not found (looked for {binary!r})")
    with tempfile.TemporaryDirectory(prefix="timak-bench-redis-") as workdir:
        port = _free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir, "--daemonize", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            client = redis.Redis(host="127.0.0.1", port=port)
            _wait_until_up(client, process)
            yield RedisPeer(client, process, port)
        finally:
            _stop(process, port)


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, have the kernel send SIGTERM to
    the server when the benchmark process dies however it dies (SIGKILL, a
    killed test run), when no ``finally`` runs. Elsewhere, nothing."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_until_up(client: Any, process: subprocess.Popen[bytes]) -> None:
    import redis

    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise UnavailableError(f"redis-server exited at start ({process.returncode}): "
                                  f"{err.strip()[:200]}")
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise UnavailableError(
                    f"redis-server did not answer within {_START_TIMEOUT_S:.0f} s"
                ) from None
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], port: int) -> None:
    if process.poll() is None:
        with contextlib.suppress(Exception):
            import redis

            redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).shutdown(nosave=True)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr is not None:
        process.stderr.close()
