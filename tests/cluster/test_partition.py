"""Key partitions and rendezvous assignment: stable, balanced, minimal movement on join and leave."""

from __future__ import annotations

from collections import Counter

from citydata.cluster.partition import assign, owned_by, partition_of


def test_partition_of_is_stable_and_spreads_keys() -> None:
    keys = [str(i) for i in range(4000)]
    parts = [partition_of(k, 16) for k in keys]
    assert parts == [partition_of(k, 16) for k in keys]          # no per-process salt
    assert partition_of("42", 16) == 10                          # fixed for the life of a stream
    counts = Counter(parts)
    assert set(counts) == set(range(16)) and max(counts.values()) < 1.3 * 4000 / 16
    assert {partition_of(k, 1) for k in keys} == {0} and {partition_of(k, 0) for k in keys} == {0}


def test_assignment_covers_every_partition_once_and_moves_little() -> None:
    three = assign(64, ["a", "b", "c"])
    assert sorted(three) == list(range(64)) and set(three.values()) == {"a", "b", "c"}
    assert min(Counter(three.values()).values()) >= 10
    four = assign(64, ["a", "b", "c", "d"])
    moved = [k for k in range(64) if three[k] != four[k]]
    assert all(four[k] == "d" for k in moved)                    # only partitions going to the new node move
    two = assign(64, ["a", "c"])
    assert all(two[k] == three[k] for k in range(64) if three[k] != "b")   # b's partitions only
    assert assign(8, []) == {}
    assert owned_by("b", 64, ["a", "c"]) == {k for k, n in three.items() if n == "b"}
