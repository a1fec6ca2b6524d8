"""The Cassandra backend: unit checks (no server), then a real server.

Tests marked ``cassandra`` get their server from ``integration/conftest.py``
(``integration/cassandra`` or ``$TIMAK_CASSANDRA_URL``); the others run
anywhere the driver is installed.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import ssl
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from timak.backends import connect
from timak.backends.base import Backend
from timak.errors import (
    BackendError,
    BackendTimeoutError,
    ConfigError,
    MissingDriverError,
    TimakError,
    UnavailableError,
)
from timak.testing import BackendConformance

cassandra_driver = pytest.importorskip("cassandra")
from timak.backends import cassandra as cb  # noqa: E402
from timak.cli import main as cli_main  # noqa: E402

#: The ``cassandra_server`` fixture's type lives in conftest.py, which test
#: modules cannot import by name; it has ``managed``, ``stop``, ``start``,
#: ``is_up`` and ``logs``.
CassandraServer = Any


def with_options(url: str, **options: object) -> str:
    """``url`` with query options added (later ones win)."""
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={v}" for k, v in options.items())


def with_keyspace(url: str, keyspace: str) -> str:
    """``url`` naming another keyspace (same hosts and options)."""
    return urlsplit(url)._replace(path=f"/{keyspace}").geturl()


def open_backend(url: str, **options: object) -> cb.CassandraBackend:
    backend = connect(with_options(url, **options) if options else url)
    assert isinstance(backend, cb.CassandraBackend)
    return backend


def union(siblings: list[bytes]) -> set[bytes]:
    return {item for s in siblings for item in s.split(b",") if item}


# ==========================================================================
# URL parsing (no server)
# ==========================================================================


def parse(url: str) -> cb.CassandraOptions:
    return cb.parse_url(urlsplit(url))


def test_url_hosts_port_and_keyspace() -> None:
    options = parse("cassandra://h1,h2:9142/events")
    assert options.hosts == ("h1", "h2")
    assert options.port == 9142
    assert options.keyspace == "events"
    ipv6 = parse("cassandra://[::1]:9043,[fe80::2]:9043/ks")
    assert ipv6.hosts == ("::1", "fe80::2") and ipv6.port == 9043
    default = parse("cassandra://")
    assert (default.hosts, default.port, default.keyspace) == (("127.0.0.1",), 9042, "timak")


def test_url_consistency_levels() -> None:
    options = parse("cassandra://h/ks?consistency=QUORUM&read_consistency=one")
    assert options.read_consistency == cassandra_driver.ConsistencyLevel.ONE
    assert options.write_consistency == cassandra_driver.ConsistencyLevel.QUORUM
    default = parse("cassandra://h/ks")
    assert default.read_consistency == cassandra_driver.ConsistencyLevel.LOCAL_QUORUM
    with pytest.raises(ConfigError, match="SERIAL"):
        parse("cassandra://h/ks?write_consistency=SERIAL")


def test_url_credentials_from_userinfo_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIMAK_CASSANDRA_USER", raising=False)
    monkeypatch.delenv("TIMAK_CASSANDRA_PASSWORD", raising=False)
    options = parse("cassandra://app:p%40ss%3Aw@h1,h2/ks")
    assert (options.username, options.password) == ("app", "p@ss:w")
    assert "p@ss" not in repr(options)
    monkeypatch.setenv("TIMAK_CASSANDRA_USER", "env-user")
    monkeypatch.setenv("TIMAK_CASSANDRA_PASSWORD", "env-pass")
    assert (parse("cassandra://h/ks").username, parse("cassandra://h/ks").password) == (
        "env-user",
        "env-pass",
    )


def test_url_replication_and_table_options() -> None:
    nts = parse("cassandra://h/ks?replication=NetworkTopologyStrategy:dc1=3,dc2=2")
    assert nts.replication == {"class": "NetworkTopologyStrategy", "dc1": "3", "dc2": "2"}
    cql = cb.schema_cql(nts)
    assert "'dc1': '3'" in cql[0] and "'dc2': '2'" in cql[0]
    assert "PRIMARY KEY ((bucket, key), writer, seq)" in cql[1]
    assert "UnifiedCompactionStrategy" in cql[1] and "gc_grace_seconds = 864000" in cql[1]
    old = cb.schema_cql(parse("cassandra://h/ks?gc_grace_seconds=3600"), major_version=4)
    assert "LeveledCompactionStrategy" in old[1] and "gc_grace_seconds = 3600" in old[1]
    simple = parse("cassandra://h/ks?replication_factor=2")
    assert simple.replication == {"class": "SimpleStrategy", "replication_factor": "2"}


@pytest.mark.parametrize(
    "url",
    [
        "cassandra://h/ks?consistency=MOST",
        "cassandra://h/ks?timeout=-1",
        "cassandra://h/ks?tls=maybe",
        "cassandra://h/ks?replication=Everywhere:3",
        "cassandra://h/ks?replication_factor=0",
        "cassandra://h/ks?batch_limit=10",
        "cassandra://h/ks?unknown_option=1",
        "cassandra://h/ks?timeout=1&timeout=2",
        "cassandra://h/bad-keyspace",
        "cassandra://h/ks/extra",
        "cassandra://h1:9042,h2:9043/ks",
        "cassandra://:9042/ks",
    ],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        parse(url)


def test_cluster_gets_auth_tls_and_policies() -> None:
    options = parse(
        "cassandra://u:pw@127.0.0.2,127.0.0.3/ks?tls=1&tls_check_hostname=0&local_dc=dc7&timeout=3"
    )
    cluster = cb.CassandraBackend._make_cluster(options)
    try:
        assert cluster.contact_points == ["127.0.0.2", "127.0.0.3"]
        assert isinstance(cluster.ssl_context, ssl.SSLContext)
        assert cluster.ssl_context.check_hostname is False
        assert cluster.auth_provider.username == "u"
        profile = cluster.profile_manager.default
        assert profile.request_timeout == 3
        policy = profile.load_balancing_policy
        assert isinstance(policy, cassandra_driver.policies.TokenAwarePolicy)
        assert isinstance(policy._child_policy, cassandra_driver.policies.DCAwareRoundRobinPolicy)
        assert policy._child_policy.local_dc == "dc7"
    finally:
        cluster.shutdown()
    with pytest.raises(ConfigError, match="tls_ca"):
        cb.CassandraBackend._make_cluster(parse("cassandra://h/ks?tls_ca=/nonexistent/ca.pem"))


def test_missing_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cassandra", None)
    monkeypatch.delitem(sys.modules, "timak.backends.cassandra")
    with pytest.raises(MissingDriverError, match=r"timak\[cassandra\]"):
        importlib.import_module("timak.backends.cassandra")


# ==========================================================================
# Error mapping (no server)
# ==========================================================================


def driver_exception_classes() -> list[type[BaseException]]:
    """Every exception class defined anywhere in the driver package."""
    found: set[type[BaseException]] = set()
    modules = [cassandra_driver]
    for info in pkgutil.walk_packages(cassandra_driver.__path__, "cassandra."):
        if info.name.split(".")[1] in ("io", "cqlengine"):
            continue  # other reactors and the ORM: not used by the backend
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:
            continue  # needs an optional package (scales, ...), so it never runs here
    for module in modules:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("cassandra"):
                found.add(obj)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def test_every_driver_exception_is_mapped() -> None:
    classes = driver_exception_classes()
    assert len(classes) > 40  # the walk really found the driver's exceptions
    unmapped = [c for c in classes if cb.error_class(c.__new__(c)) is None]
    assert unmapped == []


@pytest.mark.parametrize(
    ("driver_class", "expected"),
    [
        ("cassandra.cluster.NoHostAvailable", UnavailableError),
        ("cassandra.OperationTimedOut", BackendTimeoutError),
        ("cassandra.Unavailable", UnavailableError),
        ("cassandra.ReadTimeout", BackendTimeoutError),
        ("cassandra.WriteTimeout", BackendTimeoutError),
        ("cassandra.ReadFailure", BackendError),
        ("cassandra.WriteFailure", BackendError),
        ("cassandra.InvalidRequest", BackendError),
        ("cassandra.AuthenticationFailed", ConfigError),
        ("cassandra.Unauthorized", ConfigError),
        ("cassandra.AlreadyExists", ConfigError),
        ("cassandra.connection.ConnectionShutdown", UnavailableError),
        ("cassandra.pool.NoConnectionsAvailable", UnavailableError),
        ("cassandra.protocol.OverloadedErrorMessage", UnavailableError),
        ("cassandra.protocol.IsBootstrappingErrorMessage", UnavailableError),
        ("cassandra.protocol.ServerError", BackendError),
        ("cassandra.query.TraceUnavailable", BackendError),
    ],
)
def test_named_driver_errors_map_to(driver_class: str, expected: type[TimakError]) -> None:
    module_name, _, name = driver_class.rpartition(".")
    cls = getattr(importlib.import_module(module_name), name)
    assert cb.error_class(cls.__new__(cls)) is expected


def test_every_mapping_row_is_reachable() -> None:
    """No row is shadowed by an earlier, broader one."""
    for driver_class, timak_class in cb._ERROR_TABLE:
        assert cb.error_class(driver_class.__new__(driver_class)) is timak_class, driver_class


def test_no_host_available_from_bad_credentials_is_a_config_error() -> None:
    auth = cassandra_driver.AuthenticationFailed("bad password")
    refused = ConnectionRefusedError(111, "refused")
    no_host = cassandra_driver.cluster.NoHostAvailable
    assert cb.error_class(no_host("x", {"h1": auth})) is ConfigError
    assert cb.error_class(no_host("x", {"h1": auth, "h2": refused})) is UnavailableError


def test_map_errors_keeps_the_cause_and_lets_bugs_through() -> None:
    timeout = cassandra_driver.OperationTimedOut("slow")
    with pytest.raises(BackendTimeoutError, match="fetch") as raised, cb.map_errors("fetch"):
        raise timeout
    assert raised.value.__cause__ is timeout
    with pytest.raises(KeyError), cb.map_errors("fetch"):
        raise KeyError("a bug, not the driver")


# ==========================================================================
# CLI (no server)
# ==========================================================================


def test_cli_schema_prints_cql(capsys: pytest.CaptureFixture[str]) -> None:
    url = "cassandra://h/app_ks?replication_factor=3"
    assert cli_main(["--url", url, "cassandra", "schema"]) == 0
    out = capsys.readouterr().out
    assert 'CREATE KEYSPACE IF NOT EXISTS "app_ks"' in out and "'replication_factor': '3'" in out
    assert 'CREATE TABLE IF NOT EXISTS "app_ks".siblings' in out


def test_cli_init_unreachable_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    url = "cassandra://127.0.0.1:1/ks?connect_timeout=2"
    assert cli_main(["--url", url, "cassandra", "init"]) == 3
    assert "unavailable" in capsys.readouterr().err


def test_cli_cassandra_needs_a_cassandra_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--url", "memory://", "cassandra", "init"]) == 2
    assert "cassandra://" in capsys.readouterr().err


# ==========================================================================
# Against a real server
# ==========================================================================


@pytest.mark.cassandra
class TestCassandraConformance(BackendConformance):
    @pytest.fixture
    def connect(self, cassandra_url: str) -> Callable[[], Backend]:
        return lambda: connect(cassandra_url)


@pytest.fixture
def backend(cassandra_url: str) -> Iterator[cb.CassandraBackend]:
    with open_backend(cassandra_url) as opened:
        yield opened


@pytest.fixture
def bucket() -> str:
    return f"cassandra-{uuid.uuid4().hex[:12]}"


@pytest.mark.cassandra
def test_cli_init_creates_and_reports(
    cassandra_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    keyspace = f"timak_cli_{uuid.uuid4().hex[:8]}"
    url = with_keyspace(cassandra_url, keyspace)
    try:
        assert cli_main(["--url", url, "cassandra", "init"]) == 0
        assert f"keyspace {keyspace}: created" in capsys.readouterr().out
        assert cli_main(["--url", url, "cassandra", "init"]) == 0
        assert f"table {keyspace}.siblings: exists" in capsys.readouterr().out
    finally:
        with open_backend(cassandra_url) as admin:
            admin.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)


@pytest.mark.cassandra
def test_missing_table_with_create_0_is_a_config_error(cassandra_url: str) -> None:
    url = with_keyspace(cassandra_url, "timak_absent")
    with pytest.raises(ConfigError, match="timak cassandra init"):
        open_backend(url, create=0)


@pytest.mark.cassandra
def test_unreachable_port_is_unavailable() -> None:
    with pytest.raises(UnavailableError):
        open_backend("cassandra://127.0.0.1:1/ks?connect_timeout=2")


@pytest.mark.cassandra
def test_consistency_levels_reach_the_coordinator(cassandra_url: str, bucket: str) -> None:
    """Trace every request the backend sends: reads carry read_consistency,
    blind writes and fold batches write_consistency."""
    with open_backend(cassandra_url, read_consistency="ONE", write_consistency="ALL") as backend:
        traced: list[Any] = []
        execute = backend.session.execute

        def tracing_execute(query: Any, *args: Any, **kwargs: Any) -> Any:
            result = execute(query, *args, **{**kwargs, "trace": True})
            traced.append(result)
            return result

        backend.session.execute = tracing_execute  # type: ignore[method-assign]
        backend.store(bucket, "k", b"one")
        seen = backend.fetch(bucket, "k")
        backend.store(bucket, "k", b"two", seen.context)
        traces = [result.get_query_trace(max_wait_sec=10) for result in traced]
        levels = [trace.parameters["consistency_level"] for trace in traces]
        assert levels == ["ALL", "ONE", "ALL"]
        backend.store_many(bucket, [("k", b"three"), ("other", b"four")])  # own path
        assert backend.inspect(bucket, "k").consistency == "ONE"


@pytest.mark.cassandra
def test_a_consistency_level_the_cluster_cannot_meet_is_unavailable(
    cassandra_url: str, bucket: str
) -> None:
    with open_backend(cassandra_url, write_consistency="THREE") as backend:
        if len(backend.session.cluster.metadata.all_hosts()) >= 3:
            pytest.skip("the cluster has three nodes; THREE can be met")
        with pytest.raises(UnavailableError, match="THREE"):
            backend.store(bucket, "k", b"v")


@pytest.mark.cassandra
def test_fold_is_one_atomic_batch(backend: cb.CassandraBackend, bucket: str) -> None:
    backend.store_many(bucket, [("k", b"one"), ("k", b"two")])
    seen = backend.fetch(bucket, "k")
    sent: list[Any] = []
    execute = backend.session.execute
    backend.session.execute = lambda q, *a, **kw: (sent.append(q), execute(q, *a, **kw))[1]  # type: ignore[method-assign]
    backend.store(bucket, "k", b"merged", seen.context)
    assert len(sent) == 1 and isinstance(sent[0], cassandra_driver.query.BatchStatement)
    assert sent[0].batch_type == cassandra_driver.query.BatchType.UNLOGGED
    assert list(backend.fetch(bucket, "k").siblings) == [b"merged"]


@pytest.mark.cassandra
def test_large_fold_takes_the_chunked_path_and_loses_nothing(
    cassandra_url: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """writer_cache=0 makes every write a new writer, so a fetch of 300
    siblings yields 300 intervals: ~24 KiB of deletes, over batch_limit."""
    with open_backend(cassandra_url, writer_cache=0, batch_limit=4096) as backend:
        backend.store_many(bucket, [("k", f"old{i}".encode()) for i in range(300)])
        seen = backend.fetch(bucket, "k")
        assert isinstance(seen.context, cb.FoldContext) and len(seen.context.deletes) == 300
        later = [f"new{i}".encode() for i in range(40)]
        backend.store_many(bucket, [("k", v) for v in later])  # after the fetch

        chunks: list[int] = []
        original = backend._delete_in_chunks

        def record(deletes: Any) -> None:
            chunks.append(len(deletes))
            original(deletes)

        monkeypatch.setattr(backend, "_delete_in_chunks", record)
        backend.store(bucket, "k", b"merged", seen.context)
        assert chunks == [300]
        assert sorted(backend.fetch(bucket, "k").siblings) == sorted([b"merged", *later])


@pytest.mark.cassandra
def test_replace_many_sends_a_chunked_folds_deletes_after_every_write(
    cassandra_url: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """replace_many runs its folds at once, but a fold over batch_limit
    (here "big": 300 intervals) still writes its new sibling before any of
    its deletes is sent, and a write after the fetch survives."""
    with open_backend(cassandra_url, writer_cache=0, batch_limit=4096) as backend:
        backend.store_many(bucket, [("big", f"old{i}".encode()) for i in range(300)])
        backend.store_many(bucket, [("small", b"a"), ("small", b"b")])
        big, small = backend.fetch_many(bucket, ["big", "small"])
        backend.store(bucket, "big", b"late")  # after the fetch: stays
        phases: list[list[str]] = []
        original = cb._backend.execute_concurrent

        def record(session: Any, requests: Any, **kwargs: Any) -> Any:
            requests = list(requests)
            phases.append(["insert" if "INSERT" in str(getattr(r, "query_string", "")) else
                           type(r).__name__ for r, _ in requests])
            return original(session, requests, **kwargs)

        monkeypatch.setattr(cb._backend, "execute_concurrent", record)
        assert backend.replace_many(
            bucket, [("big", b"merged", big.context), ("small", b"ab", small.context)]
        ) == [None, None]
        assert phases[0] == ["insert", "BatchStatement"]  # big's write, small's batch
        assert phases[1] and set(phases[1]) == {"BatchStatement"}  # big's deletes, after
        assert sorted(backend.fetch(bucket, "big").siblings) == [b"late", b"merged"]
        assert list(backend.fetch(bucket, "small").siblings) == [b"ab"]


@pytest.mark.cassandra
def test_store_many_sends_distinct_keys_in_small_batches(
    backend: cb.CassandraBackend, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fan-out's one write per key goes as batches of at most 10 keys and
    4 KiB (a 5 KB value alone), a hot key's writes as one batch of its own;
    every pair is stored, as its own sibling, and no batch warning comes."""
    sent: list[Any] = []
    original = cb._backend.execute_concurrent

    def record(session: Any, requests: Any, **kwargs: Any) -> Any:
        requests = list(requests)
        sent.extend(request for request, _ in requests)
        results = original(session, requests, **kwargs)
        warnings.extend(w for _, r in results for w in (r.response_future.warnings or ())
                        if hasattr(r, "response_future"))
        return results

    warnings: list[str] = []
    monkeypatch.setattr(cb._backend, "execute_concurrent", record)
    pairs = [(f"k{i}", b"v%d" % i) for i in range(25)] + [("big", b"x" * 5000)]
    pairs += [("hot", b"h1"), ("hot", b"h2")]
    assert backend.store_many(bucket, pairs) == [None] * len(pairs)
    batches = [r for r in sent if isinstance(r, cassandra_driver.query.BatchStatement)]
    assert sorted(len(b) for b in batches) == [2, 5, 10, 10]  # hot's own, then 25 keys
    assert len(sent) == 5  # and "big" alone
    assert warnings == []
    monkeypatch.undo()
    for key, value in pairs[:26]:
        assert list(backend.fetch(bucket, key).siblings) == [value]
    assert sorted(backend.fetch(bucket, "hot").siblings) == [b"h1", b"h2"]


@pytest.mark.cassandra
def test_crash_between_chunked_write_and_deletes_only_leaves_redundancy(
    cassandra_url: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_backend(cassandra_url, writer_cache=0, batch_limit=1024) as backend:
        backend.store_many(bucket, [("k", f"old{i}".encode()) for i in range(30)])
        seen = backend.fetch(bucket, "k")

        def crash(deletes: Any) -> None:
            raise UnavailableError("simulated crash after the new sibling was written")

        monkeypatch.setattr(backend, "_delete_in_chunks", crash)
        merged = b",".join(sorted(union(list(seen.siblings))))
        with pytest.raises(UnavailableError):
            backend.store(bucket, "k", merged, seen.context)
        monkeypatch.undo()
        after = backend.fetch(bucket, "k")
        assert merged in after.siblings and len(after.siblings) == 31
        backend.store(bucket, "k", merged, after.context)  # the next fold cleans up
        assert list(backend.fetch(bucket, "k").siblings) == [merged]


@pytest.mark.cassandra
def test_a_key_emptied_by_range_deletes_is_not_listed(
    backend: cb.CassandraBackend, bucket: str
) -> None:
    backend.store_many(bucket, [("gone", b"one"), ("gone", b"two"), ("kept", b"v")])
    backend.delete(bucket, "gone", backend.fetch(bucket, "gone").context)
    assert list(backend.fetch(bucket, "gone").siblings) == []
    assert sorted(backend.keys(bucket)) == ["kept"]


@pytest.mark.cassandra
def test_nul_and_long_keys_are_stored_intact(backend: cb.CassandraBackend, bucket: str) -> None:
    key = "\x00" + "ключ" * 200 + "\x00"
    backend.store(bucket, key, b"v")
    assert key in set(backend.keys(bucket))
    assert list(backend.fetch(bucket, key).siblings) == [b"v"]
    assert list(backend.fetch(bucket, key[:-1]).siblings) == []


def fold(backend: cb.CassandraBackend, bucket: str, key: str) -> None:
    seen = backend.fetch(bucket, key)
    backend.store(bucket, key, b",".join(sorted(union(list(seen.siblings)))), seen.context)


def cassandra_log_mentions(server: CassandraServer, needle: str) -> list[str]:
    if not server.managed:
        return []
    logs = server.logs(lines=400)
    return [line for line in logs.splitlines() if "tombstone" in line and needle in line]


@pytest.mark.cassandra
def test_point_deletes_would_trip_the_tombstone_warning(
    cassandra_url: str, bucket: str
) -> None:
    """The control for the next test: with writer_cache=0 every sibling is
    its own writer, which is what one-delete-per-superseded-sibling costs.
    1,600 writes folded every 16 must make the read warn."""
    with open_backend(cassandra_url, writer_cache=0) as backend:
        for start in range(0, 1600, 16):
            backend.store_many(bucket, [("hot", b"%d" % i) for i in range(start, start + 16)])
            fold(backend, bucket, "hot")
        found = backend.inspect(bucket, "hot")
    print(f"\ncontrol, 1,600 writes with a writer per sibling: {found}")
    assert found.tombstones > 1000
    assert any("tombstone" in w for w in found.warnings)


def bitset_merge(siblings: list[bytes]) -> int:
    """A bounded lattice for the hot-key test: a blind write is one index, a
    folded sibling the zlib-compressed bitset of every index it holds, and
    the merge is OR (commutative, associative, idempotent, like timak's).
    It lets the test check that all 100,000 writes survive while the stored
    value stays a few bytes, as a capped timeline would."""
    merged = 0
    for sibling in siblings:
        if sibling.startswith(b"z"):
            merged |= int.from_bytes(zlib.decompress(sibling[1:]), "little")
        else:
            merged |= 1 << int(sibling)
    return merged


def bitset_encode(merged: int) -> bytes:
    return b"z" + zlib.compress(merged.to_bytes((merged.bit_length() + 7) // 8, "little"))


@pytest.mark.cassandra
def test_hot_key_written_100000_times_stays_under_the_tombstone_threshold(
    cassandra_server: CassandraServer, cassandra_url: str, bucket: str
) -> None:
    """100,000 blind writes to one key by two writers (two connections, as
    two app servers), each folding (fetch, merge, store with the context)
    after every 16 of its writes: 6,250 folds, some racing each other. The
    final read scans a handful of tombstones, and no write is lost.

    Each fold deletes one interval per writer, and each interval contains
    the previous one, so newer range tombstones shadow the older ones at
    read time instead of piling up (see timak/backends/cassandra.py).
    """
    writes, every, writers = 100_000, 16, 2
    per_writer = writes // writers
    failures: list[BaseException] = []

    def write(backend: cb.CassandraBackend, first: int) -> None:
        try:
            for start in range(first, first + per_writer, every):
                batch = [("hot", b"%d" % i) for i in range(start, start + every)]
                backend.store_many(bucket, batch)
                seen = backend.fetch(bucket, "hot")
                merged = bitset_encode(bitset_merge(list(seen.siblings)))
                backend.store(bucket, "hot", merged, seen.context)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    backends = [open_backend(cassandra_url) for _ in range(writers)]
    try:
        started = time.monotonic()
        threads = [
            threading.Thread(target=write, args=(backend, n * per_writer))
            for n, backend in enumerate(backends)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        assert failures == []
        final = backends[0].fetch(bucket, "hot")
        found = backends[0].inspect(bucket, "hot")
    finally:
        for backend in backends:
            backend.close()
    print(f"\n100,000 writes + 6,250 folds in {elapsed:.1f} s; final read: {found}")
    assert bitset_merge(list(final.siblings)) == (1 << writes) - 1  # every write is there
    assert found.siblings <= writers
    assert found.tombstones <= 4 * writers, found  # ~2 markers per writer interval
    assert not any("tombstone" in w for w in found.warnings)
    assert cassandra_log_mentions(cassandra_server, bucket) == []


@pytest.mark.cassandra
def test_partial_and_full_folds_keep_the_tombstones_a_read_scans_bounded(
    cassandra_server: CassandraServer, cassandra_url: str, bucket: str
) -> None:
    """Narrowed stores keep the tombstone bound. Two Timelines (two
    connections, as two app servers) write one key of capacity 200 blind,
    3,200 items each, reading it now and then; their engines fold every 16
    of their own writes, partially (the small siblings into one delta
    beside the untouched base, a narrowed context) until the delta would
    pass 64 records, then fully. Hundreds of folds of both kinds, some
    racing, and partial read repairs: the final read scans a handful of
    tombstones (docs/cassandra.md: at most ~2 unshadowed ranges per writer,
    one below the base's position and one above), and the value holds the
    newest 200 items of all."""
    from timak import Timeline

    per_writer, capacity = 3200, 200
    failures: list[BaseException] = []
    timelines = [Timeline(open_backend(cassandra_url), bucket, max_items=capacity)
                 for _ in range(2)]
    timelines[0].add_many("hot", [(f"seed{i}", i, None) for i in range(capacity)])

    def write(timeline: Timeline, writer: int) -> None:
        try:
            for i in range(per_writer):
                score = capacity + 2 * i + writer
                timeline.fanout(["hot"], f"w{writer}.{i}", score)
                if i % 100 == 99:
                    timeline.get("hot")  # a read repair, partial beside the base
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    try:
        threads = [threading.Thread(target=write, args=(tl, n))
                   for n, tl in enumerate(timelines)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        stats = [tl.stats for tl in timelines]
        backend = timelines[0].connection
        assert isinstance(backend, cb.CassandraBackend)
        found = backend.inspect(bucket, "hot")
        newest = [record.id for record in timelines[0].get("hot", raw=True)]
    finally:
        for tl in timelines:
            tl.close()
    partial = sum(s.partial_folds for s in stats)
    full = sum(s.folds for s in stats) - partial
    print(f"\n{2 * per_writer} writes, {partial} partial and {full} full folds "
          f"(+ repairs), {sum(s.fold_errors for s in stats)} fold errors; final read: {found}")
    assert partial > 200 and full > 50
    total = 2 * per_writer
    expected = [f"w{(total - 1 - n) % 2}.{(total - 1 - n) // 2}" for n in range(capacity)]
    assert newest == expected  # every write that should be there is
    assert found.tombstones <= 8 * 2, found  # ~2 ranges (4 markers) per writer
    assert not any("tombstone" in w for w in found.warnings)
    assert cassandra_log_mentions(cassandra_server, bucket) == []


@pytest.mark.cassandra
def test_folds_beside_a_small_corrupt_sibling_leave_it_byte_for_byte(
    cassandra_url: str, bucket: str
) -> None:
    """A small corrupt sibling written by the same connection as the rest
    (so its position lies inside the writer's interval): the folds that
    blind writes trigger cannot be partial (it does not check), so they are
    full folds narrowed to the good siblings, whose range deletes must
    leave its position out. It stays, byte for byte; everything else is
    merged. (A narrow that ignored the indices deleted it at the first fold.)"""
    from timak import Timeline

    bad = b"\x93not a timeline"
    with open_backend(cassandra_url) as backend:
        tl = Timeline(backend, bucket, max_items=100, fold_at=4)
        tl.add_many("k", [(f"s{i}", i, None) for i in range(100)])
        backend.store(bucket, "k", bad)
        for i in range(8):
            tl.fanout(["k"], f"f{i}", 1000 + i)
        siblings = list(backend.fetch(bucket, "k").siblings)
        assert tl.stats.folds >= 2 and tl.stats.partial_folds == 0
        assert siblings.count(bad) == 1 and len(siblings) < 2 + tl.fold_at  # + pending
        newest = tl.get("k", skip_corrupt=True)
        assert newest[:8] == [f"f{i}" for i in range(7, -1, -1)] and len(newest) == 100


@pytest.mark.cassandra
def test_node_stop_and_restart_only_typed_errors_and_no_acked_write_lost(
    cassandra_server: CassandraServer, cassandra_url: str, bucket: str
) -> None:
    """Writes and folds keep going while the node is stopped and restarted.
    Every failure is UnavailableError or BackendTimeoutError, and every write
    that was acknowledged is there afterwards. Keep this test last: it takes
    the server away."""
    if not cassandra_server.managed:
        pytest.skip("stopping the server needs integration/cassandra (not TIMAK_CASSANDRA_URL)")
    acked: set[bytes] = set()
    errors: list[BaseException] = []
    stop = threading.Event()
    backend = open_backend(cassandra_url, timeout=2, connect_timeout=2)

    def work() -> None:
        i = 0
        while not stop.is_set():
            value = b"w%d" % i
            try:
                backend.store(bucket, f"k{i % 5}", value)
                acked.add(value)
                if i % 7 == 0:
                    fold(backend, bucket, f"k{i % 5}")
            except Exception as exc:  # every failure is recorded and checked
                errors.append(exc)
                time.sleep(0.1)
            i += 1

    worker = threading.Thread(target=work)
    worker.start()
    try:
        time.sleep(1.0)
        before_stop = len(acked)
        cassandra_server.stop()
        time.sleep(2.0)
        failures_while_down = len(errors)
        cassandra_server.start()
        deadline = time.monotonic() + 60
        recovered_at = len(acked)
        while len(acked) < recovered_at + 20 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(timeout=30)
        if not cassandra_server.is_up():
            cassandra_server.start()
    kinds = sorted({type(e).__name__ for e in errors})
    print(f"\n{len(acked)} writes acknowledged, {len(errors)} failed ({', '.join(kinds)})")
    try:
        assert before_stop > 0 and failures_while_down > 0
        assert len(acked) >= recovered_at + 20, "writes did not resume within 60 s"
        typed = (UnavailableError, BackendTimeoutError)
        unexpected = [e for e in errors if not isinstance(e, typed)]
        assert unexpected == []
        fetched = backend.fetch_many(bucket, [f"k{j}" for j in range(5)])
        present = set().union(*(union(list(f.siblings)) for f in fetched))
        assert acked - present == set()
    finally:
        backend.close()


@pytest.mark.cassandra
def test_a_value_at_the_default_bound_is_stored(
    backend: cb.CassandraBackend, bucket: str
) -> None:
    """The measurement behind ``StoreLimits`` on Cassandra (docs/scaling.md):
    a value of exactly the default ``max_value_bytes`` (15 MiB), stored with
    a context over a sibling as a fold does, reads back intact; one over
    the 16 MiB mutation limit is refused with a typed error, not stored."""
    bound = cb.CassandraBackend.limits.value_bytes
    assert bound == 15 * 1024 * 1024
    backend.store(bucket, "k", b"small")
    fetched = backend.fetch(bucket, "k")
    value = (uuid.uuid4().bytes * (bound // 16 + 1))[:bound]
    backend.store(bucket, "k", value, fetched.context)
    assert backend.fetch(bucket, "k").siblings == [value]
    too_big = value + b"x" * (1024 * 1024 + 1)
    with pytest.raises(TimakError):
        backend.store(bucket, "big", too_big)
    assert backend.fetch(bucket, "big").siblings == []
