"""The Riak backend against a real Riak KV at ``$TIMAK_RIAK_URL``.

    TIMAK_RIAK_URL='riak://127.0.0.1:8098/?bucket_type=timak' pytest integration/test_riak.py

The bucket type must exist and keep siblings (``timak riak setup`` prints
the commands). Without the variable every test here skips, saying so; with
``TIMAK_REQUIRE_RIAK=1`` (CI with a Riak) that skip is a failure instead.
Each test uses fresh bucket names and leaves its keys behind (Riak has no
cheap way to drop a bucket).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from timak.backends import connect
from timak.backends.base import Backend
from timak.backends.riak import RiakBackend, props_problems
from timak.errors import ConfigError
from timak.testing import BackendConformance

SKIP_REASON = "set TIMAK_RIAK_URL=riak://host:8098/?bucket_type=timak to run against a real Riak"


@pytest.fixture(scope="module", autouse=True)
def riak_url() -> str:
    url = os.environ.get("TIMAK_RIAK_URL")
    if not url:
        if os.environ.get("TIMAK_REQUIRE_RIAK") == "1":
            pytest.fail(f"TIMAK_REQUIRE_RIAK=1 but TIMAK_RIAK_URL is unset: {SKIP_REASON}",
                        pytrace=False)
        pytest.skip(SKIP_REASON)
    return url


@pytest.fixture
def riak(riak_url: str) -> RiakBackend:
    backend = connect(riak_url)
    assert isinstance(backend, RiakBackend), f"{riak_url} is not a riak:// URL"
    return backend


@pytest.fixture
def bucket() -> str:
    return f"timak-it-{uuid.uuid4().hex[:12]}"


class TestRealRiakConformance(BackendConformance):
    """The backend contract on a real cluster: real vclocks, real siblings."""

    @pytest.fixture
    def connect(self, riak_url: str) -> Callable[[], Backend]:
        return lambda: connect(riak_url)


def test_the_bucket_type_keeps_siblings(riak: RiakBackend) -> None:
    assert props_problems(riak.bucket_type_props()) == []
    riak.close()


def test_blind_writes_report_the_sibling_count(riak: RiakBackend, bucket: str) -> None:
    assert [riak.store(bucket, "k", f"v{i}".encode()) for i in range(3)] == [1, 2, 3]
    fetched = riak.fetch(bucket, "k")
    assert sorted(fetched.siblings) == [b"v0", b"v1", b"v2"]
    assert riak.store(bucket, "k", b"merged", fetched.context) == 1
    riak.close()


def test_a_stale_delete_keeps_later_siblings_and_reads_skip_its_tombstone(
    riak: RiakBackend, bucket: str
) -> None:
    riak.store(bucket, "k", b"one")
    seen = riak.fetch(bucket, "k")
    riak.store(bucket, "k", b"later")
    riak.delete(bucket, "k", seen.context)
    fetched = riak.fetch(bucket, "k")
    assert list(fetched.siblings) == [b"later"]
    riak.store(bucket, "k", b"folded", fetched.context)
    assert list(riak.fetch(bucket, "k").siblings) == [b"folded"]
    riak.close()


def test_a_deleted_key_reads_as_missing_and_can_be_written_again(
    riak: RiakBackend, bucket: str
) -> None:
    riak.store(bucket, "k", b"v")
    riak.delete(bucket, "k")
    answer = riak._request("GET", riak._object_path(bucket, "k"), "raw get")
    assert answer.status == 404  # with X-Riak-Vclock while the tombstone lasts
    assert riak.fetch(bucket, "k").context is None
    riak.store(bucket, "k", b"again")
    assert list(riak.fetch(bucket, "k").siblings) == [b"again"]
    riak.close()


def _with_bucket_type(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "bucket_type"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("bucket_type", name)])))


def test_the_default_bucket_type_is_refused(riak_url: str, riak: RiakBackend,
                                            bucket: str) -> None:
    if not props_problems(riak.bucket_type_props("default")):
        pytest.skip("this cluster's default bucket type keeps siblings")
    with connect(_with_bucket_type(riak_url, "default")) as backend, \
            pytest.raises(ConfigError, match="allow_mult"):
        backend.store(bucket, "k", b"v")
    riak.close()
