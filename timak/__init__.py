"""timak: bounded, mergeable timelines (activity streams) on Dynamo-style stores.

>>> from timak import Timeline
>>> tl = Timeline(connection="memory://", max_items=3)
>>> tl.add("brett:tweets", 1, 100)
[1]

Layers, each importing only the ones before it (``docs/architecture.md``):

1. the value (``timak.value``, ``timak._encoding``, ``timak._scores``) defines
   a timeline as a bounded set of records and merges any number of them
   into one, deterministically and without I/O;
2. ``timak.backends`` stores opaque sibling bytes under keys behind one
   small Riak-shaped contract and maps each driver's errors into timak's;
3. ``timak.timelines`` (``Timeline``) turns each API call into fetches,
   merges and stores on one backend;
4. ``timak.feed``, ``timak.activity``, ``timak.cli`` and
   ``timak.contrib.django`` build what applications need (subscriptions,
   social feeds, a shell, Django signals) out of ``Timeline`` calls alone.
"""

from __future__ import annotations

from ._scores import from_datetime, to_datetime
from ._version import __version__
from .backends import Backend, Fetched, connect
from .errors import (
    AccessDeniedError,
    BackendError,
    BackendTimeoutError,
    ConfigError,
    CorruptValueError,
    CursorExpiredError,
    FeedOverflowWarning,
    InvalidActivityError,
    InvalidCursorError,
    InvalidDataError,
    InvalidFollowError,
    InvalidInputError,
    InvalidItemError,
    InvalidKeyError,
    InvalidScoreError,
    LargeObjectWarning,
    MissingDriverError,
    TimakError,
    UnavailableError,
    UnknownActivityGroupError,
    UnknownFeedGroupError,
    ValueTooLargeError,
)
from .timelines import Change, Changes, CompactStats, Page, Timeline, TimelineStats, Visible
from .value import Record, TimelineValue, merge

__all__ = [
    "AccessDeniedError",
    "Backend",
    "BackendError",
    "BackendTimeoutError",
    "Change",
    "Changes",
    "CompactStats",
    "ConfigError",
    "CorruptValueError",
    "CursorExpiredError",
    "FeedOverflowWarning",
    "Fetched",
    "InvalidActivityError",
    "InvalidCursorError",
    "InvalidDataError",
    "InvalidFollowError",
    "InvalidInputError",
    "InvalidItemError",
    "InvalidKeyError",
    "InvalidScoreError",
    "LargeObjectWarning",
    "MissingDriverError",
    "Page",
    "Record",
    "TimakError",
    "Timeline",
    "TimelineStats",
    "TimelineValue",
    "UnavailableError",
    "UnknownActivityGroupError",
    "UnknownFeedGroupError",
    "ValueTooLargeError",
    "Visible",
    "__version__",
    "connect",
    "from_datetime",
    "merge",
    "to_datetime",
]
