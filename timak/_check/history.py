"""Reading worker history files into acknowledged, maybe and read records."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..value import Record
from .report import Written

_NEVER = 2**63  # the completion time of an operation that may still land


@dataclass(frozen=True)
class _Write:
    """A record an operation wrote, with when, and whether it was acknowledged."""

    invoke: int
    complete: int  # _NEVER unless acknowledged
    acked: bool
    record: Written


@dataclass(frozen=True)
class _Read:
    """A value an acknowledged operation read, and when."""

    invoke: int
    complete: int
    key: str
    what: str
    records: list[Record]


@dataclass
class History:
    """What the history files say."""

    acked: list[Written] = field(default_factory=list)
    maybe: list[Written] = field(default_factory=list)
    writes: list[_Write] = field(default_factory=list)
    reads: list[_Read] = field(default_factory=list)
    #: Acknowledged write operations (a fan-out counts once).
    checked: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Acknowledged operations per kind (add, delete, delete?, fanout, read).
    kinds: Counter[str] = field(default_factory=Counter)
    untyped: list[str] = field(default_factory=list)
    torn_lines: int = 0

    def note(
        self, record: Written, *, invoke: int = 0, complete: int = 0, acked: bool = True
    ) -> None:
        """Add a record that an operation invoked at ``invoke`` wrote, acknowledged
        at ``complete`` (or that it may have written, if not ``acked``)."""
        self.writes.append(_Write(invoke, complete if acked else _NEVER, acked, record))
        (self.acked if acked else self.maybe).append(record)



def load_history(paths: Iterable[Path]) -> History:
    """Parse history files into acknowledged and maybe records, and reads."""
    history = History()
    for path in paths:
        invoked: dict[tuple[int, int, int], dict[str, Any]] = {}
        completed: dict[tuple[int, int, int], dict[str, Any]] = {}
        for entry in _entries(path, history):
            op_id = (entry["w"], entry["i"], entry["n"])
            (invoked if entry["t"] == "invoke" else completed)[op_id] = entry
        for op_id, op in invoked.items():
            _classify(history, op, completed.get(op_id))
    return history


def _entries(path: Path, history: History) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                history.torn_lines += 1  # a line cut short by a kill
                continue
            if isinstance(entry, dict) and entry.get("t") in ("invoke", "ok", "fail", "info"):
                yield entry


def _classify(history: History, op: dict[str, Any], done: dict[str, Any] | None) -> None:
    outcome = "unfinished" if done is None else str(done["t"])
    history.outcomes[outcome] += 1
    if done is not None and done.get("untyped"):
        history.untyped.append(f"op {op['f']} on {op['key']!r}: {done.get('error')}")
    if outcome == "fail" and done is not None and done.get("definite"):
        return  # refused before anything was written
    invoke = int(op.get("at", 0))
    acked = outcome == "ok"
    complete = int(done.get("at", _NEVER)) if acked and done is not None else _NEVER
    records = _records_of(op)
    if acked:
        assert done is not None
        history.kinds[op["f"]] += 1
        if op["f"] != "read":
            history.checked += 1
        if "read" in done:
            what = f"{op['f']} by worker {op['w']}.{op['i']} op {op['n']}"
            history.reads.append(_Read(invoke, complete, op["key"], what, [
                Record(r[0], r[1], bool(r[2]), r[3]) for r in done["read"]
            ]))
        if op["f"] == "delete?":
            score = done.get("score")
            records = [] if score is None else [Written(op["key"], op["id"], score, True)]
    for record in records:
        history.note(record, invoke=invoke, complete=complete, acked=acked)


def _records_of(op: dict[str, Any]) -> list[Written]:
    f = op["f"]
    if f == "add":
        return [Written(op["key"], op["id"], op["score"], False, op["data"])]
    if f == "delete":
        return [Written(op["key"], op["id"], op["score"], True)]
    if f == "delete?":
        return [Written(op["key"], op["id"], None, True)]
    if f == "fanout":
        data = None if op["deleted"] else op["data"]
        return [Written(k, op["id"], op["score"], op["deleted"], data) for k in op["keys"]]
    return []


