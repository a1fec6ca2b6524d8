"""The history checker against a real Apache Cassandra.

* On the single node of ``integration/conftest.py`` (``cassandra_url``):
  concurrent writers, then SIGKILLed writers. Every acknowledged write must
  be there, nothing deleted may come back, every sibling must decode.

Three nodes (a node stopped and restarted, a network partition and its heal)
are in ``integration/test_partition_cassandra.py``, on a cluster of their own.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from timak import Timeline
from timak._check import CheckConfig, CheckReport, check
from timak._encoding import decode

pytest.importorskip("cassandra")


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
