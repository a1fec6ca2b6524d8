"""Payloads stored apart (``timak.activity._payloads``): a remove racing a
(re)post never lets the payload come back, in every interleaving of their
store calls, on memory, SQLite and the Riak test double."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stores import STORES, url_for

from timak.activity import Activity, FeedGroup, Feeds
from timak.activity._payloads import Payload, payload_of
from timak.backends import Backend, connect

Step = Callable[[], None]


@pytest.fixture(params=STORES)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = connect(url_for(request, tmp_path, "payloads.db"))
    yield made
    made.close()


def store_steps(backend: Backend, bucket: str, key: str, payload: Payload) -> list[Step]:
    """``store_payload`` as its two store calls: read, then (maybe) write."""
    seen: list[list[bytes]] = []

    def read() -> None:
        seen.append(list(backend.fetch(bucket, key).siblings))

    def write() -> None:
        if b"TKP\x00" not in seen[0] and payload.stored not in seen[0]:
            backend.store(bucket, key, payload.stored)

    return [read, write]


def remove_steps(backend: Backend, bucket: str, key: str) -> list[Step]:
    """``remove_payload`` as its two store calls: read, then the tombstone."""
    seen = []

    def read() -> None:
        seen.append(backend.fetch(bucket, key))

    def write() -> None:
        backend.store(bucket, key, b"TKP\x00", seen[0].context)

    return [read, write]


def orders(first: int, second: int) -> Iterator[list[int]]:
    """Every interleaving of steps ``0..first-1`` with ``first..first+second-1``,
    each call's steps in their own order."""
    total = first + second
    for where in itertools.combinations(range(total), first):
        left, right = iter(range(first)), iter(range(first, total))
        yield [next(left) if i in where else next(right) for i in range(total)]


@pytest.mark.parametrize("stored_before", [False, True])
def test_a_remove_racing_a_post_never_lets_the_payload_come_back(
    backend: Backend, stored_before: bool
) -> None:
    post = Activity("alice", "post", "p", time=1, extra={"text": "x" * 5000})
    payload = payload_of(post.extra, 1024)
    assert payload is not None
    for n, order in enumerate(orders(2, 2)):
        suffix = f"{uuid.uuid4().hex[:6]}{n}"
        groups = [FeedGroup("user", bucket=f"u{suffix}"),
                  FeedGroup("home", follows="user", bucket=f"h{suffix}")]
        feeds = Feeds(backend, followers=lambda a: ["bob"], groups=groups,
                      payload_bucket=f"p{suffix}")
        if stored_before:
            feeds.add_activity(post)
        else:  # the feeds reference it; its payload write is the racing one
            feeds.timeline("home").add_many("bob", [feeds._stored(post)[:3]])
        steps = (store_steps(backend, feeds.payload_bucket, post.id, payload)
                 + remove_steps(backend, feeds.payload_bucket, post.id))
        for i in order:
            steps[i]()
        # The feeds' tombstones have not landed: the payload alone decides.
        assert feeds.read("home", "bob").activities == [], order
        assert backend.fetch(feeds.payload_bucket, post.id).siblings == [b"TKP\x00"]
