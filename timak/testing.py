"""The backend conformance suite: what every store must do, as pytest tests.

A backend's test module subclasses ``BackendConformance`` and provides one
fixture, ``connect``, that opens a new connection to one shared, empty store::

    class TestMyStore(BackendConformance):
        @pytest.fixture
        def connect(self, tmp_path):
            return lambda: MyBackend(tmp_path / "db")

Each test uses a fresh bucket name, so stores may be reused between tests.
This module imports pytest; it is meant for test suites, including those of
third-party backends.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from .backends.base import MAX_KEY_BYTES, Backend, Narrowing, capabilities, replace_many
from .errors import BackendError, InvalidInputError

__all__ = ["BackendConformance", "FOREIGN_CONTEXTS", "HOSTILE_KEYS"]

#: Keys every backend must store and read back intact.
HOSTILE_KEYS = [
    "plain",
    "with space",
    "ünïcødé-ключ-键-🙂",
    "a/b/c",
    "../../etc/passwd",
    "..",
    ".",
    "nul\x00inside",
    "%2F%00?#&=+;",
    "tab\tnew\nline\r",
    "'; DROP TABLE siblings; --",
    "x" * MAX_KEY_BYTES,
    "é" * (MAX_KEY_BYTES // 2),
]

#: Contexts that no backend's fetch returns: each backend must refuse every
#: one with ``InvalidInputError`` (never a driver or ``TypeError``, never
#: silently), in ``store`` and ``delete``, and change nothing.
FOREIGN_CONTEXTS = [
    "not a context %%%",
    b"\x00\x01",
    12345,
    (1, 2),
    frozenset({1, 2}),
    [1, 2],
    object(),
]


class BackendConformance:
    """Tests of the ``Backend`` contract; see ``timak.backends.base``."""

    @pytest.fixture
    def connect(self) -> Callable[[], Backend]:  # pragma: no cover - overridden
        raise NotImplementedError("subclasses provide a `connect` fixture")

    @pytest.fixture
    def backend(self, connect: Callable[[], Backend]) -> Iterator[Backend]:
        backend = connect()
        yield backend
        backend.close()

    @pytest.fixture
    def bucket(self) -> str:
        return f"conformance-{uuid.uuid4().hex[:12]}"

    def test_missing_key_has_no_siblings(self, backend: Backend, bucket: str) -> None:
        fetched = backend.fetch(bucket, "missing")
        assert list(fetched.siblings) == []
        assert fetched.context is None

    def test_blind_writes_become_siblings(self, backend: Backend, bucket: str) -> None:
        backend.store(bucket, "k", b"one")
        backend.store(bucket, "k", b"two")
        assert sorted(backend.fetch(bucket, "k").siblings) == [b"one", b"two"]

    def test_store_result_counts_siblings_when_known(
        self, backend: Backend, bucket: str
    ) -> None:
        first = backend.store(bucket, "k", b"one")
        second = backend.store(bucket, "k", b"two")
        assert first in (1, None)
        assert second in (2, None)

    def test_context_replaces_exactly_what_was_seen(
        self, backend: Backend, bucket: str
    ) -> None:
        backend.store(bucket, "k", b"one")
        backend.store(bucket, "k", b"two")
        seen = backend.fetch(bucket, "k")
        backend.store(bucket, "k", b"later")  # written after the fetch
        backend.store(bucket, "k", b"merged", seen.context)
        assert sorted(backend.fetch(bucket, "k").siblings) == [b"later", b"merged"]

    def test_stale_context_loses_nothing(self, backend: Backend, bucket: str) -> None:
        backend.store(bucket, "k", b"base")
        seen = backend.fetch(bucket, "k")
        backend.store(bucket, "k", b"writer-a", seen.context)
        backend.store(bucket, "k", b"writer-b", seen.context)
        assert sorted(backend.fetch(bucket, "k").siblings) == [b"writer-a", b"writer-b"]

    def test_context_works_across_connections(
        self, connect: Callable[[], Backend], bucket: str
    ) -> None:
        with connect() as first, connect() as second:
            first.store(bucket, "k", b"one")
            second.store(bucket, "k", b"two")
            seen = first.fetch(bucket, "k")
            second.store(bucket, "k", b"merged", seen.context)
            assert list(first.fetch(bucket, "k").siblings) == [b"merged"]

    def test_delete_removes_every_sibling(self, backend: Backend, bucket: str) -> None:
        backend.store(bucket, "k", b"one")
        backend.store(bucket, "k", b"two")
        backend.delete(bucket, "k")
        assert list(backend.fetch(bucket, "k").siblings) == []
        assert "k" not in _listed(backend, bucket)

    def test_delete_with_context_keeps_later_siblings(
        self, backend: Backend, bucket: str
    ) -> None:
        backend.store(bucket, "k", b"one")
        seen = backend.fetch(bucket, "k")
        backend.store(bucket, "k", b"later")
        backend.delete(bucket, "k", seen.context)
        assert list(backend.fetch(bucket, "k").siblings) == [b"later"]

    def test_keys_lists_each_key_once_per_bucket(
        self, backend: Backend, bucket: str
    ) -> None:
        for key in ("a", "b", "c"):
            backend.store(bucket, key, b"v")
        backend.store(bucket, "a", b"w")
        backend.store(bucket + "-other", "z", b"v")
        if not capabilities(backend).keys:
            pytest.skip(f"{type(backend).__name__} cannot list keys (optional)")
        assert sorted(cast(Any, backend).keys(bucket)) == ["a", "b", "c"]

    def test_buckets_names_the_buckets_holding_keys(
        self, backend: Backend, bucket: str
    ) -> None:
        if not capabilities(backend).buckets:
            pytest.skip(f"{type(backend).__name__} cannot list buckets (optional)")
        backend.store(bucket, "a", b"v")
        backend.store(bucket + "-other", "z", b"v")
        backend.store(bucket + "-emptied", "z", b"v")
        backend.delete(bucket + "-emptied", "z")
        found = cast(Any, backend).buckets()
        assert found == sorted(found)
        assert {bucket, bucket + "-other"} <= set(found)
        assert bucket + "-emptied" not in found

    def test_store_many_and_fetch_many(self, backend: Backend, bucket: str) -> None:
        keys = [f"follower:{i}" for i in range(50)]
        results = backend.store_many(bucket, [(k, k.encode()) for k in keys])
        assert len(results) == len(keys)
        assert all(r in (1, None) for r in results)
        fetched = backend.fetch_many(bucket, keys)
        assert [list(f.siblings) for f in fetched] == [[k.encode()] for k in keys]

    def test_store_many_counts_as_one_write_at_a_time(
        self, backend: Backend, bucket: str
    ) -> None:
        """A reported count is the siblings the key held right after that
        write, keys repeated in one batch included: each count is seen by
        one write (folding decides on it). A store that runs a batch's
        writes concurrently (Riak) may hand a key's counts to its writes in
        another order."""
        backend.store(bucket, "a", b"0")
        results = backend.store_many(bucket, [("a", b"1"), ("c", b"2"), ("a", b"3"),
                                              ("c", b"4"), ("d", b"5")])
        if results[0] is None:
            pytest.skip("this backend does not report sibling counts")
        counts = [int(r or 0) for r in results]
        assert sorted(counts[0::2][:2]) == [2, 3] and sorted(counts[1::2]) == [1, 2]
        assert counts[4] == 1
        assert sorted(backend.fetch(bucket, "a").siblings) == [b"0", b"1", b"3"]
        assert backend.store_many(bucket, []) == []

    @pytest.mark.parametrize("key", HOSTILE_KEYS, ids=range(len(HOSTILE_KEYS)))
    def test_any_valid_key_round_trips(
        self, backend: Backend, bucket: str, key: str
    ) -> None:
        backend.store(bucket, key, b"value")
        assert list(backend.fetch(bucket, key).siblings) == [b"value"]
        assert key in _listed(backend, bucket, default={key})
        backend.delete(bucket, key)
        assert list(backend.fetch(bucket, key).siblings) == []

    def test_hostile_bucket_names_are_isolated(self, backend: Backend, bucket: str) -> None:
        names = [bucket + "/x", bucket + "/../x", bucket + "\x00x"]
        for name in names:
            backend.store(name, "k", name.encode())
        for name in names:
            assert list(backend.fetch(name, "k").siblings) == [name.encode()]

    def test_binary_values_round_trip(self, backend: Backend, bucket: str) -> None:
        value = bytes(range(256)) * 4096  # 1 MiB with every byte value
        backend.store(bucket, "k", value)
        assert list(backend.fetch(bucket, "k").siblings) == [value]

    def test_concurrent_read_modify_write_loses_nothing(
        self, connect: Callable[[], Backend], bucket: str
    ) -> None:
        """Threads each fetch, union the siblings, add one item, store with the
        context. Whatever the interleaving, every item must survive."""
        writers, rounds = 4, 15

        def union(siblings: list[bytes]) -> set[str]:
            return {item for s in siblings for item in s.decode().split(",") if item}

        def work(writer: int) -> None:
            with connect() as backend:
                for i in range(rounds):
                    seen = backend.fetch(bucket, "hot")
                    items = union(list(seen.siblings)) | {f"{writer}.{i}"}
                    backend.store(bucket, "hot", ",".join(sorted(items)).encode(), seen.context)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with connect() as backend:
            found = union(list(backend.fetch(bucket, "hot").siblings))
        assert found == {f"{w}.{i}" for w in range(writers) for i in range(rounds)}

    @staticmethod
    def _narrowing(backend: Backend) -> Narrowing:
        if not capabilities(backend).narrow:
            pytest.skip("this backend cannot narrow contexts (an optional capability)")
        return cast(Narrowing, backend)

    def test_narrowed_context_replaces_exactly_the_named_siblings(
        self, backend: Backend, bucket: str
    ) -> None:
        narrowing = self._narrowing(backend)
        for value in (b"a", b"b", b"c", b"d"):
            backend.store(bucket, "k", value)
        fetched = backend.fetch(bucket, "k")
        picked = [i for i, v in enumerate(fetched.siblings) if v in (b"b", b"d")]
        narrowed = narrowing.narrow(fetched.context, picked)
        backend.store(bucket, "k", b"later")  # written after the fetch: stays
        backend.store(bucket, "k", b"bd", narrowed)
        assert sorted(backend.fetch(bucket, "k").siblings) == [b"a", b"bd", b"c", b"later"]
        # The full context still names the siblings it saw that are left.
        backend.store(bucket, "k", b"all", fetched.context)
        assert sorted(backend.fetch(bucket, "k").siblings) == [b"all", b"bd", b"later"]

    def test_narrowed_delete_removes_only_the_named_siblings(
        self, backend: Backend, bucket: str
    ) -> None:
        narrowing = self._narrowing(backend)
        for value in (b"a", b"b", b"c"):
            backend.store(bucket, "k", value)
        fetched = backend.fetch(bucket, "k")
        a = list(fetched.siblings).index(b"a")
        backend.delete(bucket, "k", narrowing.narrow(fetched.context, [a, a]))
        assert sorted(backend.fetch(bucket, "k").siblings) == [b"b", b"c"]
        backend.store(bucket, "k", b"none", narrowing.narrow(fetched.context, []))
        assert sorted(backend.fetch(bucket, "k").siblings) == [b"b", b"c", b"none"]

    @pytest.mark.parametrize("bad", [-1, 2, True, "0", 1.0])
    def test_narrow_refuses_bad_indices_and_foreign_contexts(
        self, backend: Backend, bucket: str, bad: object
    ) -> None:
        narrowing = self._narrowing(backend)
        backend.store(bucket, "k", b"a")
        backend.store(bucket, "k", b"b")
        fetched = backend.fetch(bucket, "k")
        with pytest.raises(InvalidInputError):
            narrowing.narrow(fetched.context, [0, bad])  # type: ignore[list-item]
        with pytest.raises(InvalidInputError):
            narrowing.narrow(FOREIGN_CONTEXTS[0], [0])
        assert sorted(backend.fetch(bucket, "k").siblings) == [b"a", b"b"]

    def test_replace_many_stores_each_entry_with_its_context(
        self, backend: Backend, bucket: str
    ) -> None:
        """``replace_many`` (the capability, or the loop of ``store`` that
        stands in for it) is one ``store`` per entry, in order."""
        backend.store(bucket, "k1", b"a")
        backend.store(bucket, "k1", b"b")
        backend.store(bucket, "k2", b"c")
        first, second = backend.fetch_many(bucket, ["k1", "k2"])
        backend.store(bucket, "k1", b"later")  # written after the fetch: stays
        results = replace_many(backend, bucket, [
            ("k1", b"ab", first.context), ("k2", b"c2", second.context), ("k3", b"new", None),
        ])
        assert results == [2, 1, 1] or results == [None, None, None]
        assert sorted(backend.fetch(bucket, "k1").siblings) == [b"ab", b"later"]
        assert list(backend.fetch(bucket, "k2").siblings) == [b"c2"]
        assert list(backend.fetch(bucket, "k3").siblings) == [b"new"]
        assert replace_many(backend, bucket, []) == []

    def test_replace_many_checks_every_context_before_writing(
        self, backend: Backend, bucket: str
    ) -> None:
        if not capabilities(backend).replace_many:
            pytest.skip("this backend has no replace_many (an optional capability)")
        backend.store(bucket, "k1", b"a")
        fetched = backend.fetch(bucket, "k1")
        with pytest.raises(InvalidInputError):
            cast(Any, backend).replace_many(bucket, [("k1", b"x", fetched.context),
                                          ("k2", b"y", FOREIGN_CONTEXTS[0])])
        assert list(backend.fetch(bucket, "k1").siblings) == [b"a"]
        assert list(backend.fetch(bucket, "k2").siblings) == []

    def test_swap_many_stores_only_where_every_sibling_is_still_there(
        self, backend: Backend, bucket: str
    ) -> None:
        """``swap_many`` (``Swapping``) replaces a fetch's siblings only if
        none of them was replaced meanwhile; later siblings do not matter."""
        if not capabilities(backend).swap_many:
            pytest.skip("this backend has no swap_many (an optional capability)")
        swapping = cast(Any, backend)
        for key in ("k1", "k2"):
            backend.store(bucket, key, b"a")
            backend.store(bucket, key, b"b")
        one, two = backend.fetch_many(bucket, ["k1", "k2"])
        backend.store(bucket, "k1", b"later")  # after the fetch: the swap goes on
        backend.store(bucket, "k2", b"ab", two.context)  # another fold got there first
        assert swapping.swap_many(bucket, [("k1", b"ab", one.context),
                                           ("k2", b"ab-again", two.context)]) == [True, False]
        assert sorted(backend.fetch(bucket, "k1").siblings) == [b"ab", b"later"]
        assert list(backend.fetch(bucket, "k2").siblings) == [b"ab"]
        # Narrowed to a sibling that is still there, it swaps.
        if capabilities(backend).narrow:
            backend.store(bucket, "k3", b"x")
            backend.store(bucket, "k3", b"y")
            three = backend.fetch(bucket, "k3")
            gone = cast(Any, backend).narrow(three.context, [0])
            kept = cast(Any, backend).narrow(three.context, [1])
            backend.store(bucket, "k3", b"x2", gone)
            assert swapping.swap_many(bucket, [("k3", b"y2", kept)]) == [True]
            assert sorted(backend.fetch(bucket, "k3").siblings) == [b"x2", b"y2"]
        with pytest.raises(InvalidInputError):
            swapping.swap_many(bucket, [("k1", b"z", FOREIGN_CONTEXTS[0])])
        assert swapping.swap_many(bucket, []) == []

    @pytest.mark.parametrize("context", FOREIGN_CONTEXTS, ids=lambda c: type(c).__name__)
    def test_foreign_contexts_are_refused(
        self, backend: Backend, bucket: str, context: object
    ) -> None:
        backend.store(bucket, "k", b"one")
        with pytest.raises(InvalidInputError):
            backend.store(bucket, "k", b"two", context)
        with pytest.raises(InvalidInputError):
            backend.delete(bucket, "k", context)
        assert list(backend.fetch(bucket, "k").siblings) == [b"one"]

    def test_calls_after_close_raise_backend_error(
        self, connect: Callable[[], Backend], bucket: str
    ) -> None:
        other = connect()
        closing = connect()
        closing.store(bucket, "k", b"one")
        closing.close()
        closing.close()  # twice is fine
        calls: list[Callable[[], object]] = [
            lambda: closing.fetch(bucket, "k"),
            lambda: closing.store(bucket, "k", b"two"),
            lambda: closing.store_many(bucket, [("k", b"two"), ("j", b"two")]),
            lambda: closing.fetch_many(bucket, ["k", "j"]),
            lambda: closing.delete(bucket, "k"),
        ]
        if capabilities(closing).keys:
            calls.append(lambda: list(cast(Any, closing).keys(bucket)))
        for call in calls:
            with pytest.raises(BackendError):
                call()
        # Other connections to the same store are not closed with it.
        try:
            assert list(other.fetch(bucket, "k").siblings) == [b"one"]
        finally:
            other.close()


def _listed(backend: Backend, bucket: str, default: frozenset[str] | set[str] = frozenset()
            ) -> set[str]:
    """The keys ``backend`` lists, or ``default`` if it cannot list keys."""
    return set(cast(Any, backend).keys(bucket)) if capabilities(backend).keys else set(default)
