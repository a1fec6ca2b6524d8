"""The worker threads that ``timak.aio`` runs blocking calls in.

Each ``timak.aio`` object owns a bounded pool (``threads`` workers): its
calls wait in the pool's queue beyond that, so one object never has more
than ``threads`` store calls in flight, and the event loop never runs one.

Callbacks (``progress``, ``followers``) are called in the worker thread, as
the sync API calls them; a callback that returns an awaitable (an
``async def``) has it awaited on the event loop that made the call, with
its result or exception handed back to the worker. The worker waits for
it, so a callback that calls the same object again needs a spare thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from .._options import int_option
from ..errors import BackendError

__all__ = ["Threaded", "Threads", "bridged"]

_T = TypeVar("_T")
_P = ParamSpec("_P")
_local = threading.local()
_Self = TypeVar("_Self", bound="Threaded")


class Threads:
    """A pool of ``size`` worker threads, closed once."""

    def __init__(self, size: int, name: str) -> None:
        self.size = int_option("threads", size, 1)
        self.name = name
        self._pool = concurrent.futures.ThreadPoolExecutor(self.size, f"timak-aio-{name}")
        self.closed = False

    async def run(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args, **kwargs)`` in a worker thread, with the caller's context
        variables; ``BackendError`` once closed."""
        if self.closed:
            raise BackendError(f"timak.aio.{self.name} is closed")
        loop = asyncio.get_running_loop()
        call = functools.partial(_in_worker, loop, fn, *args, **kwargs)
        return await loop.run_in_executor(self._pool, contextvars.copy_context().run, call)

    async def close(self) -> None:
        """Refuse new calls, then wait (off the loop) for those running."""
        if self.closed:
            return
        self.closed = True
        await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self._pool.shutdown, wait=True)
        )


def _in_worker(loop: asyncio.AbstractEventLoop, fn: Callable[..., _T], *args: Any,
               **kwargs: Any) -> _T:
    _local.loop = loop
    try:
        return fn(*args, **kwargs)
    finally:
        _local.loop = None


def bridged(callback: Callable[_P, Any]) -> Callable[_P, Any]:
    """``callback`` for a worker thread: an awaitable it returns is awaited
    on the loop of the call that the worker is running."""

    def call(*args: _P.args, **kwargs: _P.kwargs) -> Any:
        result = callback(*args, **kwargs)
        if not inspect.isawaitable(result):
            return result
        loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
        if loop is None:
            raise RuntimeError("an async callback can only run inside a timak.aio call")
        return asyncio.run_coroutine_threadsafe(_awaited(result), loop).result()

    return call


async def _awaited(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


class Threaded:
    """Base of the ``timak.aio`` classes: a sync object run in ``Threads``.

    ``close()`` waits for the calls in flight, then closes the sync object
    (which closes its store only if it opened it from a URL); every call
    after it raises ``BackendError``. ``async with`` closes on exit.
    """

    _threads: Threads
    #: Whether ``close`` closes ``_threads`` and the sync object: not for the
    #: timelines that ``Feeds.timeline`` lends out of its own.
    _owner: bool = True

    def _close_sync(self) -> None:  # pragma: no cover - each class overrides
        raise NotImplementedError

    _closing: asyncio.Future[None] | None = None

    async def close(self) -> None:
        """Wait for the calls in flight, then release the threads and the
        store (if this object opened it). Every ``close`` returns once that
        is done, however many run at once; cancelling one does not stop it."""
        if not self._owner:
            return
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shut())
        await asyncio.shield(self._closing)

    async def _shut(self) -> None:
        await self._threads.close()
        await asyncio.get_running_loop().run_in_executor(None, self._close_sync)

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

