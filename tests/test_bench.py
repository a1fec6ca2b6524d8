"""The benchmark harness: result shape, floors, the Redis peer, interleaving,
the steady state, the CLI and its exit codes.

Speed is never asserted: these tests check that the numbers are made the way
docs/benchmarks.md says, not what they are. Tests that need redis-server
skip out loud without it; ``TIMAK_REQUIRE_REDIS=1`` turns that skip into a
failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from timak import _bench as bench
from timak._bench import cases as bench_cases
from timak._bench import contended, data, floors, harness, runner
from timak._bench.activity import ACTIVITY_SCENARIOS
from timak.backends.sqlite import SQLiteBackend
from timak.cli import main
from timak.errors import ConfigError, UnavailableError
from timak.timelines import Timeline

ROOT = Path(__file__).resolve().parent.parent
TIMAK = ROOT / "timak"
#: Floors may call the bare stores (and the harness's own helpers), nothing else of timak.
FLOOR_MAY_CALL = (TIMAK / "backends", TIMAK / "_bench")


def _redis_or_skip() -> None:
    missing = None
    if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
        missing = "redis-server is not installed"
    try:
        import redis  # noqa: F401
    except ImportError:
        missing = "redis-py is not installed (pip install -e '.[dev]')"
    if missing:
        if os.environ.get("TIMAK_REQUIRE_REDIS") == "1":
            pytest.fail(f"{missing}, and TIMAK_REQUIRE_REDIS=1")
        pytest.skip(f"{missing}: set TIMAK_REQUIRE_REDIS=1 to make this a failure")


def _have_redis() -> bool:
    try:
        _redis_or_skip()
    except pytest.skip.Exception:
        return False
    return True


@pytest.fixture(scope="module")
def maybe_peer() -> Iterator[bench.RedisPeer | None]:
    """The Redis peer when it can run here, else ``None`` (the run skips it)."""
    if not _have_redis():
        yield None
        return
    with bench.running_redis() as running:
        yield running


@pytest.fixture
def peer(maybe_peer: bench.RedisPeer | None) -> bench.RedisPeer:
    _redis_or_skip()
    assert maybe_peer is not None
    return maybe_peer


@pytest.fixture(scope="module")
def results(maybe_peer: bench.RedisPeer | None) -> Iterator[list[bench.Result]]:
    with bench.open_backends(["memory", "sqlite"]) as backends:
        yield list(bench.iter_results(backends, bench.QUICK, peer=maybe_peer))


# -- what a run produces ----------------------------------------------------


@pytest.mark.slow
def test_every_scenario_runs_on_every_backend(results: list[bench.Result]) -> None:
    seen = {(r.scenario, r.backend) for r in results}
    # contended needs a file that writer processes share: SQLite only
    assert seen == {(s, b) for s in bench.SCENARIOS for b in ("memory", "sqlite")
                    if (s, b) != ("contended", "memory")}
    newest = {r.params["pending"] for r in results if r.scenario == "newest"}
    assert newest == set(bench.QUICK.sizes.pending)
    fanout = [r for r in results if r.scenario == "fanout"]
    assert {r.units for r in fanout} == {bench.QUICK.sizes.fanout_keys}
    # the SQLite fan-out floor is bare sqlite3, not timak's store_many
    assert {r.backend: r.floor.name for r in fanout} == {
        "memory": "store_many", "sqlite": "sqlite3 executemany"}


@pytest.mark.slow
def test_contended_reports_rates_and_percentiles_per_writer_count(
    results: list[bench.Result], maybe_peer: bench.RedisPeer | None,
) -> None:
    contended = [r for r in results if r.scenario == "contended"]
    assert [r.params["writers"] for r in contended] == list(bench.QUICK.sizes.writers)
    for r in contended:
        assert r.params["lost"] == 0  # every acknowledged write is in the key
        assert r.floor.name == "timak, 1 writer"
        sides = [r.subject, r.floor] + ([] if maybe_peer is None else [r.peer])
        for side in sides:
            assert side is not None and side.per_s is not None and side.p90_ms is not None
            assert 0 < side.p50_ms <= side.p90_ms <= side.p99_ms
            # writes/s counts every write of every writer over the run
            assert side.per_s == pytest.approx(side.samples / bench.QUICK.sizes.contended_s)
        if maybe_peer is not None:
            assert r.peer is not None and r.params["peer_lost"] == 0
            assert r.peer.server_cpu_ms is not None and r.peer.server_cpu_ms >= 0


@pytest.mark.slow
def test_results_json_shape_and_arithmetic(
    results: list[bench.Result], maybe_peer: bench.RedisPeer | None
) -> None:
    document = json.loads(json.dumps(bench.results_json(results, None, {"mode": "quick"})))
    assert set(document) == {"environment", "results", "bytes"}
    for entry in document["results"]:
        subject, floor, peer = entry["subject"], entry["floor"], entry["peer"]
        assert entry["vs_floor"] == pytest.approx(subject["p50_ms"] / floor["p50_ms"])
        assert entry["cpu_vs_floor"] == pytest.approx(subject["cpu_p50_ms"] / floor["cpu_p50_ms"])
        assert entry["vs_floor_p99"] == pytest.approx(subject["p99_ms"] / floor["p99_ms"])
        for side in filter(None, (subject, floor, peer)):
            assert 0 < side["p50_ms"] <= side["p90_ms"] <= side["p99_ms"], entry["name"]
            if entry["scenario"] == "contended":  # writer processes: as many as they made
                assert side["per_s"] > 0
            else:  # interleaved: one sample per side per round
                assert side["samples"] == subject["samples"] >= bench.QUICK.plan.min_samples
                assert side["per_s"] is None
        if entry["scenario"] in ("fold", *ACTIVITY_SCENARIOS) or maybe_peer is None:
            assert peer is None  # Redis has no fold or feeds (or is not here)
        else:
            assert peer is not None and peer["name"].startswith("redis ")
            assert entry["vs_peer"] == pytest.approx(subject["p50_ms"] / peer["p50_ms"])
            assert entry["vs_peer_p99"] == pytest.approx(subject["p99_ms"] / peer["p99_ms"])
            assert peer["server_cpu_ms"] >= 0  # redis-server's own CPU, per call
            assert entry["cpu_vs_peer"] == pytest.approx(
                subject["cpu_p50_ms"] / (peer["cpu_p50_ms"] + peer["server_cpu_ms"]))
        for target in entry["targets"]:
            ratio = entry["vs_floor"] if target["against"] == "floor" else entry["vs_peer"]
            if ratio is None:
                assert target["ratio"] is None and target["met"] is None
            else:
                assert target["ratio"] == pytest.approx(ratio)
                assert target["met"] == (ratio <= target["at_most"])


@pytest.mark.slow
def test_floors_are_not_timak_code(peer: bench.RedisPeer) -> None:
    """Trace every call each floor makes: nothing in timak outside the bare
    stores (and on SQLite, fan-out's floor calls no timak code at all); and
    the subject, traced the same way, does run Timeline. (``contended``'s
    floor is timak's one writer alone, on purpose: it runs in processes.)"""
    with bench.open_backends(["memory", "sqlite"]) as backends:
        for case in bench_cases.cases(backends, bench.QUICK.sizes):
            if case.processes is not None:
                continue
            prepared = case.prepare(peer)
            try:
                floor_files = _files_called(prepared.floor.run, prepared.floor.setup)
                subject_files = _files_called(prepared.subject.run, prepared.subject.setup)
            finally:
                prepared.cleanup()
            timak_calls = {f for f in floor_files if f.is_relative_to(TIMAK)}
            assert all(any(f.is_relative_to(d) for d in FLOOR_MAY_CALL) for f in timak_calls), (
                case.name, sorted(map(str, timak_calls)))
            if (case.scenario, case.backend) == ("fanout", "sqlite"):
                assert {f for f in timak_calls if not f.is_relative_to(TIMAK / "_bench")} == set()
            assert TIMAK / "timelines.py" in subject_files, case.name


def _files_called(run: Callable[[], object], setup: Callable[[], object] | None) -> set[Path]:
    if setup is not None:
        setup()
    called: set[Path] = set()

    def profile(frame: Any, event: str, arg: object) -> None:
        if event == "call":
            called.add(Path(frame.f_code.co_filename).resolve())

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return called


def test_plain_decode_reads_every_item_of_the_stored_bytes() -> None:
    stored = data.full_value(30)
    decoded = floors.plain_decode(stored)
    strings = set(_strings(decoded))
    for i in range(30):
        assert data.payload(i)["object"]["text"] in strings
    with pytest.raises(ValueError, match="format 250"):
        floors.plain_decode(b"TK\xfa" + stored[3:])


def _strings(tree: object) -> Iterator[str]:
    if isinstance(tree, str):
        yield tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(tree, list | tuple):
        for v in tree:
            yield from _strings(v)


def test_fanout_starts_from_full_timelines_at_staggered_fold_points() -> None:
    sizes = bench.Sizes(fanout_keys=48, items=40, limit=10, pending=(0,))
    with bench.open_backends(["memory"]) as backends:
        backend = backends["memory"]
        (case,) = [c for c in bench_cases.cases(backends, sizes) if c.scenario == "fanout"]
        prepared = case.prepare(None)
        try:
            mine = [k for k in backend.keys(bench.BUCKET) if not k.startswith("fanout-floor")]
            before = {k: len(backend.fetch(bench.BUCKET, k).siblings) for k in mine}
            # every key is full, and the keys sit at every point of the fold cycle
            assert set(before.values()) == set(range(1, 16))  # 1..15: a 16th write folds
            reader = Timeline(connection=backend, bucket=bench.BUCKET, max_items=sizes.items)
            clean = next(k for k in mine if before[k] == 1)
            assert len(reader.get(clean)) == sizes.items
            prepared.subject.run()  # one post
            after = {k: len(backend.fetch(bench.BUCKET, k).siblings) for k in mine}
        finally:
            prepared.cleanup()
    folded = {k for k in mine if after[k] < before[k]}
    # exactly the keys one write short of fold_at: 1 in 15, not all, not none
    assert folded == {k for k in mine if before[k] == 15}
    assert 0 < len(folded) < len(mine) // 4


def test_repeated_reads_and_folds_use_a_fresh_timeline_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Timeline may cache values it decoded; a case that reads or folds the
    same siblings again and again must not time a warm cache."""
    used: list[Timeline] = []
    for method in ("page", "fold"):
        real = getattr(Timeline, method)

        def spy(self: Timeline, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            used.append(self)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Timeline, method, spy)
    sizes = bench.Sizes(fanout_keys=4, items=30, limit=10, pending=(8,))
    with bench.open_backends(["memory"]) as backends:
        for case in bench_cases.cases(backends, sizes):
            if case.scenario not in ("newest", "fold"):
                continue
            prepared = case.prepare(None)
            try:
                kept: list[Timeline] = []  # alive, so no two can share an id
                for _ in range(3):
                    used.clear()
                    assert prepared.subject.setup is not None
                    prepared.subject.setup()
                    prepared.subject.run()
                    kept.append(used[-1])
                assert len({id(tl) for tl in kept}) == 3, case.name
            finally:
                prepared.cleanup()


@pytest.mark.slow
def test_cases_leave_no_keys_behind(peer: bench.RedisPeer) -> None:
    with bench.open_backends(["memory"]) as backends:
        list(bench.iter_results(backends, bench.QUICK, peer=peer, only=["fanout", "newest"]))
        assert list(backends["memory"].keys(bench.BUCKET)) == []
    assert peer.client.dbsize() == 0


def test_sqlite_fanout_floor_writes_the_rows_the_store_reads(tmp_path: Path) -> None:
    """The bare-sqlite3 floor does the store's work: its rows are siblings
    the SQLite backend then fetches (so it is not cheaper by writing less)."""
    path = str(tmp_path / "floor.db")
    with contextlib.closing(SQLiteBackend(path)) as store:
        store.store(bench.BUCKET, "a", b"old")
        bare = floors.SQLiteInsert(path)
        try:
            bare.insert([(bench.BUCKET, "a", b"new"), (bench.BUCKET, "b", b"new")])
        finally:
            bare.close()
        assert sorted(store.fetch(bench.BUCKET, "a").siblings) == [b"new", b"old"]
        assert store.fetch(bench.BUCKET, "b").siblings == [b"new"]


def test_contended_writers_run_together_and_lose_nothing() -> None:
    """Two writer processes, folding often (fold_at=4): every acknowledged
    write is in the key afterwards. (How many writes they make is not
    checked beyond one: on a loaded machine a process may get little CPU
    in 0.2 s.)"""
    run = contended.timak_writers(2, 0.2, fold_at=4)
    writes = len(run.samples.wall)
    assert run.writers == 2 and run.lost == 0, (writes, run.lost)
    assert writes == len(run.samples.cpu) >= 1
    assert run.per_s == pytest.approx(writes / 0.2)


def test_table_shows_p99_ratios_and_contended_rates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    subject = bench.Side("timak", 1.0, 8.0, 1.0, 1.0, 50, p90_ms=2.0, per_s=900.0)
    floor = bench.Side("timak, 1 writer", 0.5, 2.0, 0.5, 0.5, 80, p90_ms=1.0, per_s=1600.0)
    result = bench.Result("contended writers=4 items=4000", "contended", "sqlite", "writes", 1,
                          subject, floor, params={"writers": 4, "lost": 0})
    monkeypatch.setattr(runner, "run_case", lambda case, plan, peer, tick=None: result)
    assert main(["bench", "--quick", "--backend", "sqlite", "--only", "contended",
                 "--no-peer"]) == 0
    out = capsys.readouterr().out
    assert "p99 x floor" in out and "p99 x redis" in out
    row = next(line for line in out.splitlines() if line.startswith(result.name))
    after_floor = row.split("1 writer", 1)[1].split()
    # floor ms, p99, x floor (1.0/0.5), p99 x floor (8.0/2.0), cpu x floor
    assert after_floor[:5] == ["0.500", "2.000", "2.00", "4.00", "2.00"]
    rates = [line.split() for line in out.splitlines() if "writers=4" in line][1:]
    assert rates[0][-5:] == ["900", "1.000", "2.000", "8.000", "0"]
    assert rates[1][-5:] == ["1,600", "0.500", "1.000", "2.000", "-"]


def test_unknown_scenario_is_a_config_error() -> None:
    with bench.open_backends(["memory"]) as backends, pytest.raises(ConfigError):
        list(bench.iter_results(backends, bench.QUICK, only=["nope"]))


# -- the Redis peer ---------------------------------------------------------


@pytest.mark.slow
def test_redis_peer_is_started_and_stopped() -> None:
    _redis_or_skip()
    with bench.running_redis() as peer:
        process, port = peer.process, peer.port
        assert process.poll() is None and peer.client.ping()
        assert peer.client.config_get("save")["save"] == ""
        assert peer.client.config_get("appendonly")["appendonly"] == "no"
        peer.fill(["a", "b"], 60)
        assert [m["id"] for m in peer.newest("b", 3)] == [data.item_id(i) for i in (59, 58, 57)]
        peer.post(["a"], 60, 60)  # a full set: the oldest falls off
        assert peer.client.zcard("a") == 60
        assert peer.newest("a", 1)[0]["data"] == data.payload(60)
    assert process.poll() is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.slow
def test_redis_peer_is_stopped_when_the_run_fails() -> None:
    _redis_or_skip()
    with pytest.raises(KeyboardInterrupt), bench.running_redis() as peer:
        process = peer.process
        raise KeyboardInterrupt
    assert process.poll() is not None


def test_a_missing_redis_server_skips_the_peer_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "fold.json"
    done = _timak("bench", "--quick", "--backend", "memory", "--only", "fold", "--json",
                  str(out), env={"TIMAK_BENCH_REDIS_SERVER": str(tmp_path / "no-redis")})
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stderr.splitlines() if "Redis peer skipped" in line]
    assert len(skipped) == 1 and "redis-server not found" in skipped[0]
    environment = json.loads(out.read_text())["environment"]
    assert "redis-server not found" in environment["peer_skipped"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_an_interrupted_run_stops_its_redis_server(tmp_path: Path, signum: int) -> None:
    """Ctrl-C (SIGINT), SIGTERM or SIGKILL mid-run: the redis-server the run
    started is gone afterwards (a wrapper records its pid, then execs the
    server). SIGKILL runs no cleanup: the kernel stops it (Linux only)."""
    _redis_or_skip()
    if signum == signal.SIGKILL and not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux-only")
    real = shutil.which("redis-server") or "/usr/bin/redis-server"
    pidfile, wrapper = tmp_path / "redis.pid", tmp_path / "redis-server"
    wrapper.write_text(f'#!/bin/sh\necho $$ > "{pidfile}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "TIMAK_URL"}
    env["TIMAK_BENCH_REDIS_SERVER"] = str(wrapper)
    run = subprocess.Popen(
        [sys.executable, "-m", "timak", "bench", "--backend", "memory", "--only", "fanout"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert run.stderr is not None
        assert "[1/1]" in run.stderr.readline()  # the first case has started
        pid = int(pidfile.read_text())
        os.kill(pid, 0)  # running now
        run.send_signal(signum)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if run.stderr is not None:
            run.stderr.close()
    for _ in range(100):  # the kernel's SIGTERM and the shutdown take a moment
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# -- measure ----------------------------------------------------------------


def test_measure_interleaves_rotating_who_goes_first() -> None:
    log: list[str] = []
    subject = bench.Op(lambda: log.append("s"), lambda: log.append("S"))
    floor = bench.Op(lambda: log.append("f"))
    peer = bench.Op(lambda: log.append("p"))
    plan = bench.Plan(warmup=1, min_samples=4, max_samples=4, budget_s=0.0)
    taken = bench.measure([subject, floor, peer], plan)
    assert [len(s.wall) for s in taken] == [4, 4, 4]
    assert [len(s.cpu) for s in taken] == [4, 4, 4]
    # warm-up, then rounds starting with subject, floor, peer, subject
    assert "".join(log) == "Ssfp" + "Ssfp" + "fpSs" + "pSsf" + "Ssfp"


def test_measure_ticks_on_long_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long case reports progress every TICK_S seconds (here: every round)."""
    monkeypatch.setattr(harness, "TICK_S", 0.0)
    ticks: list[tuple[int, float]] = []
    plan = bench.Plan(warmup=0, min_samples=4, max_samples=4, budget_s=0.0)
    bench.measure([bench.Op(lambda: None)], plan, lambda n, s: ticks.append((n, s)))
    assert [n for n, _ in ticks] == [1, 2, 3, 4]
    assert all(s >= 0 for _, s in ticks)
    ticks.clear()
    monkeypatch.setattr(harness, "TICK_S", 3600.0)
    bench.measure([bench.Op(lambda: None)], plan, lambda n, s: ticks.append((n, s)))
    assert ticks == []  # a short case prints no progress between its start and end


def test_measure_stops_at_max_samples_despite_budget() -> None:
    plan = bench.Plan(warmup=0, min_samples=1, max_samples=3, budget_s=3600.0)
    taken = bench.measure([bench.Op(lambda: None), bench.Op(lambda: None)], plan)
    assert [len(s.wall) for s in taken] == [3, 3]


def test_measure_gives_up_on_slow_cases_after_max_s_with_a_few_samples() -> None:
    plan = bench.Plan(warmup=0, min_samples=100, max_samples=1000, budget_s=0.0, max_s=0.0)
    taken = bench.measure([bench.Op(lambda: None), bench.Op(lambda: None)], plan)
    assert [len(s.wall) for s in taken] == [bench.MIN_SAMPLES] * 2


# -- the CLI ----------------------------------------------------------------


def _timak(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "TIMAK_URL"}
    return subprocess.run(
        [sys.executable, "-m", "timak", *args], cwd=ROOT, env={**base, **(env or {})},
        capture_output=True, text=True, timeout=300, check=False,
    )


def _fake_result(met: bool) -> bench.Result:
    side = bench.Side("x", 1.0, 2.0, 1.0, 1.0, 5)
    target = bench.Target("floor", 1.5, 1.0 if met else 3.0, met)
    return bench.Result("fold items=1 siblings=2", "fold", "memory", "folds", 1, side, side,
                        targets=(target,))


def test_targets_not_measured_are_not_counted_as_missed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a Redis peer its targets cannot be measured: `bench --quick`
    counted them as MISSED (issue 22). They are reported apart, and fail
    nothing; a real miss beside them still does."""
    side = bench.Side("x", 1.0, 2.0, 1.0, 1.0, 5)
    targets = (bench.Target("floor", 1.5, 3.0, False), bench.Target("redis", 2.0, None, None))
    result = bench.Result("fold items=1 siblings=2", "fold", "memory", "folds", 1, side, side,
                          targets=targets)
    monkeypatch.setattr(runner, "run_case", lambda case, plan, peer, tick=None: result)
    argv = ["bench", "--quick", "--backend", "memory", "--only", "fold", "--no-peer",
            "--fail-on-miss"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "redis<=2 not measured" in out
    assert "1 target(s) not measured" in out and "1 target(s) MISSED" in out
    only_unmeasured = dataclasses.replace(result, targets=targets[1:])
    monkeypatch.setattr(runner, "run_case", lambda case, plan, peer, tick=None: only_unmeasured)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 target(s) not measured" in out and "target(s) MISSED" not in out


@pytest.mark.parametrize(("met", "flag", "code"), [
    (False, [], 0), (False, ["--fail-on-miss"], 1), (True, ["--fail-on-miss"], 0),
])
def test_fail_on_miss_sets_the_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    met: bool, flag: list[str], code: int,
) -> None:
    monkeypatch.setattr(runner, "run_case", lambda case, plan, peer, tick=None: _fake_result(met))
    argv = ["bench", "--quick", "--backend", "memory", "--only", "fold", "--no-peer", *flag]
    assert main(argv) == code
    out = capsys.readouterr().out
    assert ("floor<=1.5 met" if met else "floor<=1.5 MISSED") in out
    assert ("1 target(s) MISSED" in out) is not met
    if not met and not flag:
        assert "pass --fail-on-miss to fail" in out


def test_cassandra_without_url_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TIMAK_URL", raising=False)
    assert main(["bench", "--quick", "--backend", "cassandra", "--no-peer"]) == 2
    assert "--url cassandra://" in capsys.readouterr().err


def test_cli_help_names_every_option() -> None:
    done = _timak("bench", "--help")
    assert done.returncode == 0, done.stderr
    for option in ("--backend", "--url", "--quick", "--json", "--only", "--fail-on-miss",
                   "--no-peer"):
        # A whole option, not part of a longer one (--json in --json-out).
        assert re.search(rf"(?<![\w-]){option}(?![\w-])", done.stdout), option
    assert "MISSED" in done.stdout  # the help says a miss still exits 0


@pytest.mark.slow
def test_cli_quick_json_has_results_bytes_and_environment(tmp_path: Path) -> None:
    _redis_or_skip()
    out = tmp_path / "quick.json"
    done = _timak("bench", "--quick", "--backend", "memory", "--json", str(out))
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert {r["scenario"] for r in document["results"]} == set(bench.SCENARIOS) - {"contended"}
    assert document["bytes"]["redis_memory_usage"] > 0
    assert document["bytes"]["stored_value"] > 0
    assert document["environment"]["redis_server"]
    assert "Redis peer skipped" not in done.stderr
    assert "x redis" in done.stdout and "How to read this" in done.stdout
    assert "timak / Redis MEMORY USAGE" in done.stdout
    assert not list(tmp_path.glob("dump.rdb")) and not (ROOT / "dump.rdb").exists()


def test_a_store_failing_mid_run_keeps_what_was_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = runner.run_case
    calls: list[Any] = []

    def fail_second(case: Any, plan: bench.Plan, peer: Any, tick: Any = None) -> bench.Result:
        calls.append(case)
        if len(calls) == 2:
            raise UnavailableError("store went away")
        return real(case, plan, peer, tick)

    monkeypatch.setattr(runner, "run_case", fail_second)
    out = tmp_path / "partial.json"
    argv = ["bench", "--quick", "--backend", "memory", "--no-peer", "--json", str(out)]
    assert main(argv) == 3
    assert len(json.loads(out.read_text())["results"]) == 1
    captured = capsys.readouterr()
    assert "fanout keys=" in captured.out
    assert "store went away" in captured.err


# -- benchmarks/plot.py -----------------------------------------------------


@pytest.mark.slow
def test_plot_turns_json_into_png(tmp_path: Path, results: list[bench.Result]) -> None:
    pytest.importorskip("matplotlib", reason="pip install matplotlib (the dev extra) to run")
    source = tmp_path / "results.json"
    source.write_text(json.dumps(bench.results_json(results)))
    png = tmp_path / "medians.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "plot.py"), str(source), "--out", str(png)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_markdown_table_has_a_row_per_result(tmp_path: Path, results: list[bench.Result]) -> None:
    source = tmp_path / "results.json"
    source.write_text(json.dumps(bench.results_json(results)))
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "plot.py"), str(source), "--markdown"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == len(results) + 1  # the header row
    for result in results:
        assert any(row.startswith(f"| {result.name} | {result.backend} |") for row in rows)


@pytest.mark.slow
def test_compare_table_has_a_column_per_run(tmp_path: Path, results: list[bench.Result]) -> None:
    files = []
    for run in ("one", "two"):
        path = tmp_path / f"results-{run}.json"
        path.write_text(json.dumps(bench.results_json(results)))
        files.append(str(path))
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "plot.py"), *files, "--compare"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "| case | backend | one | two |"
    first = results[0]
    cell = f"{first.vs_floor:.2f}" if first.vs_floor < 10 else ""
    row = next(line for line in lines if line.startswith(f"| {first.name} | {first.backend} |"))
    assert row.count(" / ") == 2 and cell in row


# -- benchmarks/django_feed.py ----------------------------------------------


@pytest.mark.slow
def test_django_feed_benchmark_reports_both_sides(tmp_path: Path) -> None:
    """The Django home-feed benchmark runs (tiny sizes) and reports timak,
    its floor and django-activity-stream, p50 and p99, for the post and the
    read. Its figures are not looked at."""
    pytest.importorskip("django", reason="pip install -e '.[django]' to run")
    pytest.importorskip("actstream", reason="pip install django-activity-stream (the dev "
                        "extra) to run")
    out = tmp_path / "django.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "django_feed.py"), "--quick", "--json",
         str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert [r["scenario"] for r in document["results"]] == ["post", "home"]
    for entry in document["results"]:
        assert entry["subject"]["name"] == "timak activity feeds"
        assert entry["peer"]["name"].startswith("django-activity-stream ")
        for side in (entry["subject"], entry["floor"], entry["peer"]):
            assert 0 < side["p50_ms"] <= side["p99_ms"]
        assert entry["vs_peer_p99"] == pytest.approx(
            entry["subject"]["p99_ms"] / entry["peer"]["p99_ms"])
    assert document["environment"]["django_activity_stream"]
