"""``ClusterNode``: what one node of a multi-node deployment runs, by role and by lease.

* Every node (any role) creates the durable positions of the partitioned rules groups at start
  (``Bus.ensure_group``), so events published from then on wait for their engine even before one runs, and
  heartbeats into the membership bucket (``citydata.cluster.leases``) so ``/api/v1/cluster`` lists it.
* Every node serves tourist tracking in shared mode (``citydata.tracking.shared``: reads from the store, pings
  committed and handed to the traveller's partition over the bus).
* Worker nodes (role ``rules`` or ``all``) take partition leases: for each partition held, a rules engine of
  scope ``local`` on that partition (checkpoint ``p<k>``), restored from its checkpoint when taken over, and
  the partition's tourist tracking (``citydata.tracking.partition``: geofence and silent-tracker timer of its
  travellers, rebuilt from the store when taken over).
* The worker holding the leader lease also runs what must run once cluster-wide: the ``global`` rules engine
  (rules grouped across keys), the IOC consumers (alerts, CAP drafts, notifications, SLA timer), the direct
  tracking alerts when configured, and the retention rollups.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from citydata.cluster.leases import Membership, safe_id
from citydata.rules.engine import RulesEngine
from citydata.tracking.partition import GROUP as TRACKING_GROUP
from citydata.tracking.partition import PATTERN as TRACKING_PATTERN
from citydata.tracking.partition import TrackingPartition

if TYPE_CHECKING:
    from citydata.app import Platform

log = logging.getLogger(__name__)
RULES_GROUP = "rules"
GLOBAL_GROUP = "rules-global"
WORKER_ROLES = ("all", "rules")
# durable groups consumed by the leader's services (alerts, CAP drafts, tracking alerts)
SINGLETON_GROUPS = (("alerts", "alert.>"), ("alerts-cap", "cap.draft_requested"), ("tracking-alerts", "tracking.>"))


def default_node_id() -> str:
    return safe_id(f"{socket.gethostname()}-{os.getpid()}")


class ClusterNode:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        s = platform.settings
        self.role = s.node_role
        self.node_id = safe_id(s.node_id or default_node_id())
        self.worker = self.role in WORKER_ROLES
        self.partitions = platform.bus.partitions
        self.engines: dict[int, RulesEngine] = {}
        self.tracking: dict[int, TrackingPartition] = {}
        self.tracking_alerts: Any = None
        self.global_engine: RulesEngine | None = None
        self.leader_parts: list[str] = []
        self._lock = asyncio.Lock()
        kv_factory = getattr(platform.bus, "key_value", None)
        if kv_factory is None:
            raise TypeError("a cluster needs the NATS bus")
        self.membership = Membership(
            kv_factory, f"{s.bus_stream}_cluster", self.node_id, partitions=self.partitions,
            lease_s=s.cluster_lease_s, worker=self.worker,
            info={"role": self.role, "url": s.base_url, "pid": os.getpid()},
            on_acquire=self._acquire, on_release=self._release, on_leader=self._leader, on_lost=self._lost)

    async def start(self) -> None:
        bus = self.platform.bus
        for k in range(self.partitions):
            await bus.ensure_group(RULES_GROUP, ">", start="new", partition=k)
            await bus.ensure_group(TRACKING_GROUP, TRACKING_PATTERN, start="new", partition=k)
        await bus.ensure_group(GLOBAL_GROUP, ">", start="new")
        from citydata.incidents.access import IncidentBackedAccess
        from citydata.tracking import start_tracking

        # every node serves the tracking routes; the partitions' geofences run where the leases say
        await start_tracking(self.platform, IncidentBackedAccess(self.platform.store), timers=False, shared=True)
        await self.membership.start()
        log.info("cluster node %s (role %s) joined: %d partitions held%s", self.node_id, self.role,
                 len(self.engines), ", leader" if self.membership.is_leader else "")

    async def stop(self) -> None:
        await self.membership.stop()
        tracking, self.platform.tracking = self.platform.tracking, None
        if tracking is not None:
            await tracking.stop()

    # -- partition work --------------------------------------------------------------------------------------
    def _engine(self, name: str, group: str, scope: str, partition: int | None, fence: int | None
                ) -> RulesEngine:
        p = self.platform
        rules = p.rules
        assert rules is not None
        options = replace(rules.options, name=name, group=group, scope=scope, partition=partition, fence=fence)
        return RulesEngine(p.store, p.bus, p.clock, catalogue=rules.catalogue, geography=p.geography,
                           options=options)

    async def _acquire(self, k: int) -> None:
        # the term's fencing token: once this node has claimed it, the previous owner can write no checkpoint
        fence = self.membership.terms.get(k)
        engine = self._engine(f"p{k}", RULES_GROUP, "local", k, fence)
        await engine.start()        # restores checkpoint p<k>, then resumes the durable consumer
        self.engines[k] = engine
        tracking = self.platform.tracking
        if tracking is not None:
            part = TrackingPartition(tracking, k, fence=fence)
            await part.start()      # its travellers' state from the store, then resumes its durable consumer
            self.tracking[k] = part

    async def _release(self, k: int) -> None:
        part = self.tracking.pop(k, None)
        if part is not None:
            await part.stop()       # hands back unacknowledged events, commits its state and position
        engine = self.engines.pop(k, None)
        if engine is not None:
            await engine.stop()     # hands back unacknowledged events, checkpoints

    async def _lost(self, k: int) -> None:
        part = self.tracking.pop(k, None)
        if part is not None:
            await part.abandon()
        engine = self.engines.pop(k, None)
        if engine is not None:
            await engine.abandon()  # no checkpoint: the next owner restores the last committed one

    # -- leader work -----------------------------------------------------------------------------------------
    async def _leader(self, state: str) -> None:
        async with self._lock:
            if state == "lead":
                await self._lead()
            else:
                await self._step_down(abandon=state == "lost")

    async def _lead(self) -> None:
        p = self.platform
        # the singleton consumers resume right after what the previous leader acknowledged, in order: the
        # event it had in hand would otherwise come back only after ack_wait, behind newer ones (a raise
        # replayed after its clear would open the alert again)
        for group, pattern in SINGLETON_GROUPS:
            await p.bus.resume_at(group, pattern, after=None)
        self.global_engine = self._engine("global", GLOBAL_GROUP, "global", None, self.membership.leader_term)
        await self.global_engine.start()
        self.leader_parts.append("global")
        if p.settings.tracking_direct_alerts and p.tracking is not None:
            from citydata.tracking.alerts import TrackingAlerts

            self.tracking_alerts = TrackingAlerts(p.bus, p.clock, p.tracking.home.id)
            await self.tracking_alerts.start()
            self.leader_parts.append("tracking-alerts")
        if p.ioc is not None:
            await p.ioc.start_consumers()
            self.leader_parts.append("ioc")
        await p.retention.start()
        self.leader_parts.append("retention")
        log.info("cluster node %s leads: global rules, IOC consumers and timers", self.node_id)

    async def _step_down(self, *, abandon: bool = False) -> None:
        p = self.platform
        for part in reversed(self.leader_parts):
            try:
                if part == "global" and self.global_engine is not None:
                    await (self.global_engine.abandon() if abandon else self.global_engine.stop())
                    self.global_engine = None
                elif part == "tracking-alerts" and self.tracking_alerts is not None:
                    alerts, self.tracking_alerts = self.tracking_alerts, None
                    await alerts.stop()
                elif part == "ioc" and p.ioc is not None:
                    await p.ioc.stop_consumers()
                elif part == "retention":
                    await p.retention.stop()
            except Exception:
                log.exception("stopping the leader's %s failed", part)
        self.leader_parts.clear()

    # -- introspection ---------------------------------------------------------------------------------------
    def engines_all(self) -> list[RulesEngine]:
        out = list(self.engines.values())
        if self.global_engine is not None:
            out.append(self.global_engine)
        return out

    async def describe(self) -> dict[str, Any]:
        m = self.membership
        return {"node": self.node_id, "role": self.role, "worker": self.worker, "leader": m.is_leader,
                "partitions": self.partitions, "held": sorted(self.engines),
                "nodes": {n: {"role": i.get("role"), "url": i.get("url"), "worker": i.get("worker")}
                          for n, i in sorted(m.live.items())},
                "owners": {str(k): v for k, v in sorted((await m.owners()).items())},
                "stats": {"rounds": m.stats.rounds, "acquired": m.stats.acquired,
                          "released": m.stats.released, "lost": m.stats.lost,
                          "failed_rounds": m.stats.failed_rounds, "leader_terms": m.stats.leader_terms},
                "recent": list(m.stats.events),
                "engines": {("global" if e.options.partition is None else f"p{e.options.partition}"):
                            {"seq": e.seq, "events": e.stats.events, "raised": e.stats.raised,
                             "cleared": e.stats.cleared, "rules": len(e.rules)} for e in self.engines_all()},
                "tracking": {f"p{k}": t.describe() for k, t in sorted(self.tracking.items())}}

    def readiness(self) -> dict[str, Any]:
        """For /readyz: the leases are renewed in time, and what this node holds."""
        m = self.membership
        return {"ok": m.healthy, "detail": f"node {self.node_id} role {self.role}"
                f"{' leader' if m.is_leader else ''} partitions {','.join(map(str, sorted(self.engines))) or '-'}"
                f" of {self.partitions}; {len(m.live)} nodes live"}
