"""timak: bounded, mergeable timelines (activity streams) on Dynamo-style stores.

>>> from timak import Timeline
>>> tl = Timeline(connection="memory://", max_items=3)
>>> tl.add("brett:tweets", 1, 100)
[1]

Layers, each importing only those above it in this list:

1. ``timak.value``, ``timak.encoding``, ``timak.scores``: the pure timeline
   value, its merge and its bytes;
2. ``timak.backends``: stores behind one small contract;
3. ``timak.timelines``: ``Timeline``, reads, writes, fan-out, read repair;
4. ``timak.feed``, ``timak.cli``, ``timak.contrib.django``: built on ``Timeline``.
"""

from __future__ import annotations

from ._version import __version__
from .backends import Backend, Fetched, connect
from .errors import (
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
from .scores import from_datetime, to_datetime
from .timelines import Change, Changes, CompactStats, Page, Timeline, TimelineStats
from .value import Record, TimelineValue, merge

__all__ = [
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
    "__version__",
    "connect",
    "from_datetime",
    "merge",
    "to_datetime",
]
