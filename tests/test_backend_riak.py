"""The Riak backend against ``RiakTestDouble``, a test double of Riak's HTTP API.

These tests check timak's side of the protocol and the double's fidelity to
the documented behaviour; they are not a substitute for a real Riak (see
``integration/test_riak.py``).
"""

from __future__ import annotations

import datetime
import http.client
import inspect
import json
import re
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from riak_double import CREATED_TYPE_PROPS, RiakTestDouble
from urllib3 import exceptions as u3

from timak import Timeline
from timak.backends import connect
from timak.backends.base import Backend
from timak.backends.riak import (
    LargeObjectWarning,
    RiakBackend,
    parse_size,
    props_problems,
    setup_commands,
)
from timak.backends.riak._errors import map_exception, mapped_errors
from timak.backends.riak._multipart import parse_multipart
from timak.cli import main
from timak.errors import (
    BackendError,
    BackendTimeoutError,
    ConfigError,
    InvalidInputError,
    TimakError,
    UnavailableError,
    ValueTooLargeError,
)
from timak.testing import BackendConformance

RiakFactory = Callable[..., RiakBackend]


@pytest.fixture(scope="module")
def shared_riak() -> Iterator[RiakTestDouble]:
    with RiakTestDouble() as riak:
        yield riak


@pytest.fixture
def riak() -> Iterator[RiakTestDouble]:
    with RiakTestDouble() as double:
        yield double


@pytest.fixture
def open_backend(riak: RiakTestDouble) -> Iterator[RiakFactory]:
    """Open backends on the per-test double; all are closed afterwards."""
    opened: list[Backend] = []

    def factory(**options: Any) -> RiakBackend:
        backend = connect(riak.url(**options))
        assert isinstance(backend, RiakBackend)
        opened.append(backend)
        return backend

    yield factory
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(open_backend: RiakFactory) -> RiakBackend:
    return open_backend()


def raw(riak: RiakTestDouble, method: str, path: str, **kw: Any) -> urllib3.BaseHTTPResponse:
    """A request straight to the double, bypassing the backend."""
    with urllib3.PoolManager() as pool:
        return pool.request(method, f"http://127.0.0.1:{riak.port}{path}", retries=False, **kw)


class TestRiakConformance(BackendConformance):
    """The whole backend contract, including real siblings from racing writers."""

    @pytest.fixture
    def connect(self, shared_riak: RiakTestDouble) -> Callable[[], Backend]:
        return lambda: connect(shared_riak.url())


# ------------------------------------------------------------------ multipart

RIAK_MULTIPART = (
    b"\r\n--B0und\r\nContent-Type: application/octet-stream\r\n"
    b'Link: </buckets/b>; rel="up"\r\nEtag: 1a\r\n'
    b"Last-Modified: Mon, 23 Nov 2026 20:00:00 GMT\r\n\r\nfirst\r\n--not-the-boundary"
    b"\r\n--B0und\r\nContent-Type: application/octet-stream\r\nEtag: 2b\r\n"
    b"Last-Modified: Mon, 23 Nov 2026 20:00:01 GMT\r\nX-Riak-Deleted: true\r\n\r\n"
    b"\r\n--B0und\r\nContent-Type: application/octet-stream\r\n"
    b"Etag: 3c\r\n\r\n\x00\r\n\r\nthird--"
    b"\r\n--B0und--\r\n"
)


def test_multipart_parts_keep_bytes_and_mark_tombstones() -> None:
    parts = parse_multipart(RIAK_MULTIPART, "multipart/mixed; boundary=B0und")
    assert [p.body for p in parts] == [b"first\r\n--not-the-boundary", b"", b"\x00\r\n\r\nthird--"]
    assert [p.deleted for p in parts] == [False, True, False]
    assert parts[0].headers["etag"] == "1a"


def test_multipart_rfc_form_with_preamble_epilogue_and_quoted_boundary() -> None:
    body = b"preamble\r\n--a b\r\nX: 1\r\n\r\nv1\r\n--a b  \r\n\r\nv2\r\n--a b--\r\nepilogue"
    parts = parse_multipart(body, 'multipart/mixed; boundary="a b"')
    assert [(dict(p.headers), p.body) for p in parts] == [({"x": "1"}, b"v1"), ({}, b"v2")]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (RIAK_MULTIPART[:-10], "multipart/mixed; boundary=B0und"),  # no close delimiter
        (b"\r\n--B\r\nContent-Type: x\r\nno blank line\r\n--B--\r\n",
         "multipart/mixed; boundary=B"),
        (b"\r\n--B\r\nnot a header\r\n\r\nv\r\n--B--\r\n", "multipart/mixed; boundary=B"),
        (RIAK_MULTIPART, "multipart/mixed"),  # no boundary
        (RIAK_MULTIPART, "text/plain; boundary=B0und"),
    ],
    ids=["unclosed", "no-header-end", "bad-header", "no-boundary", "not-multipart"],
)
def test_malformed_multipart_is_a_backend_error(body: bytes, content_type: str) -> None:
    with pytest.raises(BackendError):
        parse_multipart(body, content_type)


def test_malformed_300_from_the_server_is_a_backend_error(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    riak.fail_next(300, b"Siblings:\nabc\n", headers={"X-Riak-Vclock": "a85hYGBgzGDKBVIs"},
                   methods=["GET"], path_contains="/keys/k")
    with pytest.raises(BackendError, match="boundary"):
        backend.fetch("b", "k")
    riak.fail_next(300, RIAK_MULTIPART[:-12], methods=["GET"], path_contains="/keys/k",
                   headers={"X-Riak-Vclock": "a85h",
                            "Content-Type": "multipart/mixed; boundary=B0und"})
    with pytest.raises(BackendError, match="closing boundary"):
        backend.fetch("b", "k")
    riak.fail_next(200, b"value without a vclock", methods=["GET"], path_contains="/keys/k")
    with pytest.raises(BackendError, match="X-Riak-Vclock"):
        backend.fetch("b", "k")


def test_reads_ask_for_multipart_and_every_request_asks_riak_to_decode(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    backend.store("b", "k", b"v")
    backend.fetch("b", "k")
    [get] = riak.recorded("GET", "/keys/k")
    assert get.headers["accept"] == "multipart/mixed, */*;q=0.5"
    assert all(r.headers.get("x-riak-url-encoding") == "on" for r in riak.requests)
    assert all(r.headers["user-agent"].startswith("timak/") for r in riak.requests)


# ------------------------------------------------------------ tombstones, 404


def test_stale_delete_leaves_a_tombstone_sibling_that_reads_skip(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    backend.store("b", "k", b"one")
    seen = backend.fetch("b", "k")
    backend.store("b", "k", b"later")
    backend.delete("b", "k", seen.context)
    assert sorted(riak.siblings("timak", "b", "k")) == [(b"", True), (b"later", False)]
    # The server answers 300 with a tombstone part; the backend drops it.
    answer = raw(riak, "GET", "/types/timak/buckets/b/keys/k",
                 headers={"Accept": "multipart/mixed"})
    assert answer.status == 300 and b"X-Riak-Deleted: true" in answer.data
    fetched = backend.fetch("b", "k")
    assert list(fetched.siblings) == [b"later"]
    backend.store("b", "k", b"merged", fetched.context)
    assert riak.siblings("timak", "b", "k") == [(b"merged", False)]


def test_tombstone_404_carries_a_vclock_but_fetch_keeps_the_contract(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    riak.reap_after = None  # inspect the tombstone before Riak would reap it
    backend.store("b", "k", b"v")
    backend.delete("b", "k")
    answer = raw(riak, "GET", "/types/timak/buckets/b/keys/k")
    assert answer.status == 404
    assert answer.headers["X-Riak-Vclock"] and answer.headers["X-Riak-Deleted"] == "true"
    assert backend.fetch("b", "k") == backend.fetch("b", "never-written")
    assert backend.fetch("b", "k").context is None
    # A blind write after the tombstone sits beside it, and is all a read sees.
    backend.store("b", "k", b"again")
    assert sorted(riak.siblings("timak", "b", "k")) == [(b"", True), (b"again", False)]
    fetched = backend.fetch("b", "k")
    assert list(fetched.siblings) == [b"again"]
    backend.store("b", "k", b"again", fetched.context)  # folding removes the tombstone
    assert riak.siblings("timak", "b", "k") == [(b"again", False)]


def test_keys_skips_tombstoned_keys_that_riak_still_lists(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    riak.reap_after = None  # the listing before Riak reaps the tombstone
    for key in ("a", "b", "c"):
        backend.store("bk", key, b"v")
    backend.delete("bk", "b")
    assert riak.raw_keys("timak", "bk") == ["a", "b", "c"]
    assert sorted(backend.keys("bk")) == ["a", "c"]
    assert riak.reap_tombstones() == 1
    assert riak.raw_keys("timak", "bk") == ["a", "c"]


def test_keys_reads_a_stream_of_many_chunks(riak: RiakTestDouble, backend: RiakBackend) -> None:
    riak.stream_chunk = 2
    keys = [f"k{i}" for i in range(7)]
    backend.store_many("bk", [(k, b"v") for k in keys])
    assert sorted(backend.keys("bk")) == keys
    [listing] = riak.recorded("GET", "/keys?")
    assert listing.query == {"keys": "stream"}
    assert len(riak.recorded("HEAD")) == 7


@pytest.mark.slow
def test_abandoning_a_key_listing_midstream_leaves_the_backend_usable(
    riak: RiakTestDouble, open_backend: RiakFactory
) -> None:
    backend = open_backend(max_connections=1)
    riak.stream_chunk = 1
    backend.store_many("bk", [(f"k{i}", b"v") for i in range(300)])
    listing = backend.keys("bk")
    first = next(listing)  # one HEAD batch (256) read; the rest of the stream is not
    listing.close()  # type: ignore[attr-defined]
    assert first.startswith("k")
    assert list(backend.fetch("bk", "k1").siblings) == [b"v"]
    assert len(riak.recorded("HEAD")) == 256


@pytest.mark.parametrize(
    ("body", "error"),
    [(b'{"keys":["a"]}{"error":"timeout"}', BackendTimeoutError),
     (b'{"keys":["a"]}{"keys":["b"', BackendError),
     (b'{"keys":"nope"}', BackendError)],
    ids=["timeout", "truncated", "not-a-list"],
)
def test_broken_key_streams_raise(
    riak: RiakTestDouble, backend: RiakBackend, body: bytes, error: type[Exception]
) -> None:
    backend.store("bk", "a", b"v")
    riak.fail_next(200, body, methods=["GET"], path_contains="keys=stream")
    with pytest.raises(error):
        list(backend.keys("bk"))


# ------------------------------------------------- bucket properties, config


def test_blind_write_to_a_last_write_wins_type_is_refused_before_any_write(
    riak: RiakTestDouble, open_backend: RiakFactory
) -> None:
    backend = open_backend(bucket_type="default")
    with pytest.raises(ConfigError, match="allow_mult") as caught:
        backend.store("b", "k", b"v")
    assert "riak admin bucket-type create timak" in str(caught.value) or \
        "riak admin bucket-type create default" in str(caught.value)
    assert riak.recorded("PUT") == []
    with pytest.raises(ConfigError):
        backend.fetch("b", "k")  # every operation checks, not only writes


def test_what_the_check_prevents_silent_loss_on_the_default_type(
    riak: RiakTestDouble, open_backend: RiakFactory
) -> None:
    """With the check off, Riak's default type keeps one of two blind writes."""
    backend = open_backend(bucket_type="default", check_props="false")
    backend.store("b", "k", b"writer-a")
    backend.store("b", "k", b"writer-b")
    assert list(backend.fetch("b", "k").siblings) == [b"writer-b"]
    assert riak.recorded("GET", "/props") == []


def test_props_are_checked_once_per_bucket_and_bucket_overrides_count(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    riak.set_bucket_props("timak", "lww", allow_mult=False)
    for _ in range(3):
        backend.store("fine", "k", b"v")
        backend.fetch("fine", "k")
    assert len(riak.recorded("GET", "/buckets/fine/props")) == 1
    with pytest.raises(ConfigError, match="'lww'"):
        backend.store("lww", "k", b"v")
    assert riak.recorded("PUT", "/buckets/lww/") == []


@pytest.mark.parametrize(
    "props",
    [{"last_write_wins": True}, {"write_once": True}, {"consistent": True},
     {"datatype": "set"}, {"active": False}],
    ids=lambda p: next(iter(p)),
)
def test_other_sibling_losing_types_are_refused(
    riak: RiakTestDouble, open_backend: RiakFactory, props: dict[str, Any]
) -> None:
    riak.set_bucket_type("odd", **props)
    with pytest.raises(ConfigError):
        open_backend(bucket_type="odd").store("b", "k", b"v")
    assert props_problems({**CREATED_TYPE_PROPS, **props})
    assert props_problems(CREATED_TYPE_PROPS) == []


def test_unknown_bucket_type_says_how_to_create_it(open_backend: RiakFactory) -> None:
    with pytest.raises(ConfigError, match="riak admin bucket-type create nope"):
        open_backend(bucket_type="nope").fetch("b", "k")
    unchecked = open_backend(bucket_type="nope", check_props="0")
    with pytest.raises(ConfigError, match="Unknown bucket type"):
        unchecked.fetch("b", "k")  # a 404 that is not "not found"
    with pytest.raises(ConfigError, match="Unknown bucket type"):
        unchecked.store("b", "k", b"v")


def test_setup_commands_quote_odd_names() -> None:
    assert setup_commands("timak") == [
        "riak admin bucket-type create timak '{\"props\":{\"allow_mult\":true}}'",
        "riak admin bucket-type activate timak",
    ]
    assert setup_commands("it's")[1] == "riak admin bucket-type activate 'it'\"'\"'s'"


# -------------------------------------------------------------- path encoding


def test_hostile_keys_cannot_address_another_bucket(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    backend.store("b", "../../x", b"1")
    backend.store("b", "..", b"2")
    backend.store("b", ".", b"3")
    backend.store("a/b", "c", b"4")
    backend.store("a", "b/c", b"5")
    backend.store("b", "+ %2B", b"6")
    assert riak.paths() == {
        ("timak", "b", "../../x"), ("timak", "b", ".."), ("timak", "b", "."),
        ("timak", "a/b", "c"), ("timak", "a", "b/c"), ("timak", "b", "+ %2B"),
    }
    for put in riak.recorded("PUT"):
        path = put.raw_path.partition("?")[0]
        assert path.split("/")[:5] == ["", "types", "timak", "buckets", path.split("/")[4]]
        assert len(path.split("/")) == 7 and "/.." not in path and "/./" not in path


def test_hostile_bucket_type_names_are_encoded(
    riak: RiakTestDouble, open_backend: RiakFactory
) -> None:
    riak.set_bucket_type("t/../default")
    backend = open_backend(bucket_type="t/../default")
    backend.store("b", "k", b"v")
    assert riak.paths() == {("t/../default", "b", "k")}


def test_keys_decode_even_on_a_cluster_in_compatibility_mode(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    riak.http_url_encoding = False  # the header asks Riak to decode anyway
    backend.store("b", "a/b c", b"v")
    assert riak.paths() == {("timak", "b", "a/b c")}
    assert list(backend.keys("b")) == ["a/b c"]


# ---------------------------------------------------------- quorum parameters


def test_quorum_parameters_reach_riak(riak: RiakTestDouble, open_backend: RiakFactory) -> None:
    backend = open_backend(r="quorum", pr="1", w="2", dw="one", pw="0")
    backend.store("b", "k", b"v")
    backend.fetch("b", "k")
    backend.delete("b", "k")
    [put] = riak.recorded("PUT")
    [get] = riak.recorded("GET", "/keys/k")
    [delete] = riak.recorded("DELETE")
    assert put.query == {"w": "2", "dw": "one", "pw": "0", "returnbody": "true"}
    assert get.query == {"r": "quorum", "pr": "1"}
    assert delete.query == {"r": "quorum", "pr": "1", "w": "2", "dw": "one", "pw": "0"}


def test_bad_quorum_values_are_config_errors(riak: RiakTestDouble) -> None:
    with pytest.raises(ConfigError):
        connect(riak.url(r="most"))
    # The double rejects them as Riak does, had one slipped through.
    assert raw(riak, "GET", "/types/timak/buckets/b/keys/k?r=most").status == 400


# ---------------------------------------------------------- store results


def test_store_reports_sibling_counts_cheaply(riak: RiakTestDouble, backend: RiakBackend) -> None:
    assert [backend.store("b", "k", b"v") for _ in range(3)] == [1, 2, 3]
    fetched = backend.fetch("b", "k")
    assert backend.store("b", "k", b"merged", fetched.context) == 1
    put = riak.recorded("PUT")[-1]
    assert put.headers["accept"].startswith("text/plain")  # a vtag list, not the values
    assert put.headers["content-type"] == "application/octet-stream"


def test_large_values_do_not_ask_for_a_count(riak: RiakTestDouble,
                                             open_backend: RiakFactory) -> None:
    backend = open_backend(count_siblings_below="10")
    assert backend.store("b", "k", b"0123456789") == 1
    assert backend.store("b", "k", b"0123456789!") is None
    assert [p.query["returnbody"] for p in riak.recorded("PUT")] == ["true", "false"]


def test_foreign_contexts_are_refused(backend: RiakBackend) -> None:
    with pytest.raises(InvalidInputError):
        backend.store("b", "k", b"v", frozenset({1}))
    with pytest.raises(InvalidInputError):
        backend.delete("b", "k", "not\r\nbase64")


# -------------------------------------------------------------- value sizes


def test_value_size_warns_then_refuses(riak: RiakTestDouble, open_backend: RiakFactory) -> None:
    backend = open_backend(warn_size="1KB", max_size="4KB")
    backend.store("b", "small", b"x" * 1024)
    with pytest.warns(LargeObjectWarning, match="1025 bytes"):
        backend.store("b", "big", b"x" * 1025)
    with pytest.raises(ValueTooLargeError):
        backend.store("b", "huge", b"x" * (4096 + 1))
    with pytest.raises(ValueTooLargeError):
        backend.store_many("b", [("ok", b"x"), ("huge", b"x" * 5000)])
    assert {p.segments[-1] for p in riak.recorded("PUT")} == {"small", "big"}


def test_size_defaults_follow_riak() -> None:
    backend = connect("riak://127.0.0.1:1/")
    assert isinstance(backend, RiakBackend)
    assert (backend.warn_size, backend.max_size) == (5 * 1024 * 1024, 50 * 1024 * 1024)
    backend.close()
    assert parse_size("5MB") == parse_size("5 mib") == 5 * 1024 * 1024
    assert parse_size("123") == 123
    with pytest.raises(ConfigError):
        parse_size("5 parsecs")


def test_riaks_object_limit_counts_all_siblings(riak: RiakTestDouble, backend: RiakBackend) -> None:
    riak.max_object_size = 1000
    backend.store("b", "k", b"x" * 600)
    with pytest.raises(ValueTooLargeError, match=r"object\.size\.maximum"):
        backend.store("b", "k", b"y" * 600)  # 1200 bytes with its sibling
    assert riak.sibling_count("timak", "b", "k") == 1


def test_sibling_limit_is_reported_with_a_remedy(riak: RiakTestDouble,
                                                 backend: RiakBackend) -> None:
    riak.max_siblings = 3
    for _ in range(3):
        backend.store("b", "k", b"v")
    with pytest.raises(BackendError, match=r"object\.siblings\.maximum"):
        backend.store("b", "k", b"v")


# -------------------------------------------------------- failures, retries


def test_503_on_a_write_is_unavailable_and_not_retried(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    backend.store("b", "warm", b"v")
    riak.fail_next(503, "Too Many write failures to satisfy W/DW\n", methods=["PUT"])
    with pytest.raises(UnavailableError):
        backend.store("b", "k", b"v")
    riak.fail_next(503, "request timed out\n", methods=["PUT"])
    with pytest.raises(BackendTimeoutError):
        backend.store("b", "k", b"v")
    assert len(riak.recorded("PUT", "/keys/k")) == 2
    assert riak.sibling_count("timak", "b", "k") == 0


def test_reads_are_retried_after_a_503_until_retries_run_out(
    riak: RiakTestDouble, open_backend: RiakFactory
) -> None:
    backend = open_backend(retries="2")
    backend.store("b", "k", b"v")
    riak.fail_next(503, "R-value unsatisfied: 1/2\n", methods=["GET"], path_contains="/keys/k")
    assert list(backend.fetch("b", "k").siblings) == [b"v"]
    assert len(riak.recorded("GET", "/keys/k")) == 2
    riak.fail_next(503, "R-value unsatisfied: 1/2\n", times=3, methods=["GET"],
                   path_contains="/keys/k")
    with pytest.raises(UnavailableError, match="R-value"):
        backend.fetch("b", "k")
    assert len(riak.recorded("GET", "/keys/k")) == 5


@pytest.mark.slow
def test_a_slow_write_times_out_once_and_may_still_land(
    riak: RiakTestDouble, open_backend: RiakFactory
) -> None:
    backend = open_backend(timeout="0.3")
    backend.store("b", "warm", b"v")
    riak.hang_next(1.0, methods=["PUT"])
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError):
        backend.store("b", "k", b"v")
    assert time.monotonic() - started < 0.9
    assert len(riak.recorded("PUT", "/keys/k")) == 1  # not retried
    deadline = time.monotonic() + 5
    while riak.sibling_count("timak", "b", "k") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert riak.sibling_count("timak", "b", "k") == 1  # "may or may not have been applied"


@pytest.mark.slow
def test_a_slow_read_is_retried_then_times_out(
    riak: RiakTestDouble, open_backend: RiakFactory
) -> None:
    backend = open_backend(timeout="0.2", retries="1")
    backend.store("b", "k", b"v")
    riak.hang_next(1.0, times=2, methods=["GET"], path_contains="/keys/k")
    with pytest.raises(BackendTimeoutError):
        backend.fetch("b", "k")
    assert len(riak.recorded("GET", "/keys/k")) == 2


def test_dropped_connections(riak: RiakTestDouble, backend: RiakBackend) -> None:
    backend.store("b", "k", b"v")
    riak.drop_next(methods=["GET"], path_contains="/keys/k")
    assert list(backend.fetch("b", "k").siblings) == [b"v"]  # a read is retried
    riak.drop_next(methods=["PUT"], after_apply=True)
    with pytest.raises(UnavailableError):
        backend.store("b", "k", b"w")  # a write is not: it may have landed...
    assert len(riak.recorded("PUT")) == 2
    assert sorted(v for v, _ in riak.siblings("timak", "b", "k")) == [b"v", b"w"]  # ...once


def test_refused_connections_are_unavailable(open_backend: RiakFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = connect(f"riak://127.0.0.1:{port}/?retries=1")
    with pytest.raises(UnavailableError, match="cannot connect"):
        backend.fetch("b", "k")
    with pytest.raises(UnavailableError):
        backend.store("b", "k", b"v")
    backend.close()


def test_a_stopped_server_is_unavailable_even_on_pooled_connections(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    backend.store("b", "k", b"v")
    riak.stop()
    with pytest.raises(UnavailableError):
        backend.fetch("b", "k")


def test_writes_retry_only_requests_that_never_reached_riak(backend: RiakBackend) -> None:
    retry = backend._retry
    refused = u3.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    assert retry.increment("PUT", "/x", error=refused).connect == retry.connect - 1  # type: ignore[operator]
    with pytest.raises(u3.ProtocolError):
        retry.increment("PUT", "/x", error=u3.ProtocolError("reset after sending"))
    with pytest.raises(u3.ReadTimeoutError):
        retry.increment("DELETE", "/x", error=u3.ReadTimeoutError(None, "/x", "slow"))  # type: ignore[arg-type]
    assert retry.increment("GET", "/x", error=u3.ProtocolError("reset")).read == 1
    assert not retry.is_retry("PUT", 503) and retry.is_retry("GET", 503)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [(400, "r query parameter must be an integer", BackendError),
     (401, "", ConfigError),
     (403, "PUT aborted by pre-commit hook.", BackendError),
     (412, "", BackendError),
     (413, "Request Entity Too Large", ValueTooLargeError),
     (426, "Try HTTPS instead.", ConfigError),
     (500, "Error:\n{too_large,60000000}\n", ValueTooLargeError),
     (500, "Error:\nbadarg\n", BackendError),
     (502, "", UnavailableError),
     (504, "", BackendTimeoutError)],
)
def test_statuses_map_into_the_tree(
    riak: RiakTestDouble, open_backend: RiakFactory, status: int, body: str,
    error: type[TimakError],
) -> None:
    backend = open_backend(retries="0")
    backend.store("b", "warm", b"v")
    riak.fail_next(status, body, methods=["PUT"])
    with pytest.raises(error) as caught:
        backend.store("b", "k", b"v")
    assert type(caught.value) is error
    if body:
        assert body.strip().splitlines()[-1] in str(caught.value)  # the body is in the message


# --------------------------------------------- every driver exception maps


def _urllib3_exception_classes() -> list[type[Exception]]:
    return [cls for _, cls in inspect.getmembers(u3, inspect.isclass)
            if issubclass(cls, Exception) and not issubclass(cls, Warning)
            and cls.__module__ == u3.__name__]


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance built the way the library builds it, where a guess works."""
    for args in (("boom",), (None, "boom"), (None, "/x", "boom"), (b"part", 10)):
        try:
            exc = cls(*args)
            str(exc)
            return exc
        except Exception:
            continue
    exc = cls.__new__(cls)  # half-built: the mapping must survive even this
    BaseException.__init__(exc, "boom")
    return exc


LOWER_LEVEL = [
    *_urllib3_exception_classes(),
    ConnectionRefusedError, ConnectionResetError, BrokenPipeError, socket.timeout,
    socket.gaierror, TimeoutError, OSError, ssl.SSLError, ssl.SSLCertVerificationError,
    http.client.RemoteDisconnected, http.client.IncompleteRead, http.client.BadStatusLine,
    http.client.HTTPException,
]


@pytest.mark.parametrize("cls", LOWER_LEVEL, ids=lambda c: c.__name__)
def test_every_lower_level_exception_maps_into_the_tree(cls: type[BaseException]) -> None:
    exc = _instance(cls)
    with pytest.raises(TimakError) as caught, mapped_errors("test"):
        raise exc
    assert caught.value.__cause__ is exc
    wrapped = u3.MaxRetryError.__new__(u3.MaxRetryError)
    wrapped.reason = exc  # what urllib3 raises once retries run out
    assert type(map_exception(wrapped, "test")) is type(caught.value)


def test_the_exception_list_covers_urllib3() -> None:
    assert len(_urllib3_exception_classes()) > 30
    mapped = {cls: type(map_exception(_instance(cls), "t")) for cls in LOWER_LEVEL}
    assert mapped[u3.NewConnectionError] is UnavailableError  # though a ConnectTimeoutError
    assert mapped[u3.NameResolutionError] is UnavailableError
    assert mapped[u3.ConnectTimeoutError] is UnavailableError  # never reached Riak
    assert mapped[u3.ReadTimeoutError] is BackendTimeoutError
    assert mapped[socket.timeout] is BackendTimeoutError
    assert mapped[u3.ProtocolError] is UnavailableError
    assert mapped[ConnectionRefusedError] is UnavailableError
    assert mapped[u3.LocationParseError] is ConfigError
    assert mapped[u3.DecodeError] is BackendError


def test_timak_errors_and_bugs_pass_through_unchanged() -> None:
    with pytest.raises(ConfigError), mapped_errors("t"):
        raise ConfigError("mine")
    with pytest.raises(KeyError), mapped_errors("t"):
        raise KeyError("a bug stays a bug")


# ------------------------------------------------------ concurrency, close


def test_many_calls_run_concurrently_bounded_and_in_order(
    riak: RiakTestDouble, open_backend: RiakFactory
) -> None:
    backend = open_backend(max_connections="3")
    backend.store("b", "warm", b"v")
    riak.hang_next(0.1, times=9, methods=["PUT"])
    keys = [f"k{i}" for i in range(9)]
    assert backend.store_many("b", [(k, k.encode()) for k in keys]) == [1] * 9
    assert 2 <= riak.max_in_flight <= 3
    fetched = backend.fetch_many("b", list(reversed(keys)))
    assert [list(f.siblings) for f in fetched] == [[k.encode()] for k in reversed(keys)]


def test_a_failure_in_store_many_is_raised(riak: RiakTestDouble, backend: RiakBackend) -> None:
    backend.store("b", "warm", b"v")
    riak.fail_next(500, "Error:\nbadarg\n", methods=["PUT"], path_contains="/keys/k3")
    with pytest.raises(BackendError, match="badarg"):
        backend.store_many("b", [(f"k{i}", b"v") for i in range(8)])


def test_closed_backend_raises(backend: RiakBackend) -> None:
    backend.store("b", "k", b"v")
    backend.close()
    with pytest.raises(BackendError, match="closed"):
        backend.fetch("b", "k")
    with pytest.raises(BackendError, match="closed"):
        backend.store_many("b", [("a", b"v"), ("b", b"v")])


def test_ping(backend: RiakBackend) -> None:
    assert backend.ping() is True


# ------------------------------------------------------------- URL parsing


@pytest.mark.parametrize(
    "url",
    ["riak://h/?bogus=1", "riak://h/path", "riak://h/?timeout=soon", "riak://h/?tls=maybe",
     "riak://h/?warn_size=9MB&max_size=1MB", "riak:///?bucket_type=t", "riak://h/?retries=-1",
     "riak://h/?bucket_type="],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        connect(url)


def test_url_options() -> None:
    backend = connect("riaks://[::1]:8443/?bucket_type=tl&timeout=2.5&max_connections=4")
    assert isinstance(backend, RiakBackend)
    assert backend.base_url == "https://[::1]:8443"
    assert (backend.bucket_type, backend.max_connections) == ("tl", 4)
    backend.close()
    plain = connect("riak://example.invalid/?tls=1")
    assert isinstance(plain, RiakBackend) and plain.base_url == "https://example.invalid:8098"
    plain.close()


def test_credentials_need_tls_and_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="HTTPS") as caught:
        connect("riak://ann:s3cret@h/")
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        connect("riak://ann:s3cret@h/?nope=1")
    assert "s3cret" not in str(caught.value)
    monkeypatch.setenv("TIMAK_RIAK_USER", "ann")
    with pytest.raises(ConfigError, match="TIMAK_RIAK_PASSWORD"):
        connect("riaks://h/")


# ------------------------------------------------------------ TLS and auth


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "riak test double")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def secure_riak(tls_files: tuple[Path, Path]) -> Iterator[RiakTestDouble]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    with RiakTestDouble(credentials=("ann", "p@ss:w/rd"), ssl_context=context) as double:
        yield double


def test_basic_auth_over_tls(
    secure_riak: RiakTestDouble, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ca = secure_riak.port, tls_files[0]
    backend = connect(f"riaks://ann:p%40ss%3Aw%2Frd@127.0.0.1:{port}/?ca_certs={ca}")
    backend.store("b", "k", b"v")
    assert list(backend.fetch("b", "k").siblings) == [b"v"]
    backend.close()
    monkeypatch.setenv("TIMAK_RIAK_USER", "ann")
    monkeypatch.setenv("TIMAK_RIAK_PASSWORD", "p@ss:w/rd")
    from_env = connect(f"riak://127.0.0.1:{port}/?tls=1&ca_certs={ca}")
    assert list(from_env.fetch("b", "k").siblings) == [b"v"]
    from_env.close()
    monkeypatch.setenv("TIMAK_RIAK_PASSWORD", "wrong")
    wrong = connect(f"riaks://127.0.0.1:{port}/?ca_certs={ca}")
    with pytest.raises(ConfigError, match="401"):
        wrong.fetch("b", "k")
    wrong.close()


def test_an_untrusted_certificate_is_unavailable(secure_riak: RiakTestDouble) -> None:
    backend = connect(f"riaks://ann:x@127.0.0.1:{secure_riak.port}/?retries=0")
    with pytest.raises(UnavailableError, match="TLS"):
        backend.fetch("b", "k")
    backend.close()


# -------------------------------------------------------------------- CLI


def test_cli_setup_prints_the_operator_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["riak", "setup", "--bucket-type", "tl"]) == 0
    out = capsys.readouterr().out
    assert "riak admin bucket-type create tl '{\"props\":{\"allow_mult\":true}}'" in out
    assert "riak admin bucket-type activate tl" in out


def test_cli_check(riak: RiakTestDouble, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", riak.url(), "riak", "check"]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["--url", riak.url(), "riak", "check", "--bucket-type", "default"]) == 1
    assert "allow_mult is false" in capsys.readouterr().out
    assert main(["--url", riak.url(bucket_type="missing"), "riak", "check"]) == 1
    assert [r.segments for r in riak.recorded("GET")][-1] == ["types", "missing", "props"]
    assert main(["--url", "memory://", "riak", "check"]) == 2
    unreachable = riak.url(retries=0)
    riak.stop()
    assert main(["--url", unreachable, "riak", "check"]) == 3
    assert main(["riak"]) == 2


# ------------------------------------------------------- the double itself


class TestDoubleFidelity:
    """The double answers as Riak's HTTP API documents; these keep it honest."""

    def test_put_needs_a_content_type(self, riak: RiakTestDouble) -> None:
        answer = raw(riak, "PUT", "/types/timak/buckets/b/keys/k", body=b"v")
        assert answer.status == 400 and b"Content-Type" in answer.data

    def test_siblings_as_a_vtag_list_without_multipart(self, riak: RiakTestDouble) -> None:
        for value in (b"1", b"2"):
            raw(riak, "PUT", "/types/timak/buckets/b/keys/k", body=value,
                headers={"Content-Type": "text/plain"})
        answer = raw(riak, "GET", "/types/timak/buckets/b/keys/k")
        assert answer.status == 300 and answer.data.startswith(b"Siblings:\n")
        assert len(answer.data.splitlines()) == 3

    def test_a_vclock_replaces_only_what_it_saw(self, riak: RiakTestDouble) -> None:
        path = "/types/timak/buckets/b/keys/k"
        put = {"Content-Type": "text/plain"}
        raw(riak, "PUT", path, body=b"1", headers=put)
        vclock = raw(riak, "GET", path).headers["X-Riak-Vclock"]
        raw(riak, "PUT", path, body=b"2", headers=put)
        raw(riak, "PUT", path, body=b"3", headers={**put, "X-Riak-Vclock": vclock})
        assert sorted(v for v, _ in riak.siblings("timak", "b", "k")) == [b"2", b"3"]

    def test_default_type_keeps_the_last_write(self, riak: RiakTestDouble) -> None:
        for value in (b"1", b"2"):
            raw(riak, "PUT", "/types/default/buckets/b/keys/k", body=value,
                headers={"Content-Type": "text/plain"})
        assert riak.siblings("default", "b", "k") == [(b"2", False)]

    def test_conditional_requests(self, riak: RiakTestDouble) -> None:
        path = "/types/timak/buckets/b/keys/k"
        put = {"Content-Type": "text/plain"}
        raw(riak, "PUT", path, body=b"1", headers=put)
        got = raw(riak, "GET", path)
        assert raw(riak, "GET", path, headers={"If-None-Match": got.headers["ETag"]}).status \
            == 304
        assert raw(riak, "GET", path, headers={
            "If-Modified-Since": got.headers["Last-Modified"]}).status == 304
        assert raw(riak, "PUT", path, body=b"2", headers={**put, "If-None-Match": "*"}).status \
            == 412
        assert raw(riak, "PUT", path, body=b"2", headers={**put, "If-Match": '"nope"'}).status \
            == 412
        assert raw(riak, "PUT", path, body=b"2",
                   headers={**put, "If-Match": got.headers["ETag"]}).status == 204

    def test_listing_props_ping_and_unknown_types(self, riak: RiakTestDouble) -> None:
        raw(riak, "PUT", "/types/timak/buckets/b/keys/k%00x", body=b"v",
            headers={"Content-Type": "text/plain"})
        assert raw(riak, "GET", "/types/timak/buckets/b/keys?keys=true").json() == \
            {"keys": ["k\x00x"]}
        assert raw(riak, "GET", "/types/timak/props").json()["props"]["allow_mult"] is True
        assert raw(riak, "GET", "/types/default/buckets/b/props").json()["props"]["name"] == "b"
        assert raw(riak, "GET", "/types/nope/props").status == 404
        assert raw(riak, "GET", "/types/nope/buckets/b/keys/k").data.startswith(b"Unknown")
        assert raw(riak, "GET", "/ping").data == b"OK"
        assert raw(riak, "DELETE", "/types/timak/buckets/b/keys/absent").status == 404

    def test_credentials_over_plain_http_get_426(self) -> None:
        with RiakTestDouble(credentials=("a", "b")) as double:
            assert raw(double, "GET", "/ping").status == 426


def test_no_warnings_leak_from_normal_use(backend: RiakBackend) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend.store("b", "k", b"v")
        backend.fetch("b", "k")
        list(backend.keys("b"))
    assert caught == []


def test_timeline_folds_blind_writes_from_many_writers_at_its_threshold(
    riak: RiakTestDouble, open_backend: RiakFactory
) -> None:
    """Sibling counts from Riak let every writer fold at ``fold_at``, however
    many writers there are (a per-process count would allow W * fold_at)."""
    from timak import Timeline

    writers = [Timeline(open_backend(), bucket="tl", max_items=100, fold_at=4)
               for _ in range(3)]
    most = 0
    for i in range(30):
        writers[i % 3].fanout(["hot"], i, float(i))
        most = max(most, riak.sibling_count("timak", "tl", "hot"))
    assert most <= 4
    assert sorted(writers[0].get("hot")) == list(range(30))


# ------------------------------------------- the double against a real Riak KV 3.2.1


def _wait_until(done: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_double_reaps_tombstones_after_reap_after(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    riak.reap_after = 0.2
    backend.store("b", "k", b"v")
    backend.store("b", "keep", b"v")
    backend.delete("b", "k")
    tombstone = raw(riak, "GET", "/types/timak/buckets/b/keys/k")
    assert tombstone.status == 404 and tombstone.headers.get("X-Riak-Deleted") == "true"
    _wait_until(lambda: riak.raw_keys("timak", "b") == ["keep"])
    reaped = raw(riak, "GET", "/types/timak/buckets/b/keys/k")
    assert (reaped.status, reaped.data) == (404, b"not found\n")
    assert "X-Riak-Vclock" not in reaped.headers and "X-Riak-Deleted" not in reaped.headers
    listing = raw(riak, "GET", "/types/timak/buckets/b/keys?keys=true")
    assert json.loads(listing.data) == {"keys": ["keep"]}


def test_double_keeps_tombstones_until_asked_when_reap_after_is_none(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    riak.reap_after = None
    backend.store("b", "k", b"v")
    backend.delete("b", "k")
    time.sleep(0.1)
    assert riak.raw_keys("timak", "b") == ["k"]
    assert riak.reap_tombstones() == 1
    assert riak.raw_keys("timak", "b") == []


def test_backend_across_tombstone_reaping(riak: RiakTestDouble, backend: RiakBackend) -> None:
    """Reaping can happen between any two requests: none of them may fail or
    lose a write because the tombstone (and its vclock) went away."""
    riak.reap_after = None
    # A tombstone that is reaped between the fetch and the blind store.
    backend.store("b", "k", b"v")
    backend.delete("b", "k")
    assert backend.fetch("b", "k").context is None
    riak.reap_tombstones()
    backend.store("b", "k", b"again")
    assert riak.siblings("timak", "b", "k") == [(b"again", False)]
    # A context whose object was deleted and reaped before the store.
    seen = backend.fetch("b", "k")
    backend.delete("b", "k")
    riak.reap_tombstones()
    backend.store("b", "k", b"merged", seen.context)
    assert list(backend.fetch("b", "k").siblings) == [b"merged"]
    # A delete whose context is gone, with and without the context.
    seen = backend.fetch("b", "k")
    backend.delete("b", "k")
    riak.reap_tombstones()
    backend.delete("b", "k", seen.context)
    backend.delete("b", "k")
    assert list(backend.fetch("b", "k").siblings) == []
    assert list(backend.keys("b")) == []
    riak.reap_tombstones()
    assert riak.raw_keys("timak", "b") == []
    # Through Timeline, with reaping at its real pace.
    riak.reap_after = 0.05
    tl = Timeline(backend, "tl")
    tl.add("k", 1, 1)
    tl.connection.delete("tl", "k")
    time.sleep(0.1)
    assert tl.add("k", 2, 2) == [2]
    assert tl.get("k") == [2]


@pytest.mark.slow
def test_key_streams_come_in_uneven_batches_and_end_with_empty_ones(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    keys = [f"k{i}" for i in range(40)]
    backend.store_many("bk", [(k, b"v") for k in keys])
    with urllib3.PoolManager() as pool:
        answer = pool.request("GET", f"http://127.0.0.1:{riak.port}/types/timak/buckets/bk"
                              "/keys?keys=stream", preload_content=False)
        objects = [json.loads(c) for c in answer.stream() if c]  # one object per chunk
    sizes = [len(o["keys"]) for o in objects]
    assert sum(sizes) == 40 and len(set(sizes)) > 2
    assert sizes[-2:] == [0, 0]  # several empty {"keys":[]} at the end
    assert sorted(backend.keys("bk")) == sorted(keys)


def test_returnbody_with_siblings_and_no_accept_is_a_vtag_list(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    backend.store("b", "k", b"one")
    put = {"Content-Type": "application/octet-stream"}
    answer = raw(riak, "PUT", "/types/timak/buckets/b/keys/k?returnbody=true",
                 body=b"two", headers=put)
    assert answer.status == 300 and answer.headers["Content-Type"] == "text/plain"
    assert answer.data.decode().startswith("Siblings:\n")
    assert len(answer.data.decode().split()) == 3
    asked = raw(riak, "PUT", "/types/timak/buckets/b/keys/k?returnbody=true",
                body=b"three", headers={**put, "Accept": "multipart/mixed, */*;q=0.1"})
    assert asked.headers["Content-Type"].startswith("multipart/mixed")
    # The backend asks for the short list, and counts from it.
    assert backend.store("b", "k", b"four") == 4
    assert riak.recorded("PUT")[-1].headers["accept"].startswith("text/plain")


def test_double_answers_errors_as_riak_does(riak: RiakTestDouble, backend: RiakBackend) -> None:
    backend.store("b", "k", b"one")
    patch = raw(riak, "PATCH", "/types/timak/buckets/b/keys/k", body=b"x")
    assert patch.status == 501 and patch.headers["Content-Type"] == "text/html"
    assert b"<html>" in patch.data
    props = raw(riak, "GET", "/types/nope/props")
    assert props.status == 404 and b"<html>" in props.data
    unacceptable = raw(riak, "GET", "/types/timak/buckets/b/keys/k",
                       headers={"Accept": "image/png"})
    assert unacceptable.status == 406 and b"<html>" in unacceptable.data
    failed = raw(riak, "PUT", "/types/timak/buckets/b/keys/k", body=b"x",
                 headers={"Content-Type": "text/plain", "If-None-Match": "*"})
    assert failed.status == 412 and b"<html>" in failed.data
    # Kept as measured: the object 404 and the unknown bucket type texts.
    missing = raw(riak, "GET", "/types/timak/buckets/b/keys/missing")
    assert (missing.status, missing.data) == (404, b"not found\n")
    unknown = raw(riak, "GET", "/types/nope/buckets/b/keys/k")
    assert unknown.status == 404 and unknown.data.startswith(b"Unknown bucket type")


def test_a_vclock_riak_cannot_decode_is_a_500_with_a_trace(
    riak: RiakTestDouble, backend: RiakBackend
) -> None:
    backend.store("b", "k", b"one")
    answer = raw(riak, "PUT", "/types/timak/buckets/b/keys/k", body=b"x",
                 headers={"Content-Type": "text/plain", "X-Riak-Vclock": "AAAA"})
    assert answer.status == 500 and b"binary_to_term" in answer.data
    with pytest.raises(BackendError, match="500") as caught:
        backend.store("b", "k", b"two", "AAAA")  # looks like a vclock, is not one
    assert not isinstance(caught.value, InvalidInputError)
    assert list(backend.fetch("b", "k").siblings) == [b"one"]


def test_double_headers_as_measured(riak: RiakTestDouble, backend: RiakBackend) -> None:
    put = raw(riak, "PUT", "/types/timak/buckets/b/keys/k", body=b"one",
              headers={"Content-Type": "application/octet-stream"})
    assert put.status == 204 and put.headers["Content-Type"]
    raw(riak, "PUT", "/types/timak/buckets/b/keys/k", body=b"two",
        headers={"Content-Type": "application/octet-stream"})
    both = raw(riak, "GET", "/types/timak/buckets/b/keys/k",
               headers={"Accept": "multipart/mixed"})
    assert both.status == 300
    assert both.headers["Vary"] == "Accept, Accept-Encoding"
    assert re.fullmatch(r'"[0-9A-Za-z]+"', both.headers["ETag"])
    gone = raw(riak, "DELETE", "/types/timak/buckets/b/keys/k")
    assert gone.status == 204 and gone.headers["Content-Type"]


@pytest.mark.parametrize(
    "options",
    [{"host": ""}, {"port": "8098"}, {"port": 0}, {"timeout": "5"}, {"timeout": 0},
     {"connect_timeout": float("nan")}, {"retries": 1.5}, {"max_connections": "16"},
     {"warn_size": "5MB"}, {"count_siblings_below": -1}, {"check_props": "yes"},
     {"tls": 1}, {"bucket_type": 5}, {"ca_certs": b"/etc/ca.pem"}],
    ids=repr,
)
def test_bad_constructor_options_are_config_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RiakBackend(**options)
