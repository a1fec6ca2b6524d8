"""SQLite: the embedded default. One file, many threads and processes.

Each sibling is a row ``(id, bucket, key, value)``. A context is the tuple of
row ids a fetch saw; storing with it deletes exactly those rows and inserts
the new one in one ``BEGIN IMMEDIATE`` transaction. Row ids come from
``AUTOINCREMENT``, which never reuses an id, so a stale context can never
delete a row written after its fetch.

The database runs in WAL mode, so readers never block writers and several
processes can share one file. ``synchronous=NORMAL`` (the default here) keeps
every committed write through a process crash; a power loss may drop the
last few commits but never corrupts the file. Use ``?synchronous=full`` for
durability across power loss too, at one fsync per write.

URL: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
``sqlite:///:memory:``; options ``?timeout=SECONDS`` (how long a writer waits
for the lock, default 30) and ``?synchronous=normal|full``.

A path that cannot work (its directory is missing, it names a directory,
permissions refuse it) raises ``ConfigError`` saying what is wrong; a file
that fails to open for another reason is an outage (``UnavailableError``).
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import SplitResult, parse_qs

from .._options import number_option
from ..errors import (
    BackendError,
    BackendTimeoutError,
    ConfigError,
    InvalidInputError,
    UnavailableError,
)
from .base import Backend, Fetched, MiB, StoreLimits, StoreResult, pick

__all__ = ["SQLiteBackend", "from_url"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS siblings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS siblings_by_key ON siblings (bucket, key);
"""


@dataclass(frozen=True)
class _Context:
    """What a fetch saw: row ids of one database. Naming the database lets a
    context from another one be refused rather than delete its row ids here."""

    database: str
    ids: tuple[int, ...]


# SQLite limits bound parameters per statement (32766 since 3.32, 999 before).
_IN_LIST = 500
_INSERT = "INSERT INTO siblings (bucket, key, value) VALUES (?, ?, ?)"
_V = TypeVar("_V")
# A writer waiting for the write lock sleeps a random time below this, the
# bound doubling up to _MAX_WAIT_STEP (seconds): see SQLiteBackend._begin.
_FIRST_WAIT_STEP = 0.0002
_MAX_WAIT_STEP = 0.002


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` says another connection holds the lock."""
    text = str(exc)
    return "locked" in text or "busy" in text


@contextlib.contextmanager
def mapped_errors(path: str) -> Iterator[None]:
    """Map ``sqlite3`` exceptions into timak's tree."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        message = str(exc)
        if "locked" in message or "busy" in message:
            raise BackendTimeoutError(f"SQLite {path}: lock wait timed out: {exc}") from exc
        if "unable to open" in message or "readonly" in message or "disk I/O" in message:
            problem = _path_problem(path)
            if problem:
                raise ConfigError(f"SQLite {path}: {problem}") from exc
            raise UnavailableError(f"SQLite {path}: {exc}") from exc
        raise BackendError(f"SQLite {path}: {exc}") from exc
    except sqlite3.Error as exc:  # DatabaseError (a damaged file), IntegrityError, ...
        raise BackendError(f"SQLite {path}: {type(exc).__name__}: {exc}") from exc


def _path_problem(path: str) -> str | None:
    """What is wrong with ``path`` as a database file, if the cause of a
    failed open is the configuration rather than an outage: a missing
    directory, a directory named as the file, a file or directory without
    the permissions SQLite needs. None if the path looks usable (an outage
    then, such as running out of file descriptors, that a retry may cure)."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    full = os.path.abspath(path)
    directory = os.path.dirname(full)
    if not os.path.isdir(directory):
        return (f"directory {directory} does not exist" if not os.path.exists(directory)
                else f"{directory} is not a directory")
    if os.path.isdir(full):
        return f"{full} is a directory, not a database file"
    if os.path.exists(full) and not os.access(full, os.R_OK | os.W_OK):
        return f"no permission to read and write {full}"
    # WAL needs to create its -wal and -shm files beside the database.
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"no permission to create files in {directory}"
    return None


class SQLiteBackend(Backend):
    """Siblings as rows of one SQLite table. Safe across threads and processes."""

    #: SQLite refuses a blob over SQLITE_MAX_LENGTH (10**9 by default);
    #: timelines keep to 16 MiB, so that they move to Cassandra or Riak.
    limits = StoreLimits(value_bytes=16 * MiB, hard_value_bytes=1_000_000_000)

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0,
                 synchronous: str = "normal") -> None:
        if not isinstance(path, str | os.PathLike):
            raise ConfigError(f"SQLite path must be a str or path, got {path!r:.80}")
        self.path = os.fspath(path)
        if not isinstance(self.path, str) or not self.path:
            raise ConfigError(f"SQLite path must be a non-empty str, got {path!r:.80}")
        if not isinstance(synchronous, str) or synchronous.lower() not in ("normal", "full"):
            raise ConfigError(f"synchronous must be 'normal' or 'full', got {synchronous!r}")
        self._timeout = number_option("timeout", timeout)
        # Contexts name their database: the file (however the path was
        # spelled), or this backend for its private ':memory:' database.
        self._database = (f":memory:{id(self)}" if self.path == ":memory:"
                          else os.path.realpath(self.path))
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        # Every connection opened, with the process that opened it.
        self._all: list[tuple[sqlite3.Connection, int]] = []
        self._all_lock = threading.Lock()
        self._closed = False
        # ':memory:' is one database per connection; share one connection then.
        self._shared = self.path == ":memory:"
        self._shared_lock = threading.RLock()
        with mapped_errors(self.path):
            self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        # One connection per thread and per process: sqlite3 connections must
        # not cross a fork, and per-thread connections let WAL readers run
        # in parallel with a writer.
        if self._closed:
            raise BackendError(f"SQLite {self.path}: backend is closed")
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if self._shared and self._all:
            return self._all[0][0]
        if conn is None or self._local.pid != pid:
            # check_same_thread=False only so that close() (or the garbage
            # collector) can close a connection another thread opened; each
            # thread still uses only its own (':memory:' one, under a lock).
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None,
                check_same_thread=False,
            )
            try:
                # Reads wait in SQLite's busy handler (in WAL they rarely
                # wait at all); a write's BEGIN waits in _begin instead.
                conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
                if not self._shared:
                    self._use_wal(conn)
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            except BaseException:
                conn.close()  # a damaged or locked file: do not leak it
                raise
            self._local.conn, self._local.pid = conn, pid
            with self._all_lock:
                self._all.append((conn, pid))
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        # WAL is a property of the file, so usually it is on already. Turning
        # it on needs a lock that SQLite does not wait for with busy_timeout
        # (processes opening one new file at once saw "database is locked"),
        # so look first, and retry the switch until the timeout.
        deadline = time.monotonic() + self._timeout
        while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``: take the write lock up front (two writers
        then queue instead of deadlocking on a lock upgrade), waiting for it
        here rather than in SQLite's busy handler.

        The busy handler sleeps 1, 2, 5, 10 ... up to 100 ms between tries,
        so waiting writers wake long after the lock is free and convoy
        (8 writer processes on one key: 88-142 writes/s, p90 174-277 ms).
        Here a waiting writer tries again after a short random sleep that
        grows to at most ``_MAX_WAIT_STEP``; the lock is held for well
        under a millisecond per write, so writers interleave closely. The
        wait is bounded by ``timeout`` as before, and sleeps in Python, so
        Ctrl-C ends it at once."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            deadline = time.monotonic() + self._timeout
            step = _FIRST_WAIT_STEP
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() >= deadline:
                        raise
                time.sleep(random.uniform(0, step))
                step = min(step * 2, _MAX_WAIT_STEP)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with mapped_errors(self.path), self._shared_lock if self._shared else _nolock():
            conn = self._conn()
            self._begin(conn)
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def fetch(self, bucket: str, key: str) -> Fetched:
        with mapped_errors(self.path), self._shared_lock if self._shared else _nolock():
            rows = self._conn().execute(
                "SELECT id, value FROM siblings WHERE bucket = ? AND key = ? ORDER BY id",
                (bucket, key),
            ).fetchall()
        return self._fetched([(r[0], bytes(r[1])) for r in rows])

    def fetch_many(self, bucket: str, keys: Iterable[str]) -> list[Fetched]:
        """``fetch`` for each key, in order, in a few queries (one per 500
        keys) instead of one each: the folds after a fan-out fetch dozens."""
        wanted = list(keys)
        unique = list(dict.fromkeys(wanted))
        found: dict[str, list[tuple[int, bytes]]] = {}
        with mapped_errors(self.path), self._shared_lock if self._shared else _nolock():
            conn = self._conn()
            for chunk, marks in _in_lists(unique):
                for row_id, key, value in conn.execute(
                    f"SELECT id, key, value FROM siblings WHERE bucket = ? AND key IN ({marks}) "
                    "ORDER BY id", (bucket, *chunk)
                ):
                    found.setdefault(key, []).append((row_id, bytes(value)))
        return [self._fetched(found.get(key, [])) for key in wanted]

    def _fetched(self, rows: list[tuple[int, bytes]]) -> Fetched:
        if not rows:
            return Fetched([], None)
        return Fetched([r[1] for r in rows], _Context(self._database, tuple(r[0] for r in rows)))

    def narrow(self, context: Any, indices: Iterable[int]) -> Any:
        """A context naming only the rows at ``indices`` of the fetch that
        made ``context`` (see ``timak.backends.base.Narrowing``)."""
        return _Context(self._database, pick(self._ids(context), indices))

    def _ids(self, context: Any) -> tuple[int, ...]:
        """The row ids ``context`` saw; ``InvalidInputError`` unless it came
        from a fetch of this database."""
        if isinstance(context, _Context) and context.database != self._database:
            raise InvalidInputError(
                f"a context from a fetch of SQLite {context.database!r} cannot be used on "
                f"{self._database!r}"
            )
        if not isinstance(context, _Context):
            raise InvalidInputError(
                f"not a context from a fetch of SQLite {self.path!r}: {context!r:.80}"
            )
        return context.ids

    def store(self, bucket: str, key: str, value: bytes, context: Any = None) -> StoreResult:
        ids = () if context is None else self._ids(context)
        with self._write() as conn:
            if ids:
                _delete_ids(conn, ids)
            return _insert(conn, bucket, key, value)

    def store_many(self, bucket: str, entries: Iterable[tuple[str, bytes]]) -> list[StoreResult]:
        # One transaction for the whole batch: one fsync/lock round instead
        # of N; one executemany and one grouped count instead of an INSERT
        # and a count per key (a fan-out to 1,000 keys spent most of its
        # time crossing from Python into SQLite 2,000 times).
        rows = [(bucket, key, value) for key, value in entries]
        with self._write() as conn:
            conn.executemany(_INSERT, rows)
            return list(_counts_after(conn, bucket, [key for _, key, _ in rows]))

    def replace_many(
        self, bucket: str, entries: Sequence[tuple[str, bytes, Any]]
    ) -> list[StoreResult]:
        """``store`` with a context for each entry, in one transaction (see
        ``timak.backends.base.Replacing``): folds of many keys pay one
        commit, as blind writes do in ``store_many``."""
        checked = [(key, value, () if context is None else self._ids(context))
                   for key, value, context in entries]
        with self._write() as conn:
            results: list[StoreResult] = []
            for key, value, ids in checked:
                if ids:
                    _delete_ids(conn, ids)
                results.append(_insert(conn, bucket, key, value))
            return results

    def swap_many(
        self, bucket: str, entries: Sequence[tuple[str, bytes, Any]]
    ) -> list[bool]:
        """``store`` each entry whose rows are all still there, in one
        transaction (see ``timak.backends.base.Swapping``)."""
        checked = [(key, value, () if context is None else self._ids(context))
                   for key, value, context in entries]
        with self._write() as conn:
            done: list[bool] = []
            for key, value, ids in checked:
                intact = _present(conn, ids) == len(ids)
                if intact:
                    _delete_ids(conn, ids)
                    conn.execute(_INSERT, (bucket, key, value))
                done.append(intact)
            return done

    def delete(self, bucket: str, key: str, context: Any = None) -> None:
        ids = None if context is None else self._ids(context)
        with self._write() as conn:
            if ids is None:
                conn.execute("DELETE FROM siblings WHERE bucket = ? AND key = ?", (bucket, key))
            else:
                _delete_ids(conn, ids)

    def keys(self, bucket: str) -> Iterator[str]:
        with mapped_errors(self.path), self._shared_lock if self._shared else _nolock():
            rows = self._conn().execute(
                "SELECT DISTINCT key FROM siblings WHERE bucket = ?", (bucket,)
            ).fetchall()
        return iter([r[0] for r in rows])

    def buckets(self) -> list[str]:
        """The buckets holding keys (``base.ListingBuckets``), from the index."""
        with mapped_errors(self.path), self._shared_lock if self._shared else _nolock():
            rows = self._conn().execute(
                "SELECT DISTINCT bucket FROM siblings ORDER BY bucket"
            ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        """Close every connection this process opened. Connections inherited
        across a fork are left to the process that opened them: closing one
        here could release that process's locks."""
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        pid = self._getpid()
        for conn, opened_by in conns:
            if opened_by == pid:
                try:  # noqa: SIM105 - contextlib may be None by now (below)
                    conn.close()
                except self._sqlite_error:
                    pass

    # close() also runs from __del__, possibly during interpreter shutdown,
    # when this module's globals (os, sqlite3, contextlib) may already be
    # None: it reaches what it needs through the class instead (issue 22:
    # "'NoneType' object has no attribute 'suppress'" at exit of every
    # Django process; tests/test_backend_sqlite.py runs that process).
    _getpid = staticmethod(os.getpid)
    _sqlite_error = sqlite3.Error

    def __del__(self) -> None:
        # A backend dropped without close() (a Timeline made from a URL and
        # never closed) closes its connections rather than leave each to the
        # garbage collector, which warns about every one since Python 3.13.
        try:  # noqa: SIM105 - not contextlib.suppress: see _getpid above
            self.close()
        except Exception:
            pass


def _insert(conn: sqlite3.Connection, bucket: str, key: str, value: bytes) -> int:
    conn.execute(_INSERT, (bucket, key, value))
    count: int = conn.execute(
        "SELECT count(*) FROM siblings WHERE bucket = ? AND key = ?", (bucket, key)
    ).fetchone()[0]
    return count


def _in_lists(values: Sequence[_V]) -> Iterator[tuple[Sequence[_V], str]]:
    """``values`` in runs short enough to bind, each with its ``?,?,...``."""
    for start in range(0, len(values), _IN_LIST):
        chunk = values[start : start + _IN_LIST]
        yield chunk, ",".join("?" * len(chunk))


def _counts_after(conn: sqlite3.Connection, bucket: str, keys: list[str]) -> list[int]:
    """For each of a batch's writes to ``keys`` (in order, in this
    transaction), the siblings its key held right after it: what a write
    at a time would have counted, so folding decides alike either way."""
    unique = list(dict.fromkeys(keys))
    totals: dict[str, int] = {}
    for chunk, marks in _in_lists(unique):
        totals.update(conn.execute(
            f"SELECT key, count(*) FROM siblings WHERE bucket = ? AND key IN ({marks}) "
            "GROUP BY key", (bucket, *chunk)).fetchall())
    later = collections.Counter(keys)
    counts = []
    for key in keys:
        later[key] -= 1
        counts.append(totals[key] - later[key])
    return counts


def _present(conn: sqlite3.Connection, ids: Sequence[int]) -> int:
    """How many of the rows ``ids`` are still there."""
    found = 0
    for chunk, marks in _in_lists(ids):
        row = conn.execute(f"SELECT count(*) FROM siblings WHERE id IN ({marks})",
                           tuple(chunk)).fetchone()
        found += int(row[0])
    return found


def _delete_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    for chunk, marks in _in_lists(ids):
        conn.execute(f"DELETE FROM siblings WHERE id IN ({marks})", tuple(chunk))


@contextlib.contextmanager
def _nolock() -> Iterator[None]:
    yield


def from_url(url: SplitResult) -> SQLiteBackend:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    if url.netloc:
        raise ConfigError(
            f"SQLite URLs have no host: use sqlite:///relative.db or sqlite:////abs.db, "
            f"got {url.geturl()!r}"
        )
    path = url.path[1:] if url.path.startswith("/") else url.path
    if not path:
        raise ConfigError(f"SQLite URL names no file: {url.geturl()!r}")
    options = {k: v[-1] for k, v in parse_qs(url.query).items()}
    unknown = set(options) - {"timeout", "synchronous"}
    if unknown:
        raise ConfigError(f"unknown SQLite options {sorted(unknown)} in {url.geturl()!r}")
    try:
        timeout = float(options.get("timeout", 30))
    except ValueError:
        raise ConfigError(f"timeout must be a number of seconds in {url.geturl()!r}") from None
    return SQLiteBackend(path, timeout=timeout, synchronous=options.get("synchronous", "normal"))
