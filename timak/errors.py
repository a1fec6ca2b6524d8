"""The exception tree. Every error timak raises on purpose is a ``TimakError``.

::

    TimakError
    ├── InvalidInputError (ValueError)     the caller passed something unusable;
    │   │                                  nothing was written
    │   ├── InvalidKeyError                empty, non-string, too long, unencodable
    │   ├── InvalidItemError               bad item id
    │   ├── InvalidScoreError              NaN, infinite, bool, naive/aware mix, bad ISO
    │   ├── InvalidDataError               obj_data that cannot be encoded
    │   ├── ValueTooLargeError             encoded value or item over the size limit
    │   ├── InvalidCursorError             a cursor that timak did not make
    │   │   └── CursorExpiredError         a feed cursor older than what prune kept
    │   ├── ConfigError                    bad URL, max_items < 1, unusable store setup
    │   ├── InvalidActivityError           an activity without actor or verb, bad fields
    │   ├── UnknownFeedGroupError          a feed group name the Feeds was not given
    │   ├── UnknownActivityGroupError      a mark for an aggregated group not in the feed
    │   └── InvalidFollowError             follow of oneself, copy_limit below 0
    ├── CorruptValueError                  stored bytes that do not decode; the
    │                                      bytes are left where they are
    ├── AccessDeniedError (PermissionError)  a timak service refused the token
    │                                      (``timak.client``: HTTP 401 or 403)
    ├── BackendError                       the store failed to do what was asked
    │   ├── UnavailableError (ConnectionError)   down, refused, not enough replicas
    │   └── BackendTimeoutError (TimeoutError)   no answer in time; the write may
    │                                            or may not have been applied
    └── MissingDriverError (ImportError)   an optional driver is not installed

Warnings (not errors: the call succeeded, but the caller should know)::

    FeedOverflowWarning (RuntimeWarning)   a change-feed key filled up; a poll may
                                           have missed writes
    LargeObjectWarning (UserWarning)       a Riak value above its warning size

Backends map their driver's exceptions into ``BackendError`` and its subclasses
inside one context manager each, so no driver exception reaches the caller.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "BackendError",
    "BackendTimeoutError",
    "ConfigError",
    "CorruptValueError",
    "CursorExpiredError",
    "FeedOverflowWarning",
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
    "TimakError",
    "UnavailableError",
    "UnknownActivityGroupError",
    "UnknownFeedGroupError",
    "ValueTooLargeError",
]


class TimakError(Exception):
    """Root of every error that timak raises on purpose."""


class InvalidInputError(TimakError, ValueError):
    """The caller passed something timak cannot use. Nothing was written."""


class InvalidKeyError(InvalidInputError):
    """A timeline key or bucket name that is empty, not a string, or too long."""


class InvalidItemError(InvalidInputError):
    """An item id that is not a non-empty string or a 64-bit integer."""


class InvalidScoreError(InvalidInputError):
    """A score that is NaN, infinite, a bool, out of range, or a bad datetime."""


class InvalidDataError(InvalidInputError):
    """``obj_data`` that the value encoding cannot represent."""


class ValueTooLargeError(InvalidInputError):
    """An encoded value or item larger than the configured limit."""


class InvalidCursorError(InvalidInputError):
    """A cursor string that was not produced by timak (or is damaged)."""


class CursorExpiredError(InvalidCursorError):
    """A feed cursor older than what the feed still holds: ``prune`` deleted
    periods the poll would have to read. Nothing was skipped silently.

    ``pruned_through`` is the arrival time (µs) before which writes may be
    gone. Recover with ``poll()`` without a cursor (from now), after
    rebuilding whatever depended on the changes in between.
    """

    def __init__(self, message: str, *, pruned_through: int) -> None:
        super().__init__(message)
        self.pruned_through = pruned_through


class ConfigError(InvalidInputError):
    """A bad URL, option or store setup (for example a Riak bucket type
    that does not keep siblings)."""


class InvalidActivityError(InvalidInputError):
    """An activity without an actor or verb, or with fields timak cannot store."""


class UnknownFeedGroupError(InvalidInputError):
    """A feed group name that the ``timak.activity.Feeds`` was not given."""


class UnknownActivityGroupError(InvalidInputError):
    """A mark (``mark_read``) for an aggregated group that the feed does not hold."""


class InvalidFollowError(InvalidInputError):
    """A follow of oneself, or a ``copy_limit`` that is not an int of at least 0."""


class CorruptValueError(TimakError):
    """Stored bytes that do not decode as a timak value.

    The bytes are never overwritten because of this error: a read that meets
    a corrupt sibling does not read-repair, so an operator can still inspect it.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        #: Where a read met the corrupt sibling: the merge of the siblings
        #: that did decode (a ``TimelineValue``), else ``None``.
        self.partial: object = None


class AccessDeniedError(TimakError, PermissionError):
    """A timak service (``timak serve``) refused the request's token: none or
    an unknown one (HTTP 401), or a read-only one for a write (403). Raised
    by ``timak.client``; nothing was written."""


class BackendError(TimakError):
    """The store failed. The wrapped driver exception is ``__cause__``."""


class UnavailableError(BackendError, ConnectionError):
    """The store cannot be reached, or too few replicas are up."""


class BackendTimeoutError(BackendError, TimeoutError):
    """The store did not answer in time. A write may or may not have been
    applied; retrying it is safe because every timak write is idempotent."""


class MissingDriverError(TimakError, ImportError):
    """An optional driver package is not installed; the message says which
    extra to install."""


class FeedOverflowWarning(RuntimeWarning):
    """A feed key filled up (``capacity`` writes in one shard of one period),
    so writes this poll should report may have been dropped."""


class LargeObjectWarning(UserWarning):
    """A Riak value above ``warn_size`` (default 5 MiB, Riak's own warning level).

    Riak is at its best under 1 MB; large objects slow every read, write,
    handoff and anti-entropy exchange of their key. A warning, not logging,
    because the caller is the one who can keep values small.
    """
