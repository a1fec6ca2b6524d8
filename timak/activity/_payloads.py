"""Large activity payloads, stored once beside the feeds and referenced.

An activity's ``extra`` is copied into every feed it reaches. Above
``Feeds(inline_bytes=...)`` (its msgpack encoding, default
``INLINE_BYTES``) it is stored once instead, in the payload bucket (key =
the activity id), and each feed's item carries a reference in its place:
``"p": [length, digest]`` (the encoding's length and an 8-byte BLAKE2b
digest of it) instead of ``"x": extra``. A page fetches the payloads of the
activities it returns with one ``fetch_many`` (``hydrate``).

Stored bytes under a payload key (each write a sibling):

==========================  ==================================================
sibling                     meaning
==========================  ==================================================
``TKP\\x01`` + msgpack(x)     the payload ``x`` (one per version of the activity's
                            ``extra``: an edit writes another)
``TKP\\x00``                  removed: the activity was removed (a tombstone)
==========================  ==================================================

Rules, and why they hold:

* *written once*: ``store_payload`` reads the key first and writes only if
  no sibling holds these exact bytes (a retried or re-saved post writes
  nothing) and the key is not removed; it runs before any feed write, so a
  reference never points at a payload that was never stored;
* *a removal is final*: ``remove_payload`` replaces every sibling it read
  with the tombstone (the bytes are gone); a payload written concurrently
  lands beside the tombstone, and the next ``hydrate`` of that key stores
  the tombstone over it. A key with a tombstone sibling reads as removed,
  whatever else it holds, so nothing removed comes back, in any order;
* *a reference names its bytes*: hydration takes the sibling whose length
  and digest match the reference (an edited activity's feeds may hold
  either version until the timeline merge settles on one); none matching
  raises ``CorruptValueError`` (``skip_corrupt=True`` leaves the activity
  out of the page instead), and nothing is ever deleted because of it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from ..backends import Backend, Fetched
from ..errors import BackendError, CorruptValueError

__all__ = [
    "INLINE_BYTES",
    "PAYLOAD_BUCKET",
    "Payload",
    "Reference",
    "hydrate",
    "is_reference",
    "payload_of",
    "remove_payload",
    "store_payload",
]

#: Default largest ``extra`` (msgpack bytes) kept inline in every feed: the
#: measurement in docs/activity.md ("Large payloads").
INLINE_BYTES = 1024
#: Default bucket of the payloads.
PAYLOAD_BUCKET = "activity.payloads"

_HEADER = b"TKP"
_LIVE = _HEADER + b"\x01"
_REMOVED = _HEADER + b"\x00"

#: ``[length, digest]``: what a feed item holds in place of its payload.
Reference = list[Any]


@dataclass(frozen=True)
class Payload:
    """One activity's payload: its encoding and the reference to it."""

    packed: bytes

    @property
    def reference(self) -> Reference:
        return [len(self.packed), _digest(self.packed)]

    @property
    def stored(self) -> bytes:
        return _LIVE + self.packed


def _digest(packed: bytes) -> bytes:
    return hashlib.blake2b(packed, digest_size=8).digest()


def payload_of(extra: Mapping[str, Any], inline_bytes: int | None) -> Payload | None:
    """The payload to store apart for ``extra``, or ``None`` to keep it inline
    (empty, at most ``inline_bytes`` encoded, or references turned off)."""
    if inline_bytes is None or not extra:
        return None
    packed: bytes = msgpack.packb(extra)
    return Payload(packed) if len(packed) > inline_bytes else None


def is_reference(value: object) -> bool:
    """Whether ``value`` has the shape of a stored reference."""
    return (
        type(value) is list and len(value) == 2 and type(value[0]) is int
        and type(value[1]) is bytes and len(value[1]) == 8
    )


def store_payload(backend: Backend, bucket: str, key: str, payload: Payload) -> bool:
    """Store ``payload`` under ``key`` unless it is there or the key is
    removed: one read, at most one blind write. Returns whether it wrote."""
    fetched = backend.fetch(bucket, key)
    if _REMOVED in fetched.siblings or payload.stored in fetched.siblings:
        return False
    backend.store(bucket, key, payload.stored)
    return True


def remove_payload(backend: Backend, bucket: str, key: str) -> bool:
    """Replace every payload under ``key`` with the removal tombstone (one
    read, one write with its context). Returns whether it wrote."""
    fetched = backend.fetch(bucket, key)
    if list(fetched.siblings) == [_REMOVED]:
        return False
    backend.store(bucket, key, _REMOVED, fetched.context)
    return True


def hydrate(
    backend: Backend, bucket: str, wanted: Sequence[tuple[str, Reference]]
) -> dict[str, dict[str, Any] | CorruptValueError | None]:
    """The payloads of ``wanted`` (``(activity id, reference)``), fetched with
    one ``fetch_many``: per id its ``extra``, ``None`` if removed, or the
    ``CorruptValueError`` to raise (missing, or no sibling matches)."""
    if not wanted:
        return {}
    keys = [key for key, _ in wanted]
    found: dict[str, dict[str, Any] | CorruptValueError | None] = {}
    for (key, reference), fetched in zip(wanted, backend.fetch_many(bucket, keys), strict=True):
        found[key] = _one(backend, bucket, key, reference, fetched)
    return found


def _one(
    backend: Backend, bucket: str, key: str, reference: Reference, fetched: Fetched
) -> dict[str, Any] | CorruptValueError | None:
    siblings = fetched.siblings
    if _REMOVED in siblings:
        if len(siblings) > 1:  # a payload written beside the removal: drop it
            # The read stands if this fails; the next one tries again.
            with contextlib.suppress(BackendError):
                backend.store(bucket, key, _REMOVED, fetched.context)
        return None
    length, digest = reference
    for sibling in siblings:
        body = sibling[len(_LIVE):]
        if sibling[: len(_LIVE)] == _LIVE and len(body) == length and _digest(body) == digest:
            try:
                extra = msgpack.unpackb(body, raw=False, strict_map_key=False)
            except Exception:  # the digest matched: not reachable short of a collision
                break
            if isinstance(extra, dict):
                return extra
            break
    what = "missing" if not siblings else "not among the stored versions"
    return CorruptValueError(
        f"the payload of activity {key!r:.80} ({length} bytes) is {what} "
        f"(bucket {bucket!r}); the feed item is kept", key=key)
