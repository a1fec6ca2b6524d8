"""Floors that are not timak's code: the cheapest decode of timak's stored
bytes that a user could write with msgpack and zlib alone.

A floor must not call ``timak._encoding``, ``timak.value`` or ``Timeline``
(``tests/test_bench.py`` traces every floor to check): a floor made of
timak's own decoder would hide the cost of that decoder, which is what the
earlier benchmark did.

What "cheapest" means per stored format (``b"TK"``, a format byte, a body):

======  ================================================================
format  plain decode
======  ================================================================
``1``   ``msgpack.unpackb(body)``: a msgpack array of records
``2``   ``msgpack.unpackb(zlib.decompress(body))``
``3``   ``msgpack.unpackb(body)`` gives ``[capacity, chunks]``; per chunk
        ``[ids, codec, rows]``, ``zlib.decompress`` + ``unpackb`` of
        ``rows`` when ``codec`` is 1; then per record ``unpackb`` of its
        row and of its data's bytes (format 3 keeps each item's data as
        its own msgpack bytes). Every record and its data end up decoded,
        as with formats 1 and 2: this is the whole value's decode, which is
        what the newest-50 target is set against.
======  ================================================================

No validation and no Python object per record beyond what msgpack builds:
that is the floor's point. A format this module does not know raises
``ValueError`` naming it, so a new format cannot be benchmarked against a
wrong floor by accident.

``SQLiteInsert`` is the SQLite fan-out floor: the same bytes written to the
same table by the standard library's ``sqlite3`` alone, one
``executemany`` INSERT in one ``BEGIN IMMEDIATE`` transaction, on a
connection set up as the SQLite backend sets up its own (WAL,
``synchronous=NORMAL``). It replaced ``SQLiteBackend.store_many``, which is
timak's code.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Sequence
from typing import Any

import msgpack

__all__ = ["SQLiteInsert", "plain_decode", "plain_decode_all"]


def plain_decode(stored: bytes) -> Any:
    """Decode one stored value with msgpack (+ zlib) and nothing else."""
    if stored[:2] != b"TK" or len(stored) < 3:
        raise ValueError(f"not a timak value: {stored[:8]!r}")
    fmt = stored[2]
    if fmt == 1:
        return msgpack.unpackb(stored[3:])
    if fmt == 2:
        return msgpack.unpackb(zlib.decompress(stored[3:]))
    if fmt == 3:
        return _format_3(stored[3:])
    raise ValueError(f"the plain-decode floor does not know value format {fmt}")


def _format_3(body: bytes) -> list[list[Any]]:
    unpackb = msgpack.unpackb
    records: list[list[Any]] = []
    for ids, codec, rows in unpackb(body)[1]:
        if codec == 1:
            rows = unpackb(zlib.decompress(rows))
        for item_id, row in zip(ids, rows, strict=False):  # rows past the ids: trimmed
            fields = unpackb(row)
            if len(fields) == 4:
                fields[3] = unpackb(fields[3])
            records.append([item_id, *fields])
    return records


def plain_decode_all(siblings: Sequence[bytes]) -> list[Any]:
    return [plain_decode(s) for s in siblings]


class SQLiteInsert:
    """Bare ``sqlite3``: insert ``(bucket, key, value)`` rows into the table
    timak's SQLite backend keeps its siblings in, one ``executemany`` in one
    transaction. Not timak's code: no backend, no encoding, no checks."""

    SQL = "INSERT INTO siblings (bucket, key, value) VALUES (?, ?, ?)"

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")

    def insert(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(self.SQL, rows)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()
