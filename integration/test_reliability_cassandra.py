"""The history checker against a real Apache Cassandra.

* On the single node of ``integration/conftest.py`` (``cassandra_url``):
  concurrent writers, then SIGKILLed writers. Every acknowledged write must
  be there, nothing deleted may come back, every sibling must decode.
* On three nodes (opt-in, ``TIMAK_CASSANDRA_3NODE=1``): replication factor 3,
  writes at consistency ONE while node 3 is stopped and started again; then
  every acknowledged write must have converged on all replicas, and the
  clients must have seen only typed timak errors. It needs the three-node
  cluster on 127.0.0.1-3, which replaces the single-node one, so it runs
  only when asked and only when no Cassandra is running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from timak import Timeline
from timak._check import (
    Anomaly,
    CheckConfig,
    CheckReport,
    analyze,
    check,
    load_history,
    read_final,
    run_workers,
)
from timak.encoding import decode

pytest.importorskip("cassandra")

SCRIPT = Path(__file__).resolve().with_name("cassandra")
NODE_TEST_SKIP = (
    "the 3-node test replaces the single-node cluster other tests use; run it alone: "
    "integration/cassandra stop && TIMAK_CASSANDRA_3NODE=1 "
    "pytest integration/test_reliability_cassandra.py -k node"
)


def _show(report: CheckReport) -> str:
    return "\n".join([report.summary(), report.details(), *map(str, report.anomalies[:20])])


def _assert_clean(report: CheckReport) -> None:
    counts = {k: report.count(k) for k in ("lost", "resurrected", "nonconverged", "corrupt",
                                           "untyped", "worker")}
    assert counts == dict.fromkeys(counts, 0), _show(report)
    assert report.ok, _show(report)


@pytest.mark.cassandra
def test_concurrent_writers_on_cassandra(cassandra_url: str, tmp_path: Path) -> None:
    report = check(CheckConfig(
        url=cassandra_url, workers=3, ops=150, keys=4, seed=21,
        history_dir=str(tmp_path / "history"),
    ))
    print(report.summary())
    _assert_clean(report)
    assert report.kinds["add"] > 0 and report.kinds["fanout"] > 0, report.details()
    assert report.checked >= 350


@pytest.mark.cassandra
def test_sigkilled_workers_on_cassandra(cassandra_url: str, tmp_path: Path) -> None:
    bucket = f"crash-{uuid.uuid4().hex[:8]}"
    report = check(CheckConfig(
        url=cassandra_url, workers=3, ops=200, keys=4, seed=22, kills=3, bucket=bucket,
        history_dir=str(tmp_path / "history"),
    ))
    print(report.summary())
    assert report.crashes_survived >= 2, report.details()
    _assert_clean(report)
    with Timeline(cassandra_url, bucket=bucket, max_items=10) as tl:
        for key in sorted(tl.connection.keys(bucket)):
            for sibling in tl.connection.fetch(bucket, key).siblings:
                decode(sibling)
        tl.add("hot:0", "after-the-crashes", 10**9)
        assert tl.get("hot:0")[0] == "after-the-crashes"


# -- three nodes, one of them stopped and restarted during the writes ----------------

HOSTS = "127.0.0.1,127.0.0.2,127.0.0.3"
KEYSPACE = "timak_reliability"


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def _script_ok(*args: str, timeout: float) -> None:
    result = _script(*args, timeout=timeout)
    assert result.returncode == 0, f"integration/cassandra {' '.join(args)}:\n" + (
        result.stdout + result.stderr + _script("logs", "--lines", "60", timeout=60).stdout
    )


@pytest.fixture
def three_nodes() -> Iterator[None]:
    if os.environ.get("TIMAK_CASSANDRA_3NODE") != "1":
        pytest.skip(NODE_TEST_SKIP)
    status = _script("status", timeout=60).stdout
    if re.search(r"pid=\d", status):
        pytest.skip(f"a Cassandra node is running ({status.strip()}); " + NODE_TEST_SKIP)
    try:
        _script_ok("start", "--nodes", "3", timeout=1800)
        yield
    finally:
        _script("stop", timeout=300)


def _progress(history: Path) -> int:
    return sum(p.read_bytes().count(b'"t":"invoke"') for p in history.glob("*.jsonl"))


def _wait_for(history: Path, ops: int, deadline: float) -> None:
    while _progress(history) < ops and time.monotonic() < deadline:
        time.sleep(0.2)


def _replica_values(host: str, bucket: str, keys: list[str]) -> dict[str, Any]:
    """Each key as ``host`` holds it: its rows read at ONE through ``host`` only."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy
    from cassandra.query import SimpleStatement

    from timak import merge

    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([host]),
        consistency_level=ConsistencyLevel.ONE, request_timeout=30,
    )
    cluster = Cluster([host], execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    try:
        session = cluster.connect()
        found = {}
        for key in keys:
            rows = session.execute(SimpleStatement(
                f"SELECT value FROM {KEYSPACE}.siblings WHERE bucket = %s AND key = %s"
            ), (bucket, key))
            found[key] = merge([decode(row.value) for row in rows], 10).newest_first()
        return found
    finally:
        cluster.shutdown()


@pytest.mark.cassandra
@pytest.mark.slow
def test_node_failure_at_consistency_one(three_nodes: None, tmp_path: Path) -> None:
    url = f"cassandra://{HOSTS}/{KEYSPACE}?replication_factor=3&consistency=ONE&timeout=5"
    config = CheckConfig(url=url, workers=3, ops=400, keys=4, seed=33, timeout=900)
    bucket, keys, history = "node-failure", [f"hot:{i}" for i in range(4)], tmp_path / "h"
    history.mkdir()
    outcome: dict[str, Any] = {}

    def writers() -> None:
        outcome["crashes"], outcome["problems"] = run_workers(
            config, bucket, keys, history, seed=33
        )

    thread = threading.Thread(target=writers)
    thread.start()
    deadline = time.monotonic() + 900
    _wait_for(history, 200, deadline)
    stopped_at = _progress(history)
    _script_ok("stop", "--node", "3", timeout=300)
    _wait_for(history, stopped_at + 300, deadline)
    restarted_at = _progress(history)
    _script_ok("start", "--node", "3", timeout=600)
    thread.join(timeout=max(1.0, deadline - time.monotonic()))
    assert not thread.is_alive(), "the writers did not finish"
    print(f"node 3 stopped after {stopped_at} ops, started again after {restarted_at}")

    # Read at ALL: every replica answers, and Cassandra repairs the ones
    # that differ before answering. Then each replica on its own must agree.
    history_read = load_history(sorted(history.glob("*.jsonl")))
    url_all = url.replace("consistency=ONE", "consistency=ALL")
    final = read_final(url_all, bucket, keys, config.max_items, attempts=30)
    anomalies: list[Anomaly] = [
        *outcome["problems"], *final.anomalies,
        *analyze(history_read, final.values, config.max_items, check_reads=False),
    ]
    for node in (1, 2, 3):
        held = _replica_values(f"127.0.0.{node}", bucket, keys)
        anomalies += [
            Anomaly("nonconverged", key, None, f"node {node} holds {held[key]}")
            for key in keys if held[key] != final.values[key]
        ]
    report = CheckReport(checked=history_read.checked, anomalies=anomalies,
                         fuzz_cases=final.fuzz_cases, outcomes=history_read.outcomes,
                         kinds=history_read.kinds, runs=1)
    report.anomalies += [Anomaly("untyped", "-", None, e) for e in history_read.untyped]
    print(report.summary())
    print(report.details())
    assert stopped_at < restarted_at < config.workers * config.ops, "no writes while down"
    _assert_clean(report)
    assert report.checked >= 900
