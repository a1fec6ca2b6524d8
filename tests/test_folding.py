"""The one fold policy that Timeline and the change feed share."""

from __future__ import annotations

from timak._engine import FoldPolicy


def test_a_reported_count_decides_alone() -> None:
    policy = FoldPolicy(4)
    assert [policy.due("k", n) for n in (1, 3, 4, 9)] == [False, False, True, True]
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
