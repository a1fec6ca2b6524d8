"""The SQLite backend: conformance, URLs, and damaged or unreachable files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from timak.backends import connect
from timak.backends.base import Backend
from timak.backends.sqlite import SQLiteBackend, mapped_errors
from timak.errors import (
    BackendError,
    BackendTimeoutError,
    ConfigError,
    InvalidInputError,
    UnavailableError,
)
from timak.testing import BackendConformance


class TestSQLiteConformance(BackendConformance):
    @pytest.fixture
    def connect(self, tmp_path: Path) -> Callable[[], Backend]:
        return lambda: SQLiteBackend(tmp_path / "conformance.db")


def test_relative_and_absolute_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = connect("sqlite:///rel.db")
    absolute = connect(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(relative, SQLiteBackend) and relative.path == "rel.db"
    assert isinstance(absolute, SQLiteBackend) and absolute.path == f"{tmp_path}/abs.db"
    relative.store("b", "k", b"v")
    assert (tmp_path / "rel.db").exists()


@pytest.mark.parametrize(
    "url", ["sqlite://host/x.db", "sqlite:///", "sqlite:///x.db?bogus=1", "sqlite:///x.db?timeout=x"]
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        connect(url)


def test_memory_database_is_shared_between_threads() -> None:
    import threading

    backend = connect("sqlite:///:memory:")
    thread = threading.Thread(target=backend.store, args=("b", "k", b"v"))
    thread.start()
    thread.join()
    assert list(backend.fetch("b", "k").siblings) == [b"v"]


def test_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"directory {tmp_path}/missing-dir does not exist"):
        SQLiteBackend(tmp_path / "missing-dir" / "x.db")


def test_a_file_without_permissions_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused permissions are the configuration too, not an outage. (The
    permission check is simulated: as root, as CI runs, chmod stops nothing.)"""
    path = tmp_path / "x.db"
    SQLiteBackend(path).close()
    monkeypatch.setattr("os.access", lambda where, mode: os.fspath(where) != str(path))
    with pytest.raises(ConfigError, match=f"no permission to read and write {path}"), \
            mapped_errors(str(path)):
        raise sqlite3.OperationalError("unable to open database file")
    monkeypatch.setattr("os.access", lambda where, mode: os.fspath(where) != str(tmp_path))
    with pytest.raises(ConfigError, match=f"no permission to create files in {tmp_path}"), \
            mapped_errors(str(tmp_path / "new.db")):
        raise sqlite3.OperationalError("attempt to write a readonly database")


def test_an_open_failure_on_a_usable_path_is_an_outage(tmp_path: Path) -> None:
    """Out of file descriptors, say: the path is fine, and a retry may work."""
    with pytest.raises(UnavailableError), mapped_errors(str(tmp_path / "x.db")):
        raise sqlite3.OperationalError("unable to open database file")


def test_damaged_file_is_a_backend_error(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BackendError):
        SQLiteBackend(path)


def test_locked_database_times_out_as_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    backend = SQLiteBackend(path, timeout=0.05)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(BackendTimeoutError):
            backend.store("b", "k", b"v")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    backend.store("b", "k", b"v")
    assert list(backend.fetch("b", "k").siblings) == [b"v"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sqlite3.OperationalError("database is locked"), BackendTimeoutError),
        (sqlite3.OperationalError("unable to open database file"), UnavailableError),
        (sqlite3.OperationalError("no such table: siblings"), BackendError),
        (sqlite3.DatabaseError("file is not a database"), BackendError),
        (sqlite3.IntegrityError("constraint"), BackendError),
        (sqlite3.InterfaceError("bad parameter"), BackendError),
        (sqlite3.ProgrammingError("closed"), BackendError),
        (sqlite3.NotSupportedError("nope"), BackendError),
        (sqlite3.DataError("too big"), BackendError),
        (sqlite3.InternalError("internal"), BackendError),
    ],
)
def test_every_sqlite3_error_is_mapped(error: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected) as info, mapped_errors("x.db"):
        raise error
    assert info.value.__cause__ is error


def test_every_sqlite3_error_class_is_covered_above() -> None:
    covered = {
        sqlite3.OperationalError, sqlite3.DatabaseError, sqlite3.IntegrityError,
        sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.NotSupportedError,
        sqlite3.DataError, sqlite3.InternalError,
    }
    def subclasses(cls: type) -> set[type]:
        return {cls} | {s for c in cls.__subclasses__() for s in subclasses(c)}
    assert subclasses(sqlite3.Error) - {sqlite3.Error, sqlite3.Warning} <= covered


def test_closed_backend_raises_typed_error(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "x.db")
    backend.close()
    with pytest.raises(BackendError):
        backend.fetch("b", "k")



def test_switching_to_wal_waits_for_a_writer_instead_of_failing(tmp_path: Path) -> None:
    """Turning a file to WAL needs a lock SQLite does not wait for with
    busy_timeout; a writer holding it made opening fail with 'database is
    locked' (seen in CI: demo writers opening a new file at once). The
    backend must wait, up to its timeout."""
    import threading

    path = tmp_path / "rollback-journal.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        backend = SQLiteBackend(path, timeout=10)
        backend.store("b", "k", b"v")
        assert list(backend.fetch("b", "k").siblings) == [b"v"]
    finally:
        release.join()
        holder.close()


def test_a_context_of_another_database_is_refused(tmp_path: Path) -> None:
    with SQLiteBackend(tmp_path / "a.db") as first, SQLiteBackend(tmp_path / "b.db") as second:
        first.store("b", "k", b"one")
        second.store("b", "k", b"mine")  # row id 1 too: the context would delete it
        context = first.fetch("b", "k").context
        with pytest.raises(InvalidInputError, match=r"a\.db"):
            second.store("b", "k", b"merged", context)
        with pytest.raises(InvalidInputError, match=r"a\.db"):
            second.delete("b", "k", context)
        assert list(second.fetch("b", "k").siblings) == [b"mine"]
    # The same file under another spelling of its path is the same database.
    with SQLiteBackend(tmp_path / "a.db") as first, \
            SQLiteBackend(f"{tmp_path}/./a.db") as again:
        again.store("b", "k", b"merged", first.fetch("b", "k").context)
        assert list(first.fetch("b", "k").siblings) == [b"merged"]


@pytest.mark.parametrize(
    "options", [{"timeout": "30"}, {"timeout": -1}, {"timeout": float("nan")},
                {"synchronous": 1}, {"synchronous": "off"}], ids=repr,
)
def test_bad_constructor_options_are_config_errors(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError):
        SQLiteBackend(tmp_path / "x.db", **options)
    with pytest.raises(ConfigError):
        SQLiteBackend(5)  # type: ignore[arg-type]


def test_a_backend_dropped_in_a_garbage_cycle_closes_its_connections(tmp_path: Path) -> None:
    """Python 3.13 warns (ResourceWarning) for every sqlite3 connection the
    garbage collector finalizes unclosed. A backend that is part of a
    reference cycle (here: with an object that refers back to it) and is
    dropped without close() must close its connections before that."""
    import gc
    import threading
    import warnings

    class Holder:
        backend: SQLiteBackend

    def drop_a_cycle(path: Path) -> None:
        holder = Holder()
        holder.backend = SQLiteBackend(path)
        holder.backend.cycle = holder  # type: ignore[attr-defined]
        holder.backend.store("b", "k", b"v")
        other = threading.Thread(target=holder.backend.fetch, args=("b", "k"))
        other.start()
        other.join()  # a second connection, opened by another thread

    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(5):
            drop_a_cycle(tmp_path / f"{n}.db")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_backend_alive_at_interpreter_exit_says_nothing(tmp_path: Path) -> None:
    """Every Django process keeps ``settings_timeline()``'s backend until it
    exits; finalizing it then, after shutdown has set module globals to
    None, printed "Exception ignored in ... SQLiteBackend.__del__" (issue 22).
    The issue's own reproduction, in a fresh interpreter."""
    pytest.importorskip("django")
    script = (
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['timak.contrib.django'],\n"
        f"                   TIMAK={{'URL': 'sqlite:///{tmp_path}/t.db'}})\n"
        "django.setup()\n"
        "from timak.contrib.django import settings_timeline\n"
        "settings_timeline().get('x')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stderr) == (0, "")
