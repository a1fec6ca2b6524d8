"""The one fold policy that Timeline and the change feed share."""

from __future__ import annotations

from timak._engine import FoldPolicy


def test_a_reported_count_decides_alone() -> None:
    """fold_at folds (one writer sees each count), then from 2 * fold_at
    on every quarter of fold_at: writers past a slow fold do not all fold
    at once."""
    policy = FoldPolicy(16)
    due = [n for n in range(1, 45) if policy.due("k", n)]
    assert due == [16, 32, 36, 40, 44]
    assert [n for n in range(1, 12) if FoldPolicy(4).due("k", n)] == [4, 8, 9, 10, 11]
    assert not policy.due("k", 3)  # reported counts leave no local state behind


def test_unreported_counts_keep_one_process_below_fold_at() -> None:
    """Counting its own writes plus the sibling each fold leaves, one process
    folds at its fold_at-th write, then after every fold_at - 1 more."""
    policy = FoldPolicy(4)
    due = [n for n in range(1, 15) if policy.due("k", None)]
    assert due == [4, 7, 10, 13]
    assert [policy.due("other", None) for _ in range(4)] == [False, False, False, True]


def test_left_counts_what_a_fold_left_behind() -> None:
    policy = FoldPolicy(4)
    policy.left("k", 2)  # a partial fold's base and delta
    assert [policy.due("k", None) for _ in range(2)] == [False, True]


def test_counted_keys_are_bounded_least_recent_first() -> None:
    policy = FoldPolicy(3, max_keys=2)
    assert not policy.due("a", None)
    for key in ("b", "c"):  # a third key: "a", the least recent, is forgotten
        assert not policy.due(key, None)
    # "a" counts from nothing again: due at its third write from here, not
    # at its second as it would be had it been remembered.
    assert [policy.due("a", None) for _ in range(3)] == [False, False, True]


def test_large_siblings_decode_once_and_a_damaged_one_fails_every_time() -> None:
    """The engine keeps a few decoded large siblings (a hot key's base is
    met by every fold): the same bytes give the same value; a damaged
    chunk in a cached value still raises on every check, never only once."""
    import pytest

    from timak import _encoding as encoding
    from timak._engine import Engine
    from timak.backends.memory import MemoryBackend
    from timak.errors import CorruptValueError
    from timak.value import Record, merge

    engine = Engine(MemoryBackend(), "b", capacity=1000, fold_at=16)
    good = encoding.encode(merge([], 1000, extra=[
        Record(f"i{n}", n, False, {"n": n} , n) for n in range(1000)]))
    assert engine.decode(good) is engine.decode(bytes(bytearray(good)))
    # Flip a byte inside the last (compressed) chunk.
    bad = good[:-20] + bytes([good[-20] ^ 0xFF]) + good[-19:]
    for _ in range(2):
        with pytest.raises(CorruptValueError):
            encoding.validate(engine.decode(bad))
