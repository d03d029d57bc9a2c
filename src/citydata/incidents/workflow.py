"""The 191 workflow: incidents created from alerts or by hand, dispatched to agencies, moved through the
transition table (``model.TRANSITIONS``), with notes, attachments, SLA deadlines and an audit trail.

Every change is one writer transaction that also writes its ``audit_log`` row (and, for a dispatch, the
notification deliveries), so the record and the change cannot diverge. After the commit the change is
published: durable ``incident.created`` / ``incident.dispatched`` / ``incident.state_changed`` events for
other consumers, and the live ``incident.changed`` broadcast for SSE.
"""

from __future__ import annotations

import builtins
import logging
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.alerts.service import AlertService, audit_row, new_id
from citydata.auth import Principal
from citydata.bus import Bus
from citydata.clock import Clock
from citydata.errors import Conflict, NotFound, ValidationFailed
from citydata.events import make_event
from citydata.incidents.deliveries import Deliveries
from citydata.incidents.model import (
    DISPATCHABLE,
    PRIORITIES,
    State,
    agency_scope,
    may_see_alert_kind,
    normalise_priority,
    transition,
)
from citydata.incidents.schema import (
    agencies,
    alerts,
    incident_alerts,
    incident_assignments,
    incident_notes,
    incidents,
)
from citydata.store import Store
from citydata.store.schema import audit_log

log = logging.getLogger(__name__)


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    priority: str | int = "P3"
    alert_ids: list[int] = Field(default_factory=list, max_length=100)
    description: str | None = Field(None, max_length=10_000)
    origin: Literal["alert", "phone", "manual"] | None = None
    location: dict[str, Any] | None = None
    zone_id: str | None = Field(None, max_length=80)

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: str | int) -> str:
        return normalise_priority(value)


class DispatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency: str = Field(min_length=1, max_length=80)
    note: str | None = Field(None, max_length=2000)


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: State
    reason: str | None = Field(None, max_length=2000)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10_000)


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def incident_view(row: Any, agency_ids: list[str], alert_ids: list[int]) -> dict[str, Any]:
    r = dict(row)
    return {"id": r["id"], "title": r["title"], "description": r["description"], "priority": r["priority"],
            "state": r["state"], "origin": r["origin"], "location": r["location"], "zone_id": r["zone_id"],
            "created_at": _iso(r["created_at"]), "created_by": r["created_by"], "updated_at": _iso(r["updated_at"]),
            "state_times": r["state_times"] or {}, "ack_due_at": _iso(r["ack_due_at"]),
            "scene_due_at": _iso(r["scene_due_at"]), "breaches": r["breaches"] or [], "version": r["version"],
            "agencies": sorted(agency_ids), "alert_ids": sorted(alert_ids)}


class IncidentService:
    def __init__(self, store: Store, bus: Bus, clock: Clock, alerts_service: AlertService,
                 deliveries: Deliveries, base_url: str = "") -> None:
        self.store, self.bus, self.clock = store, bus, clock
        self.alerts, self.deliveries, self.base_url = alerts_service, deliveries, base_url.rstrip("/")

    # -- reads ------------------------------------------------------------------------------------------------
    async def _links(self, ids: list[int]) -> tuple[dict[int, list[str]], dict[int, list[int]]]:
        agencies_of: dict[int, list[str]] = {i: [] for i in ids}
        alerts_of: dict[int, list[int]] = {i: [] for i in ids}
        if ids:
            for r in await self.store.fetch_all(select(incident_assignments.c.incident_id,
                                                       incident_assignments.c.agency_id)
                                                .where(incident_assignments.c.incident_id.in_(ids))):
                agencies_of[int(r["incident_id"])].append(r["agency_id"])
            for r in await self.store.fetch_all(select(incident_alerts).where(incident_alerts.c.incident_id.in_(ids))):
                alerts_of[int(r["incident_id"])].append(int(r["alert_id"]))
        return agencies_of, alerts_of

    async def view(self, incident_id: int) -> dict[str, Any]:
        row = await self.store.fetch_one(select(incidents).where(incidents.c.id == incident_id))
        if row is None:
            raise NotFound(f"no incident {incident_id}", code="incident_not_found")
        agencies_of, alerts_of = await self._links([incident_id])
        return incident_view(row, agencies_of[incident_id], alerts_of[incident_id])

    async def get(self, incident_id: int, principal: Principal) -> dict[str, Any]:
        """The incident, if the caller may see it (agency members: only incidents assigned to their agency;
        others get 404, so the existence of an incident is not revealed)."""
        view = await self.view(incident_id)
        scope = agency_scope(principal)
        if scope is not None and scope not in view["agencies"]:
            raise NotFound(f"no incident {incident_id}", code="incident_not_found")
        return view

    async def detail(self, incident_id: int, principal: Principal) -> dict[str, Any]:
        """The incident with its notes, attachments and linked alerts (those the caller may see)."""
        from citydata.incidents.schema import incident_attachments

        view = await self.get(incident_id, principal)
        notes = await self.store.fetch_all(select(incident_notes).where(incident_notes.c.incident_id == incident_id)
                                           .order_by(incident_notes.c.id))
        files = await self.store.fetch_all(select(incident_attachments).where(
            incident_attachments.c.incident_id == incident_id).order_by(incident_attachments.c.id))
        view["notes"] = [{"id": n["id"], "at": _iso(n["at"]), "author": n["author"], "role": n["role"],
                          "agency": n["agency"], "text": n["text"]} for n in notes]
        view["attachments"] = [{"id": f["id"], "filename": f["filename"], "content_type": f["content_type"],
                                "size": f["size"], "sha256": f["sha256"], "uploaded_at": _iso(f["uploaded_at"]),
                                "uploaded_by": f["uploaded_by"]} for f in files]
        view["alerts"] = [a for a in await self.alerts.rows(view["alert_ids"])
                          if may_see_alert_kind(principal, a["kind"])]
        return view

    async def list(self, principal: Principal, *, state: str | None = None, agency: str | None = None,
                   since: datetime | None = None, limit: int = 100, offset: int = 0) -> builtins.list[dict[str, Any]]:
        stmt = select(incidents)
        scope = agency_scope(principal)
        for wanted in (scope, agency):
            if wanted is not None:
                a = incident_assignments.alias()
                stmt = stmt.where(incidents.c.id.in_(select(a.c.incident_id).where(a.c.agency_id == wanted)))
        if state is not None:
            states = [State(s) for s in state.split(",")] if state != "open" else \
                [State.NEW, State.ACKNOWLEDGED, State.DISPATCHED, State.ON_SCENE]
            stmt = stmt.where(incidents.c.state.in_([s.value for s in states]))
        if since is not None:
            stmt = stmt.where(incidents.c.updated_at >= since)
        rows = await self.store.fetch_all(stmt.order_by(incidents.c.id.desc()).limit(limit).offset(offset))
        ids = [int(r["id"]) for r in rows]
        agencies_of, alerts_of = await self._links(ids)
        return [incident_view(r, agencies_of[int(r["id"])], alerts_of[int(r["id"])]) for r in rows]

    async def history(self, incident_id: int, principal: Principal) -> builtins.list[dict[str, Any]]:
        """The incident's audit trail, oldest first."""
        await self.get(incident_id, principal)
        rows = await self.store.fetch_all(select(audit_log).where(
            audit_log.c.subject_type == "incident", audit_log.c.subject_id == str(incident_id))
            .order_by(audit_log.c.id))
        return [{"at": _iso(r["at"]), "actor": r["actor"], "role": r["role"], "action": r["action"],
                 "detail": r["detail"]} for r in rows]

    # -- changes ------------------------------------------------------------------------------------------------
    async def create(self, principal: Principal, body: IncidentCreate) -> dict[str, Any]:
        now = self.clock.now()
        priority = PRIORITIES[str(body.priority)]
        alert_ids = sorted(set(body.alert_ids))
        linked = await self.alerts.rows(alert_ids)
        visible = {a["id"] for a in linked if may_see_alert_kind(principal, a["kind"])}
        missing = [i for i in alert_ids if i not in visible]
        if missing:
            raise ValidationFailed(f"no alert {missing[0]}", code="alert_not_found")
        first = linked[0] if linked else None
        scope = agency_scope(principal)
        values: dict[str, Any] = {
            "title": body.title, "description": body.description, "priority": priority.name, "state": State.NEW.value,
            "origin": body.origin or ("alert" if alert_ids else "manual"),
            "location": body.location or (first["location"] if first else None),
            "zone_id": body.zone_id or (first["zone_id"] if first else None),
            "created_at": now, "created_by": principal.subject[:100], "updated_at": now,
            "state_times": {State.NEW.value: now.isoformat()},
            "ack_due_at": now + timedelta(minutes=priority.ack_min),
            "scene_due_at": now + timedelta(minutes=priority.scene_min), "breaches": [], "version": 1}
        acked: list[int] = []

        async def op(conn: AsyncConnection) -> int:
            if scope is not None:
                exists = (await conn.execute(select(agencies.c.id).where(agencies.c.id == scope))).scalar()
                if exists is None:
                    raise ValidationFailed(f"your agency {scope!r} is not registered", code="agency_not_found")
            incident_id = new_id(await conn.execute(incidents.insert().values(**values)))
            if alert_ids:
                await conn.execute(incident_alerts.insert(), [{"incident_id": incident_id, "alert_id": a}
                                                              for a in alert_ids])
                opened = (await conn.execute(select(alerts.c.id).where(
                    alerts.c.id.in_(alert_ids), alerts.c.state == "open"))).scalars().all()
                if opened:
                    await conn.execute(alerts.update().where(alerts.c.id.in_(opened)).values(
                        state="acknowledged", acked_at=now, acked_by=principal.subject[:100], updated_at=now))
                    acked.extend(int(a) for a in opened)
            if scope is not None:   # an agency member logging a call: the incident is its own from the start
                await conn.execute(incident_assignments.insert().values(
                    incident_id=incident_id, agency_id=scope, assigned_at=now, assigned_by=principal.subject[:100],
                    note="created by the agency"))
            await conn.execute(audit_log.insert().values(**audit_row(
                principal, "incident.create", "incident", str(incident_id), now,
                {"priority": priority.name, "alert_ids": alert_ids, "origin": values["origin"]})))
            return incident_id

        incident_id = await self.store.write(op)
        for alert in await self.alerts.rows(acked):
            await self.alerts.announce("acknowledged", alert)
        view = await self.view(incident_id)
        await self._publish("incident.created", "created", view, {"by": principal.subject})
        return view

    async def dispatch(self, incident_id: int, principal: Principal, body: DispatchIn) -> dict[str, Any]:
        """Assign the incident to an agency (and notify it). new/acknowledged → dispatched; dispatching an
        incident already dispatched or on scene adds the agency. Dispatching twice to one agency: 409."""
        current = await self.get(incident_id, principal)
        now = self.clock.now()
        state = State(current["state"])
        if state not in DISPATCHABLE or state == State.RESOLVED:
            raise Conflict(f"incident {incident_id} is {state.value}; it cannot be dispatched",
                           code="invalid_transition")
        if body.agency in current["agencies"]:
            raise Conflict(f"incident {incident_id} is already assigned to {body.agency}", code="already_assigned")
        target = State.DISPATCHED if state in (State.NEW, State.ACKNOWLEDGED) else state

        async def op(conn: AsyncConnection) -> int:
            agency = (await conn.execute(select(agencies).where(agencies.c.id == body.agency))).mappings().first()
            if agency is None or not agency["enabled"]:
                raise ValidationFailed(f"no agency {body.agency!r}", code="agency_not_found")
            if not await self._bump(conn, incident_id, current["version"], state, target, now):
                raise Conflict(f"incident {incident_id} changed meanwhile; try again", code="concurrent_change")
            await conn.execute(incident_assignments.insert().values(
                incident_id=incident_id, agency_id=body.agency, assigned_at=now,
                assigned_by=principal.subject[:100], note=body.note))
            await conn.execute(audit_log.insert().values(**audit_row(
                principal, "incident.dispatch", "incident", str(incident_id), now,
                {"agency": body.agency, "from": state.value, "to": target.value, "note": body.note})))
            view = {**current, "state": target.value, "agencies": sorted([*current["agencies"], body.agency])}
            return await self.deliveries.queue_rows(conn, [body.agency], "incident.dispatched", str(incident_id),
                                                    self.notification(view, "incident.dispatched", now,
                                                                      agency=body.agency, note=body.note), now)

        queued = await self.store.write(op)
        if queued:
            self.deliveries.wake()
        view = await self.view(incident_id)
        await self._publish("incident.dispatched", "dispatched", view,
                            {"agency": body.agency, "by": principal.subject, "notifications": queued})
        return view

    async def move(self, incident_id: int, principal: Principal, body: TransitionIn) -> dict[str, Any]:
        """Move along the transition table; 409 for a move it does not have, 403 without its permission."""
        current = await self.get(incident_id, principal)
        source = State(current["state"])
        rule = transition(source, body.state)
        if rule is None:
            raise Conflict(f"incident {incident_id} cannot go from {source.value} to {body.state.value}",
                           code="invalid_transition", allowed=self.allowed_targets(source))
        if rule.target == State.DISPATCHED and source != State.RESOLVED:
            raise Conflict("use POST /api/v1/incidents/{id}/dispatch to dispatch", code="use_dispatch")
        principal.require(rule.permission)
        if rule.reason_required and not (body.reason and body.reason.strip()):
            raise ValidationFailed(f"{source.value} → {body.state.value} needs a reason", code="reason_required")
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> None:
            if not await self._bump(conn, incident_id, current["version"], source, rule.target, now):
                raise Conflict(f"incident {incident_id} changed meanwhile; try again", code="concurrent_change")
            await conn.execute(audit_log.insert().values(**audit_row(
                principal, "incident.transition", "incident", str(incident_id), now,
                {"from": source.value, "to": rule.target.value, "reason": body.reason})))

        await self.store.write(op)
        view = await self.view(incident_id)
        await self._publish("incident.state_changed", "state_changed", view,
                            {"from": source.value, "to": rule.target.value, "by": principal.subject})
        return view

    @staticmethod
    def allowed_targets(source: State) -> builtins.list[str]:
        from citydata.incidents.model import TRANSITIONS

        return [t.target.value for t in TRANSITIONS if t.source == source]

    async def _bump(self, conn: AsyncConnection, incident_id: int, version: int, source: State, target: State,
                    now: datetime) -> bool:
        """Compare-and-set of state and version; records when a state is first entered."""
        row = (await conn.execute(select(incidents.c.state_times).where(incidents.c.id == incident_id))).first()
        times = dict(row[0] or {}) if row else {}
        times.setdefault(target.value, now.isoformat())
        done = await conn.execute(incidents.update().where(
            incidents.c.id == incident_id, incidents.c.version == version, incidents.c.state == source.value)
            .values(state=target.value, version=version + 1, updated_at=now, state_times=times))
        return bool(done.rowcount)

    async def add_note(self, incident_id: int, principal: Principal, body: NoteIn) -> dict[str, Any]:
        await self.get(incident_id, principal)
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> int:
            note_id = new_id(await conn.execute(incident_notes.insert().values(
                incident_id=incident_id, at=now, author=principal.subject[:100], role=principal.role.value,
                agency=agency_scope(principal), text=body.text)))
            await conn.execute(incidents.update().where(incidents.c.id == incident_id).values(
                updated_at=now, version=incidents.c.version + 1))
            await conn.execute(audit_log.insert().values(**audit_row(
                principal, "incident.note", "incident", str(incident_id), now, {"note_id": note_id})))
            return note_id

        note_id = await self.store.write(op)
        view = await self.view(incident_id)
        await self._publish(None, "note_added", view, {"note_id": note_id, "by": principal.subject})
        return {"id": note_id, "incident_id": incident_id, "at": now.isoformat(), "author": principal.subject,
                "role": principal.role.value, "agency": agency_scope(principal), "text": body.text}

    # -- notifications and publishing ----------------------------------------------------------------------
    def notification(self, view: dict[str, Any], event: str, now: datetime, **extra: Any) -> dict[str, Any]:
        """The payload sent to agencies (webhook JSON; ``subject`` and ``text`` for e-mail and LINE)."""
        what = {"incident.dispatched": "dispatched to you", "incident.sla_breached": "SLA breached"}.get(event, event)
        subject = f"[{view['priority']}] Incident #{view['id']}: {view['title']} ({what})"
        link = f"{self.base_url}/api/v1/incidents/{view['id']}" if self.base_url else ""
        text = "\n".join(x for x in (subject, f"State: {view['state']}", f"Zone: {view['zone_id'] or '-'}",
                                     str(extra.get("note") or ""), link) if x)
        public = {k: view[k] for k in ("id", "title", "priority", "state", "origin", "location", "zone_id",
                                       "created_at", "ack_due_at", "scene_due_at", "agencies", "alert_ids")}
        return {"event": event, "sent_at": now.isoformat(), "subject": subject, "text": text,
                "incident": public, **{k: v for k, v in extra.items() if v is not None}}

    async def _publish(self, durable_kind: str | None, change: str, view: dict[str, Any],
                       detail: dict[str, Any]) -> None:
        now = self.clock.now()
        try:
            if durable_kind is not None:
                await self.bus.publish(make_event(durable_kind, str(view["id"]), now, {
                    "incident_id": view["id"], "state": view["state"], "priority": view["priority"],
                    "agencies": view["agencies"], "alert_ids": view["alert_ids"], **detail}))
            await self.bus.broadcast([make_event("incident.changed", str(view["id"]), now,
                                                 {"change": change, "incident": view})])
        except Exception:
            # The change is committed and audited; a bus outage must not turn it into an error for the caller.
            log.exception("could not publish %s for incident %s", change, view["id"])
