"""Multi-node mode on NATS JetStream + PostgreSQL: key partitions, leases and what each node runs.

See docs/scale.md. ``await start_cluster(platform)`` joins the cluster when the bus is partitioned (NATS
with ``CITYDATA_BUS_PARTITIONS > 0``) and returns None otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from citydata.cluster.partition import assign, owned_by, partition_of

if TYPE_CHECKING:
    from citydata.app import Platform
    from citydata.cluster.node import ClusterNode

__all__ = ["assign", "clustered", "owned_by", "partition_of", "start_cluster"]


def clustered(platform: Platform) -> bool:
    return platform.bus.partitions > 0


async def start_cluster(platform: Platform) -> ClusterNode | None:
    if not clustered(platform):
        return None
    from citydata.cluster.node import ClusterNode

    node = ClusterNode(platform)
    await node.start()
    return node
