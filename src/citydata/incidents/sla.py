"""SLA timers: each priority (``model.PRIORITIES``) sets how long an incident may wait to be acknowledged and
to have a responder on scene. A timer on the injectable clock checks the deadlines every
``ioc_sla_check_s``; a breach is recorded once per stage on the incident (``breaches``), audited, published as
the durable event ``incident.sla_breached`` and notified to the assigned agencies plus the configured
escalation agencies (``ioc_escalation_agencies``)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.alerts.service import audit_row
from citydata.auth import Principal, Role
from citydata.clock import Clock
from citydata.incidents.model import ACK_MET, SCENE_MET, State
from citydata.incidents.schema import incident_assignments, incidents
from citydata.incidents.workflow import IncidentService
from citydata.ops.periodic import Periodic
from citydata.store import Store
from citydata.store.schema import audit_log

log = logging.getLogger(__name__)
SYSTEM = Principal("system:sla", Role.ADMIN, "token")
STAGES = (("acknowledge", "ack_due_at", ACK_MET), ("on_scene", "scene_due_at", SCENE_MET))


class SlaMonitor:
    def __init__(self, store: Store, clock: Clock, incidents_service: IncidentService, interval_s: float,
                 escalation_agencies: list[str]) -> None:
        self.store, self.clock, self.incidents = store, clock, incidents_service
        self.interval_s, self.escalation = interval_s, escalation_agencies
        self.breaches = 0
        self._periodic = Periodic("ioc-sla", clock, interval_s, self.check)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def check(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Record every breach due at ``now`` (default: the clock's now); returns the new breaches."""
        now = now or self.clock.now()
        open_states = [s.value for s in State if s not in SCENE_MET]
        candidates = await self.store.fetch_all(select(incidents.c.id).where(
            incidents.c.state.in_(open_states),
            or_(incidents.c.ack_due_at <= now, incidents.c.scene_due_at <= now)))
        found: list[dict[str, Any]] = []
        for row in candidates:
            found.extend(await self._breach(int(row["id"]), now))
        return found

    async def _breach(self, incident_id: int, now: datetime) -> list[dict[str, Any]]:
        service = self.incidents
        new: list[dict[str, Any]] = []

        async def op(conn: AsyncConnection) -> int:
            row = (await conn.execute(select(incidents).where(incidents.c.id == incident_id))).mappings().first()
            if row is None:
                return 0
            breaches = list(row["breaches"] or [])
            done = {b["stage"] for b in breaches}
            for stage, column, met in STAGES:
                due = row[column]
                if stage in done or due is None or due > now or State(row["state"]) in met:
                    continue
                breach = {"stage": stage, "due_at": due.isoformat(), "at": now.isoformat(),
                          "state": row["state"], "priority": row["priority"]}
                breaches.append(breach)
                new.append(breach)
            if not new:
                return 0
            await conn.execute(incidents.update().where(incidents.c.id == incident_id).values(
                breaches=breaches, updated_at=now, version=incidents.c.version + 1))
            for breach in new:
                await conn.execute(audit_log.insert().values(**audit_row(
                    SYSTEM, "incident.sla_breached", "incident", str(incident_id), now, breach)))
            assigned = (await conn.execute(select(incident_assignments.c.agency_id).where(
                incident_assignments.c.incident_id == incident_id))).scalars().all()
            targets = sorted(set(assigned) | set(self.escalation))
            agencies_now = sorted(assigned)
            view = {**dict(row), "agencies": agencies_now, "alert_ids": []}
            view = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in view.items()}
            return await service.deliveries.queue_rows(
                conn, targets, "incident.sla_breached", str(incident_id),
                service.notification(view, "incident.sla_breached", now, breaches=new), now)

        queued = await self.store.write(op)
        if not new:
            return []
        self.breaches += len(new)
        if queued:
            service.deliveries.wake()
        view = await service.view(incident_id)
        for breach in new:
            log.warning("incident %s breached its %s SLA (%s)", incident_id, breach["stage"], breach["priority"])
            await service._publish("incident.sla_breached", "sla_breached", view, breach)
        return [{"incident_id": incident_id, **b} for b in new]
