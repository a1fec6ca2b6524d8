"""The benchmark harness: result shape, interleaving, every scenario, the CLI.

Speed is never asserted: these tests check that the numbers are made the way
docs/benchmarks.md says, not what they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from timak import bench
from timak.cli import main
from timak.errors import ConfigError, UnavailableError

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {"name", "backend", "ops_per_s", "floor_ops_per_s", "ratio", "p50_ms", "p99_ms"}


@pytest.fixture(scope="module")
def results() -> Iterator[list[bench.Result]]:
    with bench.open_backends(["memory", "sqlite"]) as backends:
        yield bench.run(backends, bench.QUICK)


def test_every_scenario_runs_on_every_backend(results: list[bench.Result]) -> None:
    seen = {(r.scenario, r.backend) for r in results}
    for scenario in bench.SCENARIOS:
        backends = {"pure"} if scenario == "merge" else {"memory", "sqlite"}
        assert {b for s, b in seen if s == scenario} == backends, scenario
    sizes = bench.QUICK.sizes
    fanout = {r.params["keys"] for r in results if r.scenario == "fanout"}
    assert fanout == set(sizes.fanout_keys)
    merges = {(r.params["items"], r.params["siblings"]) for r in results if r.scenario == "merge"}
    assert merges == {(i, s) for i in sizes.merge_items for s in sizes.merge_siblings}
    gets = {r.params["siblings"] for r in results if r.scenario == "get-newest-50"}
    assert gets == set(sizes.get_siblings)
    blind = {r.params["items"] for r in results if r.scenario == "blind-write"}
    assert blind == set(sizes.blind_items)


def test_json_shape_and_arithmetic(results: list[bench.Result]) -> None:
    document = json.loads(json.dumps(bench.results_json(results)))
    assert list(document) == ["results"]
    assert len(document["results"]) == len(results)
    for entry in document["results"]:
        assert set(entry) >= REQUIRED, entry["name"]
        assert entry["floor_ops_per_s"] > 0 and entry["ops_per_s"] > 0
        assert entry["ratio"] == pytest.approx(entry["ops_per_s"] / entry["floor_ops_per_s"])
        assert 0 < entry["p50_ms"] <= entry["p99_ms"]
        assert 0 < entry["floor_p50_ms"] <= entry["floor_p99_ms"]
        assert entry["cpu_ratio"] > 0
        assert entry["samples"] == entry["floor_samples"] >= bench.QUICK.plan.min_samples
        if entry["target"] is None:
            assert entry["meets_target"] is None
        else:
            assert entry["meets_target"] == (entry["ratio"] >= entry["target"])


def test_targets_are_attached_where_the_brief_sets_them(results: list[bench.Result]) -> None:
    targets = {r.scenario: r.target for r in results}
    assert targets["fanout"] == 0.8
    assert targets["get-newest-50"] == pytest.approx(1 / 3)
    assert targets["merge"] is None


def test_storage_reports_byte_figures(results: list[bench.Result]) -> None:
    storage = {r.backend: r.figures for r in results if r.scenario == "storage"}
    assert set(storage) == {"memory", "sqlite"}
    for figures in storage.values():
        payload, plain, overhead, heap, stored = (
            figures[f"{name}_bytes_per_item"]
            for name in ("payload", "uncompressed", "overhead", "python", "stored")
        )
        assert payload is not None and plain is not None and overhead is not None
        assert payload > 0 and plain - overhead == pytest.approx(payload)
        assert heap is not None and heap > 0
        assert stored is not None and stored > 0


def test_cases_leave_no_keys_behind() -> None:
    with bench.open_backends(["memory"]) as backends:
        bench.run(backends, bench.QUICK, only=["fanout", "get-newest-50", "storage"])
        assert list(backends["memory"].keys(bench.BUCKET)) == []


def test_measure_interleaves_and_sets_up_untimed() -> None:
    log: list[str] = []
    subject = bench.Op(lambda: log.append("s"), lambda: log.append("S"))
    floor = bench.Op(lambda: log.append("f"))
    plan = bench.Plan(warmup=1, min_samples=4, max_samples=4, budget_s=0.0)
    mine, theirs = bench.measure(subject, floor, plan)
    assert len(mine.wall) == len(mine.cpu) == len(theirs.wall) == len(theirs.cpu) == 4
    runs = "".join(log)
    assert runs == "Ssf" + "Ssf" + "fSs" + "Ssf" + "fSs"


def test_measure_stops_at_max_samples_despite_budget() -> None:
    plan = bench.Plan(warmup=0, min_samples=1, max_samples=3, budget_s=3600.0)
    mine, theirs = bench.measure(bench.Op(lambda: None), bench.Op(lambda: None), plan)
    assert len(mine.wall) == len(theirs.wall) == 3


def test_unknown_scenario_is_a_config_error() -> None:
    with bench.open_backends(["memory"]) as backends, pytest.raises(ConfigError):
        bench.run(backends, bench.QUICK, only=["nope"])


def test_cassandra_without_url_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TIMAK_URL", raising=False)
    assert main(["bench", "--quick", "--backend", "cassandra"]) == 2
    assert "--url cassandra://" in capsys.readouterr().err


def test_cli_only_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "merge.json"
    assert main(["bench", "--quick", "--backend", "memory", "--only", "merge",
                 "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert {r["name"].split()[0] for r in document["results"]} == {"merge"}
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].split()[:4] == ["name", "backend", "median", "ms"]
    assert "merge items=" in captured.out
    assert "[1/" in captured.err  # progress goes to stderr


def _timak(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TIMAK_URL"}
    return subprocess.run(
        [sys.executable, "-m", "timak", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_cli_help() -> None:
    done = _timak("bench", "--help")
    assert done.returncode == 0, done.stderr
    for option in ("--backend", "--url", "--quick", "--json", "--only"):
        assert option in done.stdout


def test_cli_quick_json(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    done = _timak("bench", "--quick", "--backend", "memory", "--json", str(out))
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())["results"]
    assert {r["backend"] for r in results} == {"memory", "pure"}
    assert {r["scenario"] for r in results} == set(bench.SCENARIOS)
    assert all(set(r) >= REQUIRED for r in results)
    assert "fanout keys=" in done.stdout
    assert "met" in done.stdout or "MISSED" in done.stdout


def test_plot_turns_json_into_png(tmp_path: Path, results: list[bench.Result]) -> None:
    pytest.importorskip("matplotlib", reason="pip install matplotlib (the dev extra) to run")
    data = tmp_path / "results.json"
    data.write_text(json.dumps(bench.results_json(results)))
    png = tmp_path / "read-cost.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "plot.py"), str(data), "--out", str(png)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_table_has_a_row_per_result(tmp_path: Path, results: list[bench.Result]) -> None:
    data = tmp_path / "results.json"
    data.write_text(json.dumps(bench.results_json(results)))
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "plot.py"), str(data), "--markdown"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == len(results) + 1  # the header row
    assert "missed" in done.stdout or "met" in done.stdout


def test_measure_gives_up_on_slow_cases_after_max_s_with_a_few_samples() -> None:
    plan = bench.Plan(warmup=0, min_samples=100, max_samples=1000, budget_s=0.0, max_s=0.0)
    mine, theirs = bench.measure(bench.Op(lambda: None), bench.Op(lambda: None), plan)
    assert len(mine.wall) == len(theirs.wall) == bench.MIN_SAMPLES


def test_a_store_failing_mid_run_keeps_what_was_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = bench._run_case
    calls = []

    def fail_second(case: Any, plan: bench.Plan) -> bench.Result:
        calls.append(case)
        if len(calls) == 2:
            raise UnavailableError("store went away")
        return real(case, plan)

    monkeypatch.setattr(bench, "_run_case", fail_second)
    out = tmp_path / "partial.json"
    assert main(["bench", "--quick", "--backend", "memory", "--json", str(out)]) == 3
    assert len(json.loads(out.read_text())["results"]) == 1
    captured = capsys.readouterr()
    assert "fanout keys=" in captured.out
    assert "store went away" in captured.err


def test_timak_url_naming_an_app_database_is_not_benchmarked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_db = tmp_path / "app.db"
    monkeypatch.setenv("TIMAK_URL", f"sqlite:///{app_db}")
    assert main(["bench", "--quick", "--backend", "sqlite", "--only", "storage"]) == 0
    assert not app_db.exists()
    explicit = tmp_path / "bench.db"
    assert main(["bench", "--quick", "--backend", "sqlite", "--only", "storage",
                 "--url", f"sqlite:///{explicit}"]) == 0
    assert explicit.exists()
