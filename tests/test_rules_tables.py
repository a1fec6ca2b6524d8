"""The merge-rules tables of the README and of ``timak.value``'s docstring are
executed: each row's writes are merged in every order, through the byte
encoding too, and must give the row's stated result. Both tables must state
the same rows, so neither can drift from the code or from the other."""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import timak.value
from timak._encoding import MAX_CAPACITY, decode, encode
from timak.value import Record, TimelineValue, merge

ROOT = Path(__file__).resolve().parent.parent
_OP = re.compile(r"(add|delete|del)\(([^()]*)\)")
_VALUE = re.compile(r"capacity(\d+)value|capacity-lessblindrecord")


@dataclass(frozen=True)
class Row:
    writes: str  # as the table writes it, spaces removed
    state: str  # the first clause of the stated result

    def siblings(self) -> tuple[int, list[TimelineValue]]:
        """The capacity the row merges at, and one sibling per write."""
        values = [_sibling(m) for m in _VALUE.finditer(self.writes)]
        match = re.match(r"capacity(\d+):", self.writes)
        # Rows of whole values merge as timelines do, at the capacities the
        # values state; rows of writes at the row's capacity.
        capacity = int(match.group(1)) if match else MAX_CAPACITY if values else 100
        for op, args in _OP.findall(self.writes):
            item, score, *rest = args.split(",")
            data = ast.literal_eval(rest[0].split("=", 1)[1]) if rest else None
            record = Record(item, int(score), op != "add", data)
            values.append(TimelineValue({item: record}))
        assert values, f"no writes parsed from {self.writes!r}"
        return capacity, values


def _sibling(match: re.Match[str]) -> TimelineValue:
    if match.group(1) is None:  # a blind write: one record, no capacity
        return TimelineValue({"a": Record("a", 1)})
    return TimelineValue({"b": Record("b", 2)}, capacity=int(match.group(1)))


def _clean(text: str) -> str:
    return re.sub(r"`+", "", " ".join(text.split()))


def readme_rows() -> list[Row]:
    text = (ROOT / "README.md").read_text()
    table = text.split("| writes (any order, any replica) | merged state |", 1)[1]
    rows = []
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        writes, state = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append(Row(writes.replace(" ", ""), _clean(state)))
    return rows


def docstring_rows() -> list[Row]:
    doc = timak.value.__doc__ or ""
    body = doc.split("writes (any order, any replica)", 1)[1].split("=====\n", 2)[1]
    rows: list[list[str]] = []
    for line in body.splitlines():
        if line.startswith("====="):
            break
        writes, state = line[:50].strip(), line[50:].strip()
        if writes and not line.startswith(" "):
            rows.append([writes, state])
        else:  # a continuation line of the row above
            rows[-1][0] += " " + writes
            rows[-1][1] += " " + state
    return [Row(w.replace(" ", ""), _clean(s)) for w, s in rows]


def _normal(row: Row) -> tuple[str, str]:
    """What must agree between the two tables: the writes, and the result up
    to its first clause (the tables word the explanations differently)."""
    writes = row.writes.replace("del(", "delete(")
    return writes, re.split(r"[;:(]", row.state)[0].strip()


def test_both_tables_state_the_same_rows() -> None:
    readme, doc = readme_rows(), docstring_rows()
    assert len(readme) >= 10
    assert [_normal(r) for r in readme] == [_normal(r) for r in doc]


def _check(state: str, merged: TimelineValue) -> None:
    visible = {r.id: r for r in merged.visible()}
    if m := re.match(r"a visible at (\d+)", state):
        assert set(visible) == {"a"} and visible["a"].score == int(m.group(1))
    elif state.startswith("a deleted"):
        assert merged["a"].deleted and not visible
    elif m := re.match(r"only (\w) visible", state):
        assert set(visible) == {m.group(1)}
    elif m := re.match(r"a with data (\S+?):", state):
        expected: Any = ast.literal_eval(m.group(1))
        data = merged["a"].data
        assert data == expected and type(data) is type(expected)
    elif m := re.match(r"capacity (\d+)", state):
        assert merged.capacity == int(m.group(1))
    elif m := re.match(r"(\w(?:, \w)*);", state):
        assert set(visible) == set(m.group(1).split(", "))
    else:
        raise AssertionError(f"the test cannot read the stated result {state!r}")


@pytest.mark.parametrize("row", readme_rows(), ids=lambda r: r.writes)
def test_readme_rows_hold_in_every_order(row: Row) -> None:
    capacity, siblings = row.siblings()
    results = []
    for order in itertools.permutations(siblings):
        merged = merge(list(order), capacity)
        _check(row.state, merged)
        round_trip = merge([decode(encode(v)) for v in order], capacity)
        assert round_trip == merged and round_trip.capacity == merged.capacity
        results.append(encode(merged))
    assert len(set(results)) == 1, "the result depends on the order of the siblings"
