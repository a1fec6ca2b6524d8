"""The history checker on SQLite: concurrent writers, SIGKILLed writers, and
proof that the checker can fail (a store tampered with behind its back, a
tampered history, deliberately broken merges)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from timak import Record, Timeline, merge
from timak._check import (
    Anomaly,
    CheckConfig,
    CheckReport,
    History,
    Written,
    analyze,
    check,
    load_history,
    read_final,
)
from timak._encoding import decode, encode
from timak.backends.sqlite import SQLiteBackend
from timak.cli import main
from timak.value import TimelineValue, order_key

KEYS = [f"hot:{i}" for i in range(5)]


def _counts(report: CheckReport) -> dict[str, int]:
    return {kind: report.count(kind) for kind in ("lost", "resurrected", "nonconverged")}


def _show(report: CheckReport) -> str:
    return "\n".join([report.summary(), report.details(), *map(str, report.anomalies[:20])])


@pytest.mark.slow
def test_concurrent_blind_and_rmw_writers_lose_nothing(tmp_path: Path) -> None:
    report = check(CheckConfig(
        url=f"sqlite:///{tmp_path}/check.db", workers=4, ops=300, keys=5, seed=11,
        history_dir=str(tmp_path / "history"),
    ))
    print(report.summary())
    assert _counts(report) == {"lost": 0, "resurrected": 0, "nonconverged": 0}, _show(report)
    assert report.ok, _show(report)
    assert report.outcomes == {"ok": 1200}, report.details()
    # Both kinds of write really ran, and most operations were writes.
    assert report.kinds["add"] > 200 and report.kinds["fanout"] > 150, report.details()
    assert report.kinds["delete"] > 50 and report.kinds["delete?"] > 50, report.details()
    assert report.checked >= 1000
    assert report.siblings_left == 0


@pytest.mark.slow
def test_sigkilled_workers_lose_nothing_and_corrupt_nothing(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    report = check(CheckConfig(
        url=f"sqlite:///{db}", workers=4, ops=400, keys=5, seed=7, kills=5,
        bucket="crash", history_dir=str(tmp_path / "history"),
    ))
    print(report.summary())
    assert report.crashes_survived >= 3, report.details()
    assert report.count("corrupt") == 0 and report.count("worker") == 0, _show(report)
    assert _counts(report) == {"lost": 0, "resurrected": 0, "nonconverged": 0}, _show(report)
    assert report.ok, _show(report)
    # A killed worker leaves at most its one operation in flight.
    assert report.outcomes["unfinished"] <= report.crashes_survived
    # Every sibling in the file decodes, the file is sound, and the store
    # still reads and writes.
    backend = SQLiteBackend(db)
    keys = sorted(backend.keys("crash"))
    assert keys == KEYS
    for key in keys:
        for sibling in backend.fetch("crash", key).siblings:
            decode(sibling)
    with contextlib.closing(sqlite3.connect(db)) as conn:  # "with conn" alone never closes
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Timeline(backend, bucket="crash", max_items=10) as tl:
        tl.add("hot:0", "after-the-crashes", 10**9)
        assert tl.get("hot:0")[0] == "after-the-crashes"
    backend.close()


# -- the checker can fail ------------------------------------------------------


@dataclass
class Run:
    """A finished small run, copied per test so tests can tamper with it."""

    db: Path
    history: Path
    bucket: str = "tamper"
    capacity: int = 10

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def analyze(self) -> list[Anomaly]:
        history = load_history(sorted(self.history.glob("*.jsonl")))
        final = read_final(self.url, self.bucket, KEYS[:3], self.capacity, fuzz=0)
        assert not final.anomalies
        return analyze(history, final.values, self.capacity)

    def final(self) -> dict[str, list[Record]]:
        return read_final(self.url, self.bucket, KEYS[:3], self.capacity, fuzz=0).values

    def replace(self, key: str, records: Iterable[Record]) -> None:
        """Overwrite ``key`` behind the checker's back."""
        backend = SQLiteBackend(self.db)
        backend.delete(self.bucket, key)
        backend.store(self.bucket, key, encode(TimelineValue({r.id: r for r in records})))
        backend.close()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    where = tmp_path_factory.mktemp("run")
    run = Run(where / "run.db", where / "history")
    report = check(CheckConfig(
        url=run.url, workers=2, ops=150, keys=3, seed=3, bucket=run.bucket,
        history_dir=str(run.history),
    ))
    assert report.ok, _show(report)
    return run


@pytest.fixture
def run(finished_run: Run, tmp_path: Path) -> Run:
    copy = Run(tmp_path / "run.db", tmp_path / "history")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{finished_run.db}{suffix}")
        if source.exists():
            shutil.copy(source, f"{copy.db}{suffix}")
    shutil.copytree(finished_run.history, copy.history)
    return copy


def test_untouched_run_analyzes_clean(run: Run) -> None:
    assert run.analyze() == []


def test_rows_deleted_behind_its_back_are_reported_lost(run: Run) -> None:
    final = run.final()
    key = max(final, key=lambda k: sum(not r.deleted for r in final[k]))
    visible = [r for r in final[key] if not r.deleted]
    assert visible
    SQLiteBackend(run.db).delete(run.bucket, key)
    lost = [a for a in run.analyze() if a.kind == "lost"]
    assert {a.id for a in lost} == {r.id for r in visible}
    assert all(a.key == key for a in lost)


def test_a_dropped_tombstone_is_reported_resurrected(run: Run) -> None:
    history = load_history(sorted(run.history.glob("*.jsonl")))
    final = run.final()
    # An acknowledged delete that the final value still holds as a tombstone.
    tombstone = next(
        r for key in final for r in final[key]
        if r.deleted and Written(key, r.id, r.score, True) in history.acked
    )
    key = next(k for k in final if tombstone in final[k])
    flipped = Record(tombstone.id, tombstone.score, False)
    run.replace(key, [flipped if r.id == tombstone.id else r for r in final[key]])
    anomalies = run.analyze()
    assert [(a.kind, a.key, a.id) for a in anomalies] == [("resurrected", key, tombstone.id)]
    assert "acked writes deleted it" in anomalies[0].detail


def test_an_item_nobody_wrote_is_reported(run: Run) -> None:
    final = run.final()
    phantom = Record("phantom", 10**9, False, {"nobody": "wrote this"})
    run.replace("hot:1", [*final["hot:1"], phantom])
    anomalies = run.analyze()
    assert ("resurrected", "hot:1", "phantom") in [(a.kind, a.key, a.id) for a in anomalies]
    # At capacity the phantom also pushes the lowest record off the end. Which
    # record that is depends on the workers' interleaving: when it is a
    # visible item, that item is lost; a tombstone's loss is no anomaly.
    lost = {a.id for a in anomalies if a.kind == "lost" and a.key == "hot:1"}
    if len(final["hot:1"]) >= run.capacity:
        lowest = min(final["hot:1"], key=order_key)
        assert lost == (set() if lowest.deleted else {lowest.id})
    else:
        assert lost == set()


def test_a_tampered_history_is_caught(run: Run) -> None:
    final = run.final()
    key = max(final, key=lambda k: sum(not r.deleted for r in final[k]))
    item = next(r for r in final[key] if not r.deleted)
    # Claim an acknowledged delete of a visible item that never happened.
    with open(run.history / "w0.0.jsonl", "a") as f:
        op = {"w": 0, "i": 0, "n": 10**6, "key": key, "id": item.id}
        f.write(json.dumps({"t": "invoke", **op, "f": "delete", "score": item.score,
                            "at": 2**62}) + "\n")
        f.write(json.dumps({"t": "ok", "w": 0, "i": 0, "n": 10**6, "at": 2**62 + 1}) + "\n")
    anomalies = run.analyze()
    assert ("resurrected", key, item.id) in [(a.kind, a.key, a.id) for a in anomalies]


def test_a_torn_last_line_is_skipped(run: Run) -> None:
    with open(run.history / "w1.0.jsonl", "a") as f:
        f.write('{"t":"invoke","w":1,"i":0,"n":99')
    history = load_history(sorted(run.history.glob("*.jsonl")))
    assert history.torn_lines == 1
    assert run.analyze() == []


# -- the oracle against timak's merge, and against broken ones -------------------

CAPACITY = 3


def _history(ops: list[tuple[Any, int, bool]]) -> History:
    """A sequential, all-acknowledged history of (id, score, deleted) on key k."""
    history = History()
    for n, (item_id, score, deleted) in enumerate(ops):
        history.note(Written("k", item_id, score, deleted), invoke=2 * n, complete=2 * n + 1)
    return history


def _records(ops: list[tuple[Any, int, bool]]) -> list[Record]:
    return [Record(i, s, d) for i, s, d in ops]


def timak_merge(ops: list[tuple[Any, int, bool]]) -> list[Record]:
    value = TimelineValue()
    for record in _records(ops):  # one record at a time, as writers would
        value = merge([value], CAPACITY, extra=[record])
    return value.newest_first()


def merge_where_delete_loses_ties(ops: list[tuple[Any, int, bool]]) -> list[Record]:
    best: dict[Any, Record] = {}
    for r in _records(ops):
        cur = best.get(r.id)
        if cur is None or (r.score, not r.deleted) > (cur.score, not cur.deleted):
            best[r.id] = r
    return sorted(best.values(), key=lambda r: r.score, reverse=True)[:CAPACITY]


def merge_trimming_only_visible(ops: list[tuple[Any, int, bool]]) -> list[Record]:
    best: dict[Any, Record] = {}
    for r in _records(ops):
        cur = best.get(r.id)
        if cur is None or (r.score, r.deleted) > (cur.score, cur.deleted):
            best[r.id] = r
    live = sorted((r for r in best.values() if not r.deleted), key=lambda r: r.score)
    return [*live[-CAPACITY:], *(r for r in best.values() if r.deleted)]


def merge_last_writer_wins(ops: list[tuple[Any, int, bool]]) -> list[Record]:
    best = {r.id: r for r in _records(ops)}  # by arrival, not by score
    return sorted(best.values(), key=lambda r: r.score, reverse=True)[:CAPACITY]


ops_strategy = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 6), st.booleans()), max_size=25
)


@settings(max_examples=examples(300), deadline=None)
@given(ops_strategy)
def test_oracle_agrees_with_timak_merge(ops: list[tuple[Any, int, bool]]) -> None:
    final = {"k": timak_merge(ops)}
    assert analyze(_history(ops), final, CAPACITY) == []


@pytest.mark.parametrize(
    ("broken_merge", "ops", "kind"),
    [
        (merge_where_delete_loses_ties, [(1, 5, False), (1, 5, True)], "resurrected"),
        (
            merge_trimming_only_visible,
            [(1, 1, False), (2, 2, False), (3, 3, False), (4, 4, True), (5, 0, False)],
            "resurrected",
        ),
        (merge_last_writer_wins, [(1, 5, False), (1, 3, False)], "lost"),
    ],
    ids=["delete-loses-ties", "tombstones-do-not-count", "last-writer-wins"],
)
def test_oracle_catches_broken_merges(
    broken_merge: Callable[[list[tuple[Any, int, bool]]], list[Record]],
    ops: list[tuple[Any, int, bool]],
    kind: str,
) -> None:
    assert analyze(_history(ops), {"k": timak_merge(ops)}, CAPACITY) == []
    anomalies = analyze(_history(ops), {"k": broken_merge(ops)}, CAPACITY)
    assert kind in {a.kind for a in anomalies}, anomalies


# -- the command ------------------------------------------------------------------

SUMMARY = re.compile(
    r"^checked=(\d+) lost=0 resurrected=0 nonconverged=0 crashes_survived=(\d+) "
    r"fuzz_cases=(\d+)$"
)


@pytest.mark.slow
def test_cli_check_passes_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", "--url", f"sqlite:///{tmp_path}/cli.db", "--workers", "2",
                 "--ops", "60", "--keys", "2", "--kills", "1", "--seed", "5"])
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    match = SUMMARY.match(last)
    assert code == 0 and match, out
    assert int(match.group(1)) > 0 and int(match.group(3)) > 0


def test_cli_check_exits_1_when_the_checker_finds_something(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_check(config: CheckConfig, progress: Any = None) -> CheckReport:
        return CheckReport(checked=5, runs=1, anomalies=[
            Anomaly("lost", "hot:0", 3, "acked add at 7 is missing")
        ])

    monkeypatch.setattr("timak._check.check", broken_check)  # imported when the command runs
    code = main(["--url", f"sqlite:///{tmp_path}/x.db", "check"])
    out = capsys.readouterr().out
    assert code == 1
    assert "lost: hot:0 id=3: acked add at 7 is missing" in out
    assert out.strip().splitlines()[-1].startswith("checked=5 lost=1 ")


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--url", "memory://"]])
def test_cli_check_refuses_bad_settings(argv: list[str], tmp_path: Path) -> None:
    assert main(["--url", f"sqlite:///{tmp_path}/x.db", "check", *argv]) == 2
