"""An in-process backend: the fastest store, and the test fake.

``memory://`` gives a private store; ``memory://NAME`` gives a store shared by
every connection in this process that names it, so two ``Timeline`` objects on
two connections can race each other exactly as two app servers would.

Failures can be injected (``fail_next``) to test what callers do when a store
is down or slow: by default the injected error is raised before the
operation touches any data, as a refused request would be; with
``after=True`` the operation is applied first and the error raised after,
as when a write lands but its acknowledgement is lost (a timeout).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult

from ..errors import BackendError, ConfigError, InvalidInputError
from .base import Backend, Fetched, MiB, StoreLimits, StoreResult, pick

__all__ = ["MemoryBackend", "from_url"]


@dataclass
class _Store:
    """The data of one memory store: sibling id -> bytes, per (bucket, key)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    rows: dict[tuple[str, str], dict[int, bytes]] = field(default_factory=dict)
    # Sibling ids are never reused, so a stale context can never name a
    # sibling that was written after the fetch that made it.
    ids: Iterator[int] = field(default_factory=itertools.count)


@dataclass(frozen=True, eq=False)
class _Context:
    """What a fetch saw: sibling ids of one store. Carrying the store lets a
    context from another store be refused rather than delete its ids here."""

    store: _Store
    #: In the order of the fetch's siblings, so ``narrow`` can pick by position.
    ids: tuple[int, ...]


_named_stores: dict[str, _Store] = {}
_named_lock = threading.Lock()


class MemoryBackend(Backend):
    """A thread-safe dict of siblings. ``MemoryBackend(name)`` shares a store."""

    #: No store limit but memory; 16 MiB keeps one value's decode sane and
    #: moves to every other store unchanged.
    limits = StoreLimits(value_bytes=16 * MiB)

    def __init__(self, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"a memory store name is a str, got {name!r:.80}")
        if name is None:
            self._store = _Store()
        else:
            with _named_lock:
                self._store = _named_stores.setdefault(name, _Store())
        self._failures: list[tuple[frozenset[str], BaseException, bool]] = []
        self._closed = False
        #: Operation counts, for tests that check how many round trips a call made.
        self.calls: dict[str, int] = {}

    def fail_next(
        self,
        error: BaseException,
        *,
        times: int = 1,
        ops: Iterable[str] = ("*",),
        after: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``ops`` (or any op) raise ``error``:
        before touching any data, or (``after=True``) once the call has been
        applied, like a write whose acknowledgement was lost."""
        self._failures.extend([(frozenset(ops), error, after)] * times)

    def _enter(self, op: str) -> BaseException | None:
        """Count ``op``; raise an injected before-error, or return the
        after-error that the op must raise once it has been applied."""
        if self._closed:
            raise BackendError("memory backend is closed")
        self.calls[op] = self.calls.get(op, 0) + 1
        for i, (ops, error, after) in enumerate(self._failures):
            if "*" in ops or op in ops:
                del self._failures[i]
                if after:
                    return error
                raise error
        return None

    @staticmethod
    def _applied(after: BaseException | None) -> None:
        if after is not None:
            raise after

    def fetch(self, bucket: str, key: str) -> Fetched:
        after = self._enter("fetch")
        with self._store.lock:
            rows = self._store.rows.get((bucket, key))
            fetched = (
                Fetched(list(rows.values()), _Context(self._store, tuple(rows)))
                if rows else Fetched([], None)
            )
        self._applied(after)
        return fetched

    def store(
        self, bucket: str, key: str, value: bytes, context: Any = None
    ) -> StoreResult:
        ids = self._ids(context)
        after = self._enter("store")
        count = self._store_locked(bucket, key, value, ids)
        self._applied(after)
        return count

    def narrow(self, context: Any, indices: Iterable[int]) -> Any:
        """A context naming only the siblings at ``indices`` of the fetch that
        made ``context`` (see ``timak.backends.base.Narrowing``)."""
        ids = self._ids(context)
        return _Context(self._store, pick(ids, indices))

    def _ids(self, context: Any) -> tuple[int, ...]:
        """The sibling ids ``context`` saw; ``InvalidInputError`` unless it
        came from a fetch of this store."""
        if context is None:
            return ()
        if not isinstance(context, _Context) or context.store is not self._store:
            raise InvalidInputError(
                f"not a context from a fetch of this memory store: {context!r:.80}"
            )
        return context.ids

    def _store_locked(
        self, bucket: str, key: str, value: bytes, ids: tuple[int, ...]
    ) -> StoreResult:
        with self._store.lock:
            return self._replace(bucket, key, value, ids)

    def _replace(self, bucket: str, key: str, value: bytes, ids: tuple[int, ...]) -> int:
        """Replace siblings ``ids`` by ``value``; the caller holds the lock."""
        rows = self._store.rows.setdefault((bucket, key), {})
        for sibling_id in ids:
            rows.pop(sibling_id, None)
        rows[next(self._store.ids)] = bytes(value)
        return len(rows)

    def store_many(
        self, bucket: str, entries: Iterable[tuple[str, bytes]]
    ) -> list[StoreResult]:
        after = self._enter("store_many")
        counts = [self._store_locked(bucket, k, v, ()) for k, v in entries]
        self._applied(after)
        return counts

    def replace_many(
        self, bucket: str, entries: Sequence[tuple[str, bytes, Any]]
    ) -> list[StoreResult]:
        """``store`` with a context for each entry (see
        ``timak.backends.base.Replacing``); ``fail_next`` names it
        ``"replace_many"``."""
        checked = [(key, value, self._ids(context)) for key, value, context in entries]
        after = self._enter("replace_many")
        counts = [self._store_locked(bucket, k, v, ids) for k, v, ids in checked]
        self._applied(after)
        return counts

    def swap_many(
        self, bucket: str, entries: Sequence[tuple[str, bytes, Any]]
    ) -> list[bool]:
        """``store`` each entry whose siblings are all still there (see
        ``timak.backends.base.Swapping``); ``fail_next`` names it
        ``"swap_many"``."""
        checked = [(key, value, self._ids(context)) for key, value, context in entries]
        after = self._enter("swap_many")
        done = []
        with self._store.lock:
            for key, value, ids in checked:
                rows = self._store.rows.get((bucket, key), {})
                intact = all(sibling_id in rows for sibling_id in ids)
                if intact:
                    self._replace(bucket, key, value, ids)
                done.append(intact)
        self._applied(after)
        return done

    def delete(self, bucket: str, key: str, context: Any = None) -> None:
        ids = self._ids(context)
        after = self._enter("delete")
        with self._store.lock:
            rows = self._store.rows.get((bucket, key))
            if rows is not None:
                for sibling_id in list(rows) if context is None else ids:
                    rows.pop(sibling_id, None)
                if not rows:
                    del self._store.rows[(bucket, key)]
        self._applied(after)

    def keys(self, bucket: str) -> Iterator[str]:
        after = self._enter("keys")
        with self._store.lock:
            found = [k for (b, k), rows in self._store.rows.items() if b == bucket and rows]
        self._applied(after)
        return iter(found)

    def buckets(self) -> list[str]:
        """The buckets holding keys (``base.ListingBuckets``)."""
        after = self._enter("buckets")
        with self._store.lock:
            found = sorted({b for (b, _), rows in self._store.rows.items() if rows})
        self._applied(after)
        return found

    def close(self) -> None:
        self._closed = True


def from_url(url: SplitResult) -> MemoryBackend:
    """``memory://`` (private) or ``memory://NAME`` (shared in this process)."""
    if url.path not in ("", "/") or url.query:
        raise ConfigError(f"memory URLs take only a name: memory://NAME, got {url.geturl()!r}")
    return MemoryBackend(url.netloc or None)
