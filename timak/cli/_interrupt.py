"""Ctrl-C ends every command promptly (exit 130), whatever the store is doing.

Python runs its SIGINT handler, which raises ``KeyboardInterrupt``, only
between bytecodes of the main thread, so a C call that does not return holds
Ctrl-C off. SQLite waiting for another writer's lock is one: its busy
handler sleeps inside ``sqlite3_step`` until ``busy_timeout`` (30 s by
default) runs out, and ignores signals. That is how five ``timak watch``
tests outlived their SIGINT by 30 s in issue 22;
``tests/test_cli.py::test_ctrl_c_ends_a_command_waiting_for_a_sqlite_lock``
reproduces it with a lock held by the test.

So while a command runs, a watchdog thread waits on the signal wakeup fd,
which CPython's C-level handler writes at once, whatever the main thread is
doing (the sqlite3 module, like the other drivers, releases the GIL while it
waits). Usually the main thread handles the ``KeyboardInterrupt`` itself and
``main`` returns 130. If it has not finished ``GRACE`` seconds after Ctrl-C,
or at a second Ctrl-C, the watchdog ends the process with ``os._exit(130)``.
That leaves nothing a crash would not: each store write is one transaction
or one request, and every timak write is idempotent. Output still buffered
in ``sys.stdout`` is lost then (flushing it from this thread could block on
the main thread's lock); the commands that stream output flush each line.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Iterator

__all__ = ["GRACE", "prompt_interrupts"]

#: Seconds the main thread has to end by itself after Ctrl-C.
GRACE = 1.0

#: The write end of the wakeup pipe of the command running now, if any.
_installed: list[int] = []


@contextlib.contextmanager
def prompt_interrupts() -> Iterator[None]:
    """Run the body with the watchdog described above.

    Does nothing off the main thread, when SIGINT is not Python's default
    handler (ignored, say, or the caller's own), or when someone else uses
    the wakeup fd (an asyncio loop): those callers decide themselves. POSIX
    only (the watchdog selects on a pipe).
    """
    if (os.name != "posix"
            or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    if previous != -1:
        signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)
        yield
        return
    _installed.append(write_fd)
    watchdog = threading.Thread(target=_watch, args=(read_fd,), name="timak-ctrl-c",
                                daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(-1)
        _installed.remove(write_fd)
        os.close(write_fd)  # the watchdog reads end-of-file and returns
        watchdog.join()


def _watch(read_fd: int) -> None:
    deadline: float | None = None
    try:
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([read_fd], [], [], timeout)
            if not ready:
                os._exit(130)  # GRACE is over and the command still runs
            received = os.read(read_fd, 64)
            if not received:
                return  # the command ended
            if signal.SIGINT in received:  # one byte per signal: its number
                if deadline is not None:
                    os._exit(130)  # a second Ctrl-C
                deadline = time.monotonic() + GRACE
    finally:
        os.close(read_fd)


def _forget_in_child() -> None:
    # A forked child (the writers of `timak demo`) inherits the wakeup fd, and
    # its signals would reach this process's watchdog.
    if _installed:
        with contextlib.suppress(ValueError):  # forked from another thread
            signal.set_wakeup_fd(-1)


os.register_at_fork(after_in_child=_forget_in_child)
