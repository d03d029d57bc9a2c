"""Key partitions and their assignment to nodes.

* ``partition_of(key, n)``: the partition of an event key (a datastream id, a traveller id, a device id), a
  stable hash (BLAKE2b, not Python's salted ``hash``) so every node and every restart agree.
* ``assign(partitions, nodes)``: which node should own each partition, by rendezvous (highest random weight)
  hashing: each partition goes to the node with the highest ``hash(partition, node)``. Every node computes the
  same answer from the same set of live nodes, and when a node joins or leaves only the partitions that move
  to or from it change owner (about ``n / nodes``), so a rebalance stops and rebuilds as little as possible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def partition_of(key: str, partitions: int) -> int:
    """The partition (0 … partitions-1) of an event key."""
    if partitions <= 1:
        return 0
    return _h(key) % partitions


def owner_of(partition: int, nodes: Iterable[str]) -> str | None:
    """The node that should own ``partition`` among ``nodes`` (None when there is none)."""
    best: tuple[int, str] | None = None
    for node in nodes:
        weight = (_h(f"{partition}/{node}"), node)
        if best is None or weight > best:
            best = weight
    return best[1] if best is not None else None


def assign(partitions: int, nodes: Iterable[str]) -> dict[int, str]:
    """Partition → owner for every partition (empty when no node is live)."""
    live = sorted(set(nodes))
    if not live:
        return {}
    return {k: owner_of(k, live) or live[0] for k in range(partitions)}


def owned_by(node: str, partitions: int, nodes: Iterable[str]) -> set[int]:
    """The partitions ``node`` should own when ``nodes`` are live (``node`` counted as live)."""
    return {k for k, owner in assign(partitions, {*nodes, node}).items() if owner == node}
