"""``Blocking``: a ``timak.aio`` object driven from sync code, so that the
sync scenario suites run through the async API (``test_aio_scenarios.py``,
``test_aio_timeline.py``). Each coroutine runs on an event loop in another
thread (``LoopThread``) while the calling thread waits for its result."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from timak import aio

__all__ = ["Blocking", "BlockingIterator", "LoopThread"]

_T = TypeVar("_T")


class LoopThread:
    """An event loop running in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the loop; block this thread until it is done."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class Blocking:
    """A ``timak.aio`` object seen from sync code: its coroutine methods
    block for their result, the aio objects they return come wrapped too,
    attributes read and write through."""

    def __init__(self, target: object, loop: LoopThread) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if inspect.iscoroutinefunction(attr):
                return self._wrap(self._loop.run(attr(*args, **kwargs)))
            return self._wrap(attr(*args, **kwargs))

        return call

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._target, name, value)

    def __enter__(self) -> Blocking:
        self._loop.run(self._target.__aenter__())  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.run(self._target.__aexit__(*exc_info))  # type: ignore[attr-defined]

    def _wrap(self, result: Any) -> Any:
        if isinstance(result, aio.Timeline | aio.Feeds | aio.Feed):
            return Blocking(result, self._loop)
        if hasattr(result, "__anext__"):
            return BlockingIterator(result, self._loop)
        return result


class BlockingIterator:
    """An async iterator seen as an iterator (a generator's ``close`` too)."""

    def __init__(self, changes: Any, loop: LoopThread) -> None:
        self._changes, self._loop = changes, loop

    def __iter__(self) -> BlockingIterator:
        return self

    def __next__(self) -> Any:
        async def step() -> Any:
            return await anext(self._changes)

        try:
            return self._loop.run(step())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        self._loop.run(self._changes.aclose())
