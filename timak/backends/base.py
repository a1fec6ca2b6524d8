"""The backend contract: the one interface every store implements.

It is shaped like Riak's object API. A key holds zero or more *siblings*
(opaque byte strings written without coordination). ``fetch`` returns all of
them plus an opaque *context*; ``store`` either adds a sibling (no context: a
*blind write*) or replaces exactly the siblings a fetch saw (with its context).

The guarantees every backend gives, checked by ``timak.testing.BackendConformance``:

=====================================  =========================================
call                                   effect
=====================================  =========================================
``fetch(b, k)`` on a missing key       ``Fetched([], None)``
``store(b, k, v)``                     ``v`` is added beside every sibling
``store(b, k, v, ctx)``                the siblings that the fetch which made
                                       ``ctx`` returned are replaced by ``v``;
                                       siblings stored after that fetch survive
``store`` twice with one ``ctx``       both values survive (the second replaces
                                       nothing the first wrote)
``delete(b, k)``                       every sibling is removed
``delete(b, k, ctx)``                  only the siblings ``ctx`` saw are removed
``keys(b)`` (optional: ``Scanning``)   every key with at least one sibling, each
                                       once, in no particular order
=====================================  =========================================

Optional capability, ``Narrowing`` (checked with ``isinstance``): a backend
that can replace a *subset* of the siblings a fetch saw offers
``narrow(ctx, indices)``, a context naming only the siblings at those
positions of the fetch's list. ``store(b, k, v, narrowed)`` then replaces
exactly those siblings; the others, and siblings written after the fetch,
stay. ``Timeline`` uses it for partial folds (merge the small siblings, leave
the big one alone). Memory, SQLite and Cassandra offer it; Riak cannot (a
PUT with a vclock supersedes everything that vclock saw).

Capabilities are found in one place, ``capabilities(backend)``: a backend
may declare them (a ``capabilities`` attribute holding a ``Capabilities``),
else each is the presence of its method, looked up with ``getattr``, so a
wrapper that delegates attributes to a backend keeps its capabilities on
every Python version (``isinstance`` on a runtime Protocol does not: 3.12
stopped seeing attributes a ``__getattr__`` provides).

Limits: ``limits(backend)`` gives the store's ``StoreLimits``: the largest
value the store itself accepts, the bound ``Timeline`` derives from it by
default, and the size past which the store works less well. A backend
declares them as a ``limits`` attribute; see docs/scaling.md for the table.

Errors: a backend raises only ``timak.errors`` exceptions. Driver exceptions
are mapped to ``UnavailableError``, ``BackendTimeoutError`` or
``BackendError`` inside one context manager per backend.

Keys and bucket names reach a backend already validated (non-empty ``str``,
at most ``MAX_KEY_BYTES`` of UTF-8); a backend must store any such string
intact, or raise ``InvalidKeyError`` saying why it cannot.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..errors import ConfigError, InvalidInputError
from ..value import MAX_KEY_BYTES

__all__ = [
    "Backend", "Capabilities", "Fetched", "ListingBuckets", "MAX_KEY_BYTES", "MiB",
    "Narrowing", "Replacing", "Scanning", "StoreLimits", "StoreResult", "Swapping",
    "capabilities", "limits", "pick", "replace_many", "scan_keys",
]

_T = TypeVar("_T")


#: What ``store`` returns: the number of siblings under the key after the
#: write when the backend knows it without another round trip, else ``None``.
#: ``Timeline`` uses it to fold siblings before they pile up.
StoreResult = int | None


@dataclass(frozen=True)
class Fetched:
    """The siblings under one key and the context to replace exactly them.

    ``context`` is ``None`` when the key holds nothing; storing with a
    ``None`` context is a blind write.
    """

    siblings: Sequence[bytes]
    context: Any = field(default=None, repr=False)


@runtime_checkable
class Backend(Protocol):
    """A Dynamo-style key-value store that keeps concurrent writes as siblings.

    Implementations may subclass this Protocol to inherit the default
    ``store_many``, ``fetch_many`` and context-manager methods.
    """

    def fetch(self, bucket: str, key: str) -> Fetched:
        """Return every sibling under ``key`` and a context naming them."""
        ...

    def store(
        self, bucket: str, key: str, value: bytes, context: Any = None
    ) -> StoreResult:
        """Add ``value`` as a sibling, replacing the siblings ``context`` saw."""
        ...

    def delete(self, bucket: str, key: str, context: Any = None) -> None:
        """Remove the siblings ``context`` saw, or all of them without one."""
        ...

    def close(self) -> None:
        """Release connections. Calls after ``close`` may raise ``BackendError``."""
        ...

    def store_many(
        self, bucket: str, entries: Iterable[tuple[str, bytes]]
    ) -> list[StoreResult]:
        """Blind-write many ``(key, value)`` pairs; one result per pair, in order.

        Backends override this where they can beat a loop (one transaction,
        concurrent requests). A failure may leave a prefix of the pairs
        written; every timak write is idempotent, so retrying all is safe.
        """
        return [self.store(bucket, key, value) for key, value in entries]

    def fetch_many(self, bucket: str, keys: Iterable[str]) -> list[Fetched]:
        """``fetch`` for many keys, in order. Override to run them concurrently."""
        return [self.fetch(bucket, key) for key in keys]

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@runtime_checkable
class Scanning(Protocol):
    """A backend that can list a bucket's keys. Optional: listing is an admin
    full scan (cluster-wide on Cassandra and Riak) that only
    ``Timeline.compact()`` without ``keys`` and ``Feed.prune`` need; a store
    that cannot list keys still serves every other call."""

    def keys(self, bucket: str) -> Iterator[str]:
        """Yield every key in ``bucket`` that holds at least one sibling."""
        ...


@dataclass(frozen=True)
class Capabilities:
    """Which optional methods a backend offers (see ``Scanning``,
    ``Narrowing``, ``Replacing``, ``ListingBuckets``, ``Swapping``)."""

    keys: bool = False
    narrow: bool = False
    replace_many: bool = False
    buckets: bool = False
    swap_many: bool = False


def capabilities(backend: object) -> Capabilities:
    """The optional capabilities of ``backend``: its ``capabilities``
    attribute if it declares one, else the methods it has (by ``getattr``,
    so that delegating wrappers keep them)."""
    declared = getattr(backend, "capabilities", None)
    if isinstance(declared, Capabilities):
        return declared
    return Capabilities(
        keys=callable(getattr(backend, "keys", None)),
        narrow=callable(getattr(backend, "narrow", None)),
        replace_many=callable(getattr(backend, "replace_many", None)),
        buckets=callable(getattr(backend, "buckets", None)),
        swap_many=callable(getattr(backend, "swap_many", None)),
    )


MiB = 1024 * 1024


@dataclass(frozen=True)
class StoreLimits:
    """Sizes that matter to one store.

    ``hard_value_bytes``: what the store itself refuses (``None``: no limit
    but memory); ``value_bytes``: the default bound on one encoded timeline
    value that ``Timeline`` derives from it (room left for concurrent
    siblings and the write's own overhead); ``advised_value_bytes``: past
    this the store works less well (a warning, not a refusal)."""

    value_bytes: int = 16 * MiB
    hard_value_bytes: int | None = None
    advised_value_bytes: int | None = None


def limits(backend: object) -> StoreLimits:
    """``backend``'s declared ``StoreLimits``, else the defaults (16 MiB)."""
    declared = getattr(backend, "limits", None)
    return declared if isinstance(declared, StoreLimits) else StoreLimits()


@runtime_checkable
class ListingBuckets(Protocol):
    """A backend that can name the buckets holding keys. Optional, and only
    for messages to people: ``timak compact --bucket typo`` lists the
    buckets there are. Memory and SQLite offer it (one index scan); on
    Cassandra and Riak it would be a cluster-wide scan."""

    def buckets(self) -> list[str]:
        """Every bucket with at least one key that holds a sibling, sorted."""
        ...


def scan_keys(backend: Backend, bucket: str, needed_by: str) -> Iterator[str]:
    """``backend.keys(bucket)``; ``ConfigError`` naming ``needed_by`` when the
    backend cannot list keys (is not ``Scanning``)."""
    if not capabilities(backend).keys:
        raise ConfigError(
            f"{type(backend).__name__} cannot list its keys, which {needed_by} needs"
        )
    keys: Iterator[str] = backend.keys(bucket)  # type: ignore[attr-defined]
    return keys


@runtime_checkable
class Narrowing(Protocol):
    """A backend that can replace a subset of the siblings a fetch saw."""

    def narrow(self, context: Any, indices: Iterable[int]) -> Any:
        """A context naming only the siblings at ``indices`` (positions in the
        ``siblings`` of the fetch that made ``context``).

        Raises ``InvalidInputError`` for a context this backend did not make
        or an index outside the fetch's list; repeated indices count once.
        """
        ...


def pick(ids: Sequence[_T], indices: Iterable[int]) -> tuple[_T, ...]:
    """``ids`` at ``indices``, each once, in ``ids``' order: what a ``narrow``
    keeps of a context. ``InvalidInputError`` for an index that is not a
    position in ``ids``."""
    wanted = set()
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(ids):
            raise InvalidInputError(
                f"sibling index {index!r:.40} is not a position in a fetch of {len(ids)}"
            )
        wanted.add(index)
    return tuple(ids[i] for i in sorted(wanted))


@runtime_checkable
class Replacing(Protocol):
    """A backend that stores many values with contexts in one call, cheaper
    than a loop of ``store`` (SQLite: one transaction instead of one each;
    Cassandra: concurrent requests instead of one round trip after another).
    Optional: the folds after a fan-out use it where it exists."""

    def replace_many(
        self, bucket: str, entries: Sequence[tuple[str, bytes, Any]]
    ) -> list[StoreResult]:
        """``store(bucket, key, value, context)`` for every entry, in order;
        one result per entry. Every context is checked before anything is
        written (``InvalidInputError``). A failure may leave some of the
        entries stored: a prefix, as a loop of ``store`` would, or any of
        them where the store runs them at once (Cassandra); each entry is a
        store of its own, so either is safe."""
        ...


def replace_many(
    backend: Backend, bucket: str, entries: Sequence[tuple[str, bytes, Any]]
) -> list[StoreResult]:
    """``backend.replace_many`` where the backend is ``Replacing``, else a
    loop of ``store``: the same writes either way."""
    if capabilities(backend).replace_many:
        done: list[StoreResult] = backend.replace_many(bucket, entries)  # type: ignore[attr-defined]
        return done
    return [backend.store(bucket, key, value, context) for key, value, context in entries]


@runtime_checkable
class Swapping(Protocol):
    """A backend that can replace siblings only if all of them are still
    there, atomically (memory and SQLite). Optional: folds and read
    repairs use it so that two of them made from overlapping fetches do not
    both store a full merge (eight writers on one SQLite key left up to
    eight such twin values, which every later fold had to decode); where
    it is missing they use ``replace_many`` or ``store``, which is as safe,
    only slower later."""

    def swap_many(
        self, bucket: str, entries: Sequence[tuple[str, bytes, Any]]
    ) -> list[bool]:
        """For each ``(key, value, context)``, in order: if every sibling
        ``context`` names is still under ``key``, ``store(bucket, key,
        value, context)``; else write nothing for it. Returns whether each
        was stored. Every context is checked first (``InvalidInputError``);
        a failure may leave a prefix of the entries applied."""
        ...
