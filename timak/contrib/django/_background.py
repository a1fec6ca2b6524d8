"""Writes handed off after their commit to one worker thread per process.

``register_activities(..., background=True)`` puts a post's fan-out here
instead of running it in the request: the request then pays for the row,
the activity's check and a hand-off, and the worker writes the feeds in
the order their transactions committed (so a remove never overtakes its
add). The queue is bounded: when the store falls behind, hand-offs wait
(the requests slow down) rather than memory grow. At a clean exit the
process waits up to ``EXIT_WAIT`` seconds for the queue to drain; what a
killed process had not written is what ``manage.py timak_backfill``
catches up, as for a write that failed.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from collections.abc import Callable

__all__ = ["EXIT_WAIT", "MAX_PENDING", "submit", "wait"]

#: Hand-offs queued at most before the next one waits.
MAX_PENDING = 10_000
#: Seconds a clean exit waits for queued writes.
EXIT_WAIT = 10.0

_queue: queue.Queue[Callable[[], None]] = queue.Queue(MAX_PENDING)
_lock = threading.Lock()
_worker: tuple[threading.Thread, int] | None = None


def submit(run: Callable[[], None]) -> None:
    """Queue ``run`` (which must not raise) for the worker, starting it in
    this process if need be (a forked child starts its own)."""
    global _worker
    with _lock:
        if _worker is None or _worker[1] != os.getpid() or not _worker[0].is_alive():
            thread = threading.Thread(target=_work, name="timak-background", daemon=True)
            thread.start()
            _worker = (thread, os.getpid())
    _queue.put(run)


def _work() -> None:
    while True:
        run = _queue.get()
        try:
            run()
        finally:
            _queue.task_done()


def wait(timeout: float | None = None) -> bool:
    """Wait until every write queued so far is done; whether it was within
    ``timeout`` seconds (``None``: no limit)."""
    with _queue.all_tasks_done:
        return _queue.all_tasks_done.wait_for(lambda: _queue.unfinished_tasks == 0, timeout)


atexit.register(wait, EXIT_WAIT)
