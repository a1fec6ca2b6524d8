"""timak for asyncio: ``Timeline``, ``Feeds`` (activity feeds) and ``Feed``
(the change feed), with the sync classes' constructors, method names,
arguments, return values, errors and semantics, as coroutines; watching
changes is an async iterator. The guide is ``docs/asyncio.md``.

A layer beside the feeds and front ends (layer 4): each class runs its sync
twin, the one owner of validation, merge, read repair and folds, in a
bounded pool of worker threads, so the event loop never waits on a store.
What is native and what is threaded, and why, is in
``timak.aio.Timeline``'s docstring.

>>> import asyncio
>>> from timak import aio
>>> async def main():
...     async with aio.Timeline("memory://") as tl:
...         await asyncio.gather(*(tl.add("k", n, n) for n in range(20)))
...         return await tl.count("k")
>>> asyncio.run(main())                  # twenty writers at once: none lost
20

Modules (private): ``_threads`` (the worker pool and callbacks),
``_timeline``, ``_activity``, ``_feed``.
"""

from __future__ import annotations

from ._activity import Feeds
from ._feed import Feed
from ._timeline import Timeline

__all__ = ["Feed", "Feeds", "Timeline"]
