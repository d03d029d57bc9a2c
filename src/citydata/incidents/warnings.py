"""Public warnings: operators issue, update and cancel them; rules only draft them.

A warning (``cap_warnings``) is a thread of CAP messages (``cap_messages``): ``Alert`` when it is issued,
``Update`` (referencing every earlier message) when an operator changes it, ``Cancel`` when it is withdrawn.
A ``cap.draft_requested`` event creates (or refreshes) a *draft*; a draft is never public: it becomes a
published ``Alert`` only when an operator approves it. Every step is audited.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.alerts.events import CapDraftRequested
from citydata.alerts.service import audit_row
from citydata.auth import Principal, Role
from citydata.bus import Bus
from citydata.bus.base import Consumer, Delivery
from citydata.clock import Clock
from citydata.config import Settings
from citydata.errors import Conflict, NotFound, ValidationFailed
from citydata.geo import Geography
from citydata.incidents.cap import Reference, WarningSpec, build_alert, cap_time, resolve_areas
from citydata.incidents.schema import cap_messages, cap_warnings
from citydata.store import Store
from citydata.store.schema import audit_log

log = logging.getLogger(__name__)
RULES = Principal("system:rules", Role.OPERATOR, "token")
FEED_CANCELLED_FOR = timedelta(hours=24)


def warning_view(row: Any, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    r = dict(row)
    out = {"id": r["id"], "state": r["state"], "origin": r["origin"], "spec": r["spec"],
           "created_at": r["created_at"].isoformat(), "created_by": r["created_by"],
           "updated_at": r["updated_at"].isoformat(), "approved_by": r["approved_by"],
           "current_message": r["current_message"]}
    if messages is not None:
        out["messages"] = messages
    return out


class CapService:
    def __init__(self, store: Store, bus: Bus, clock: Clock, settings: Settings,
                 geography: Geography | None) -> None:
        self.store, self.bus, self.clock, self.settings = store, bus, clock, settings
        self.geography = geography
        self._consumer: Consumer | None = None

    async def start(self) -> None:
        self._consumer = await self.bus.consume("alerts-cap", "cap.draft_requested", self._on_draft, start="all")

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None

    def alert_url(self, identifier: str) -> str:
        return f"{self.settings.base_url.rstrip('/')}/cap/alerts/{identifier}.xml"

    # -- drafts from rules ----------------------------------------------------------------------------------
    async def _on_draft(self, delivery: Delivery) -> None:
        try:
            req = CapDraftRequested.model_validate(delivery.event.data)
        except ValidationError as err:
            raise ValidationFailed(f"cap.draft_requested {delivery.event.id}: {err.errors()[0]['msg']}") from err
        await self.draft_from_rule(delivery.event.key, req)

    async def draft_from_rule(self, key: str, req: CapDraftRequested) -> dict[str, Any] | None:
        """Create or refresh the draft for ``key``; an active warning for it is left to the operators."""
        spec = WarningSpec(event=req.event, category=req.category, severity=req.severity, urgency=req.urgency,
                           certainty=req.certainty, headline_en=req.headline_en, headline_th=req.headline_th,
                           description_en=req.description_en, description_th=req.description_th,
                           instruction_en=req.instruction_en, instruction_th=req.instruction_th,
                           area_desc=req.area_desc, places=req.area_place_ids, polygon=req.polygon)
        now = self.clock.now()
        payload = spec.model_dump(mode="json")

        async def op(conn: AsyncConnection) -> str | None:
            row = (await conn.execute(select(cap_warnings).where(cap_warnings.c.draft_key == key))).mappings().first()
            if row is not None and row["state"] == "draft":
                await conn.execute(cap_warnings.update().where(cap_warnings.c.id == row["id"]).values(
                    spec=payload, updated_at=now))
                return str(row["id"])
            if row is not None and row["state"] == "active":
                return None
            if row is not None:     # cancelled or rejected: a new request starts a new thread
                await conn.execute(cap_warnings.update().where(cap_warnings.c.id == row["id"]).values(
                    draft_key=None))
            warning_id = uuid.uuid4().hex
            await conn.execute(cap_warnings.insert().values(
                id=warning_id, state="draft", origin="rule", draft_key=key, spec=payload, created_at=now,
                created_by=RULES.subject, updated_at=now))
            await conn.execute(audit_log.insert().values(**audit_row(
                RULES, "cap.draft", "cap_warning", warning_id, now, {"draft_key": key[:200]})))
            return warning_id

        warning_id = await self.store.write(op)
        return await self.get(warning_id) if warning_id else None

    # -- operator actions ------------------------------------------------------------------------------------
    async def issue(self, principal: Principal, spec: WarningSpec) -> dict[str, Any]:
        """An operator issues a new warning: published at once as a CAP ``Alert``."""
        warning_id = uuid.uuid4().hex
        now = self.clock.now()

        async def create(conn: AsyncConnection) -> None:
            await conn.execute(cap_warnings.insert().values(
                id=warning_id, state="draft", origin="operator", spec=spec.model_dump(mode="json"), created_at=now,
                created_by=principal.subject[:100], updated_at=now))

        spec.check_publishable()
        resolve_areas(spec, self.geography)        # fail before anything is stored
        await self.store.write(create)
        return await self._publish(warning_id, principal, spec, "Alert", "cap.issue")

    async def approve(self, warning_id: str, principal: Principal, spec: WarningSpec | None = None) -> dict[str, Any]:
        """Publish a draft (optionally edited) as a CAP ``Alert``."""
        row = await self._row(warning_id)
        if row["state"] != "draft":
            raise Conflict(f"warning {warning_id} is {row['state']}, not a draft", code="not_a_draft")
        spec = spec or WarningSpec.model_validate(row["spec"])
        return await self._publish(warning_id, principal, spec, "Alert", "cap.approve")

    async def update(self, warning_id: str, principal: Principal, spec: WarningSpec) -> dict[str, Any]:
        """Edit a draft, or publish a CAP ``Update`` of an active warning."""
        row = await self._row(warning_id)
        if row["state"] == "draft":
            now = self.clock.now()

            async def op(conn: AsyncConnection) -> None:
                await conn.execute(cap_warnings.update().where(cap_warnings.c.id == warning_id).values(
                    spec=spec.model_dump(mode="json"), updated_at=now))
                await conn.execute(audit_log.insert().values(**audit_row(
                    principal, "cap.edit_draft", "cap_warning", warning_id, now)))

            await self.store.write(op)
            return await self.get(warning_id)
        if row["state"] != "active":
            raise Conflict(f"warning {warning_id} is {row['state']}", code="warning_closed")
        return await self._publish(warning_id, principal, spec, "Update", "cap.update")

    async def cancel(self, warning_id: str, principal: Principal) -> dict[str, Any]:
        """Withdraw: an active warning gets a CAP ``Cancel``; a draft is rejected (never public)."""
        row = await self._row(warning_id)
        now = self.clock.now()
        if row["state"] == "draft":
            async def op(conn: AsyncConnection) -> None:
                await conn.execute(cap_warnings.update().where(cap_warnings.c.id == warning_id).values(
                    state="rejected", updated_at=now, approved_by=principal.subject[:100]))
                await conn.execute(audit_log.insert().values(**audit_row(
                    principal, "cap.reject", "cap_warning", warning_id, now)))

            await self.store.write(op)
            return await self.get(warning_id)
        if row["state"] != "active":
            raise Conflict(f"warning {warning_id} is {row['state']}", code="warning_closed")
        return await self._publish(warning_id, principal, WarningSpec.model_validate(row["spec"]), "Cancel",
                                   "cap.cancel")

    async def _publish(self, warning_id: str, principal: Principal, spec: WarningSpec, msg_type: str,
                       action: str) -> dict[str, Any]:
        if msg_type != "Cancel":
            spec.check_publishable()
        areas = resolve_areas(spec, self.geography)
        s = self.settings
        now = self.clock.now()
        identifier = f"{s.city}.ioc.{uuid.uuid4().hex}"
        previous = await self.store.fetch_all(select(cap_messages.c.identifier, cap_messages.c.sent).where(
            cap_messages.c.warning_id == warning_id).order_by(cap_messages.c.sent))
        references = [Reference(s.ioc_cap_sender, p["identifier"], cap_time(p["sent"], s.timezone))
                      for p in previous]
        if msg_type == "Alert" and references:
            msg_type = "Update"
        xml = build_alert(identifier=identifier, sender=s.ioc_cap_sender, sent=now, status=s.ioc_cap_status,
                          msg_type=msg_type, spec=spec, areas=areas, sender_name=s.ioc_cap_sender_name,
                          web=self.alert_url(identifier), references=references or None, tz=s.timezone)
        state = "cancelled" if msg_type == "Cancel" else "active"

        async def op(conn: AsyncConnection) -> None:
            done = await conn.execute(cap_warnings.update().where(
                cap_warnings.c.id == warning_id, cap_warnings.c.state.in_(("draft", "active"))).values(
                state=state, spec=spec.model_dump(mode="json"), updated_at=now, current_message=identifier,
                approved_by=principal.subject[:100]))
            if not done.rowcount:
                raise Conflict(f"warning {warning_id} changed meanwhile", code="concurrent_change")
            await conn.execute(cap_messages.insert().values(
                identifier=identifier, warning_id=warning_id, msg_type=msg_type, sent=now, xml=xml.decode(),
                headline=spec.headline_en[:500], created_by=principal.subject[:100]))
            await conn.execute(audit_log.insert().values(**audit_row(
                principal, action, "cap_warning", warning_id, now, {"identifier": identifier, "msgType": msg_type})))

        await self.store.write(op)
        log.info("CAP %s %s published for warning %s", msg_type, identifier, warning_id)
        return await self.get(warning_id)

    # -- reads ------------------------------------------------------------------------------------------------
    async def _row(self, warning_id: str) -> Any:
        row = await self.store.fetch_one(select(cap_warnings).where(cap_warnings.c.id == warning_id))
        if row is None:
            raise NotFound(f"no warning {warning_id}", code="warning_not_found")
        return row

    async def get(self, warning_id: str) -> dict[str, Any]:
        row = await self._row(warning_id)
        msgs = await self.store.fetch_all(select(cap_messages.c.identifier, cap_messages.c.msg_type,
                                                 cap_messages.c.sent).where(cap_messages.c.warning_id == warning_id)
                                          .order_by(cap_messages.c.sent))
        return warning_view(row, [{"identifier": m["identifier"], "msg_type": m["msg_type"],
                                   "sent": m["sent"].isoformat(), "url": self.alert_url(m["identifier"])}
                                  for m in msgs])

    async def list(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(cap_warnings).order_by(cap_warnings.c.updated_at.desc()).limit(limit)
        if state is not None:
            stmt = stmt.where(cap_warnings.c.state == state)
        return [warning_view(r) for r in await self.store.fetch_all(stmt)]

    async def message_xml(self, identifier: str) -> str:
        """A published CAP message (drafts have none, so they cannot leak here)."""
        xml = await self.store.scalar(select(cap_messages.c.xml).where(cap_messages.c.identifier == identifier))
        if xml is None:
            raise NotFound(f"no CAP message {identifier}", code="cap_not_found")
        return str(xml)

    async def feed_entries(self, now: datetime | None = None) -> builtins.list[dict[str, Any]]:
        """The current message of every active warning, and of warnings cancelled in the last 24 hours."""
        now = now or self.clock.now()
        stmt = (select(cap_messages, cap_warnings.c.state).join(
            cap_warnings, cap_warnings.c.current_message == cap_messages.c.identifier)
            .where(or_(cap_warnings.c.state == "active",
                       (cap_warnings.c.state == "cancelled") & (cap_messages.c.sent >= now - FEED_CANCELLED_FOR)))
            .order_by(cap_messages.c.sent.desc()))
        return [dict(r) for r in await self.store.fetch_all(stmt)]
