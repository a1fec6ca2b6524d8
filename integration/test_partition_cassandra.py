"""Three Cassandra nodes (``three_cassandra``: 127.0.0.2-4), partitioned and healed.

* **Partition.** ``integration/partition cut`` drops storage traffic (port 7000)
  between node 3 (127.0.0.4) and nodes 1-2, both directions, while all three stay
  up. Writers at consistency ONE run on both sides at once, each side's clients
  pinned to its own nodes (``pin_hosts=1``): blind fan-out and read-modify-write
  adds and deletes on hot and cold keys, all replicated (RF 3). Then the
  partition heals, hints flow (``nodetool repair`` if they are not enough), and
  every key is read at ALL and checked against the history (``timak.check``):
  0 lost, 0 resurrected, and every replica, read on its own, equal.
* **Node failure.** Node 3 is stopped before writers at ONE start, and started
  again while they run; it comes back stale and is repaired.

The iptables rules are removed by the fixture whatever happens (one chain, one
flush: ``integration/partition heal`` does the same by hand). Sizes are CI sizes;
``TIMAK_PARTITION_OPS`` (ops per worker) makes the partition run longer.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from timak import Record, merge
from timak._check import (
    Anomaly,
    CheckConfig,
    CheckReport,
    analyze,
    load_history,
    read_final,
    run_workers,
)
from timak._encoding import decode
from timak.backends import connect

pytest.importorskip("cassandra")
from timak.backends import cassandra as cb

#: ``ManagedCluster`` from conftest.py (test modules cannot import it by name).
Cluster = Any

pytestmark = [pytest.mark.cassandra, pytest.mark.slow]

PARTITION = Path(__file__).resolve().with_name("partition")
HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
MAJORITY, MINORITY = HOSTS[:2], HOSTS[2:]
KEYSPACE = "timak_partition"
CAPACITY = 10
HOT = [f"hot:{i}" for i in range(3)]
COLD = [f"cold:{i}" for i in range(12)]
#: What the workers pick from: each hot key 4 times as likely as a cold one.
WEIGHTED_KEYS = HOT * 4 + COLD


def _url(hosts: tuple[str, ...], consistency: str = "ONE", **options: object) -> str:
    query = {"replication_factor": 3, "consistency": consistency, "timeout": 5,
             "connect_timeout": 5, **options}
    text = "&".join(f"{k}={v}" for k, v in query.items())
    return f"cassandra://{','.join(hosts)}/{KEYSPACE}?{text}"


# -- the partition tool ------------------------------------------------------------


def _partition(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PARTITION), *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)


@pytest.fixture
def partition() -> Iterator[Any]:
    """``cut()`` isolates node 3; the rules go when the test ends, pass or fail."""
    if os.geteuid() != 0 or shutil.which("iptables") is None:
        reason = "the partition test needs root and iptables (integration/partition)"
        if os.environ.get("TIMAK_REQUIRE_CASSANDRA") == "1":
            pytest.fail(f"TIMAK_REQUIRE_CASSANDRA=1 but {reason}", pytrace=False)
        pytest.skip(reason)

    class Partition:
        def cut(self) -> None:
            result = _partition("cut", "--cluster", "three", "--isolate", "3")
            assert result.returncode == 0, result.stdout + result.stderr
            assert result.stdout.count("-j DROP") == 4, result.stdout

        def heal(self) -> None:
            result = _partition("heal")
            assert result.returncode == 0, result.stdout + result.stderr

    try:
        yield Partition()
    finally:
        _partition("heal")
        assert _partition("status").returncode == 1, "iptables rules left behind"


# -- what each node sees and holds ----------------------------------------------------


def _node_states(cluster: Cluster, node: int) -> dict[str, str]:
    """``nodetool status`` on ``node``: address -> U or D."""
    out = cluster.nodetool(node, "status", timeout=120)
    return {m.group(2): m.group(1) for m in re.finditer(r"^([UD])[NLJM]\s+(\S+)", out, re.M)}


def _wait_views(cluster: Cluster, want: dict[int, dict[str, str]], timeout: float) -> float:
    """Wait until each node's view matches ``want``; return the seconds it took."""
    started = time.monotonic()
    while True:
        views = {node: _node_states(cluster, node) for node in want}
        if all(all(views[n].get(a) == s for a, s in w.items()) for n, w in want.items()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"gossip views {views} never became {want}", pytrace=False)
        time.sleep(1)


def _held_by(host: str, bucket: str, keys: Sequence[str]) -> dict[str, list[Record]]:
    """Each key as ``host`` alone holds it: its rows, read at ONE through a client
    pinned to it (the cluster's snitch serves such a read from the local replica,
    and speculative retry is off), merged here without writing anything back."""
    with connect(_url((host,), pin_hosts=1)) as backend:
        return {
            key: merge([decode(s) for s in backend.fetch(bucket, key).siblings],
                       CAPACITY).newest_first()
            for key in keys
        }


def _replica_differences(bucket: str, keys: list[str]) -> list[str]:
    held = [_held_by(host, bucket, keys) for host in HOSTS]
    return [key for key in keys if not held[0][key] == held[1][key] == held[2][key]]


def _fresh_keyspace() -> None:
    with connect(_url(HOSTS, "ALL")) as backend:
        assert isinstance(backend, cb.CassandraBackend)
        backend.session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=120)
    with connect(_url(HOSTS, "ALL")) as backend:
        assert isinstance(backend, cb.CassandraBackend)
        # A read at ONE through a pinned client must show that node's rows, not a
        # faster replica's.
        backend.session.execute(
            f"ALTER TABLE {KEYSPACE}.siblings WITH speculative_retry = 'NONE'", timeout=120)


# -- the run ----------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    config: CheckConfig
    history: Path
    keys: tuple[str, ...] = tuple(WEIGHTED_KEYS)
    crashes: int = 0
    problems: list[Anomaly] | None = None
    error: BaseException | None = None


def _run_side(side: Side, bucket: str, seed: int) -> None:
    try:
        side.crashes, side.problems = run_workers(
            side.config, bucket, side.keys, side.history, seed=seed)
    except BaseException as exc:  # reported by the test
        side.error = exc


def _check(sides: list[Side], bucket: str, keys: Sequence[str] = (*HOT, *COLD)
           ) -> tuple[CheckReport, dict[str, list[Record]]]:
    """Read every key after the run at ALL, compare with the oracle, and
    check that each node holds the same (per host, at ONE)."""
    history = load_history(sorted(p for s in sides for p in s.history.glob("*.jsonl")))
    final = read_final(_url(HOSTS, "ALL"), bucket, keys, CAPACITY, attempts=30)
    anomalies = [*final.anomalies, *(a for s in sides for a in s.problems or [])]
    anomalies += analyze(history, final.values, CAPACITY, check_reads=False)
    for host in HOSTS:
        held = _held_by(host, bucket, keys)
        anomalies += [Anomaly("nonconverged", key, None, f"{host} holds {held[key]}")
                      for key in keys if held[key] != final.values[key]]
    anomalies += [Anomaly("untyped", "-", None, e) for e in history.untyped]
    report = CheckReport(checked=history.checked, anomalies=anomalies,
                         fuzz_cases=final.fuzz_cases, outcomes=history.outcomes,
                         kinds=history.kinds, runs=1)
    return report, final.values


def _assert_clean(report: CheckReport) -> None:
    shown = "\n".join([report.summary(), report.details(),
                       *map(str, report.anomalies[:20])])
    counts = {k: report.count(k) for k in ("lost", "resurrected", "nonconverged",
                                           "corrupt", "untyped", "worker")}
    assert counts == dict.fromkeys(counts, 0), shown
    assert report.ok, shown


def test_partition_and_heal_lose_nothing_and_converge(
    three_cassandra: Cluster, partition: Any, tmp_path: Path
) -> None:
    ops = int(os.environ.get("TIMAK_PARTITION_OPS") or 120)
    bucket = f"partition-{int(time.time())}"
    _fresh_keyspace()
    base = CheckConfig(url="", workers=2, ops=ops, keys=len(WEIGHTED_KEYS),
                       max_items=CAPACITY, fold_at=4, timeout=900)
    sides = [
        Side("majority", replace(base, url=_url(MAJORITY, pin_hosts=1)), tmp_path / "maj"),
        Side("minority", replace(base, url=_url(MINORITY, pin_hosts=1)), tmp_path / "min"),
    ]
    for side in sides:
        side.history.mkdir()

    t_cut = time.monotonic()
    partition.cut()
    detect = _wait_views(three_cassandra, {1: {HOSTS[2]: "D"}, 3: {HOSTS[0]: "D",
                                                                  HOSTS[1]: "D"}}, 120)
    threads = [threading.Thread(target=_run_side, args=(side, bucket, 40 + i))
               for i, side in enumerate(sides)]
    t_writers = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    writing = time.monotonic() - t_writers
    assert not any(t.is_alive() for t in threads), "the writers did not finish"
    for side in sides:
        assert side.error is None, f"{side.name}: {side.error!r}"
    # The partition was real: the sides hold different values now.
    diverged = _replica_differences(bucket, HOT + COLD)
    assert diverged, "both sides hold the same data: the partition did not cut anything"

    partition.heal()
    t_heal = time.monotonic()
    partitioned = t_heal - t_cut
    rejoin = _wait_views(three_cassandra, {1: {HOSTS[2]: "U"}, 3: {HOSTS[0]: "U",
                                                                 HOSTS[1]: "U"}}, 180)
    # Hints are replayed once the nodes see each other UP (checked every 10 s).
    converged_by = "hints"
    pending = _replica_differences(bucket, HOT + COLD)
    while pending and time.monotonic() - t_heal < 90:
        time.sleep(2)
        pending = _replica_differences(bucket, HOT + COLD)
    if pending:
        converged_by = "repair"
        for node in (1, 2, 3):
            three_cassandra.nodetool(node, "repair", "--full", KEYSPACE, timeout=600)
        pending = _replica_differences(bucket, HOT + COLD)
    converge = time.monotonic() - t_heal

    report, _ = _check(sides, bucket)
    outcomes = " ".join(f"{k}={v}" for k, v in sorted(report.outcomes.items()))
    print(f"\npartition: {len(sides) * base.workers} workers x {ops} ops, "
          f"{report.checked} acknowledged writes ({outcomes}); "
          f"cut detected in {detect:.1f} s, writers ran {writing:.1f} s, partition lasted "
          f"{partitioned:.1f} s; after the heal gossip rejoined in {rejoin:.1f} s and "
          f"{len(diverged)} diverged keys converged by {converged_by} in {converge:.1f} s")
    print(report.summary())
    assert pending == [], f"replicas still differ after repair: {pending}"
    _assert_clean(report)
    for side in sides:
        acked = sum(1 for p in side.history.glob("*.jsonl")
                    for line in p.read_text().splitlines() if line.startswith('{"t":"ok"'))
        assert acked >= ops, f"{side.name} side had only {acked} acknowledged ops"


def test_node_stopped_and_restarted_at_consistency_one(
    three_cassandra: Cluster, tmp_path: Path
) -> None:
    """Node 3 down for part of the run: RF 3 at ONE keeps every write acknowledged;
    after its return (and repair), every replica holds every acknowledged write and
    nothing deleted while it was away comes back."""
    ops = 250
    bucket = f"node-failure-{int(time.time())}"
    keys = [f"hot:{i}" for i in range(4)]
    side = Side("all", CheckConfig(url=_url(HOSTS), workers=3, ops=ops, keys=4,
                                   max_items=CAPACITY, timeout=900), tmp_path / "h",
                keys=tuple(keys))
    side.history.mkdir()
    thread = threading.Thread(target=_run_side, args=(side, bucket, 33))

    def progress() -> int:
        return sum(p.read_bytes().count(b'"t":"invoke"') for p in side.history.glob("*.jsonl"))

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 600
        while progress() < count and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)

    # Node 3 goes down before the first write (so every write until its return
    # misses a replica) and comes back once a third of the ops are done.
    three_cassandra.check("stop", "--node", "3", timeout=300)
    try:
        thread.start()
        wait_for(ops)
        restarted_at = progress()
    finally:
        three_cassandra.check("start", "--node", "3", timeout=600)
    back_at = progress()
    thread.join(timeout=900)
    assert not thread.is_alive() and side.error is None, side.error
    assert restarted_at >= ops, "the writers stopped before node 3 came back"
    for node in (1, 2, 3):  # hints may not have covered everything; repair does
        three_cassandra.nodetool(node, "repair", "--full", KEYSPACE, timeout=600)
    report, _ = _check([side], bucket, keys)
    print(f"\nnode 3 down for ops 1-{restarted_at} of {3 * ops}, up again from op "
          f"{back_at}; " + report.summary())
    _assert_clean(report)


def test_pin_hosts_keeps_every_request_on_the_listed_hosts(three_cassandra: Cluster) -> None:
    """The driver learns all three nodes but, with pin_hosts=1, opens connections to and
    coordinates through the listed one only; without it, it uses the others too."""
    with connect(_url((HOSTS[2],), "QUORUM", pin_hosts=1)) as pinned, \
            connect(_url((HOSTS[2],), "QUORUM")) as free:
        assert isinstance(pinned, cb.CassandraBackend) and isinstance(free, cb.CassandraBackend)
        seen: dict[str, set[str]] = {}
        for name, backend in (("pinned", pinned), ("free", free)):
            assert len(backend.session.cluster.metadata.all_hosts()) == 3
            coordinators = set()
            for i in range(12):
                result = backend.session.execute(
                    backend.statements.fetch, ("pin", f"k{i}"), trace=True)
                coordinators.add(str(result.get_query_trace(max_wait_sec=10).coordinator))
            pools = {str(h.address) for h in backend.session.get_pool_state()}
            seen[name] = coordinators | pools
        assert seen["pinned"] == {HOSTS[2]}, seen
        assert len(seen["free"]) > 1, seen
