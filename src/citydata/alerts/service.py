"""Alerts: one row per active condition, updated (not repeated) while it stays active.

The durable consumer group ``alerts`` takes ``alert.raised`` and ``alert.cleared``. A raised alert whose
``dedup_key`` has an active (open or acknowledged) alert updates it: ``last_seen_at``, ``occurrences`` + 1,
evidence merged (by id) and capped, severity and message refreshed. A cleared alert is never reopened: the next
``alert.raised`` with that key opens a new alert.

Exactly once: a producer that names its firing *episode* (the rules engine: ``episode`` and ``revision`` in the
payload, deterministic event ids) gets each episode stored once, whatever the bus does. The alerts table is
unique on (``dedup_key``, ``episode``); a raise of an episode that is stored already updates it only with a
newer revision of an active alert, and never opens a second alert, so a redelivery after the clear (past
``ack_wait``, past JetStream's duplicate window) or the same transition decided twice (a partition's old owner
still running after its lease moved) changes nothing. A clear naming an episode clears only that episode's
alert. Without an episode, a raise whose event id is the ``last_event_id`` of an alert of its key (in any state)
changes nothing: a redelivery of the last raise applied is ignored even after the clear, an older one is not.

The consumer takes its events in batches (``batch_ack``: what the bus has waiting, up to a few hundred) and
applies a batch in order in one transaction, then announces the changes; the bus acknowledges the batch after
that commit, and hands the whole batch again when it fails. A burst of CCTV violations (tens of alerts a
second) is one commit per batch, not one per alert.

Every change is announced live (``alert.changed`` on the bus, for SSE) and mirrored to MQTT
``citydata/alerts/<kind with dots as slashes>`` for integrators.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.alerts.events import MAX_EVIDENCE, AlertCleared, AlertRaised
from citydata.auth import Principal
from citydata.bus import Bus
from citydata.bus.base import Consumer, Delivery
from citydata.clock import Clock
from citydata.errors import Conflict, NotFound, ValidationFailed
from citydata.events import make_event
from citydata.incidents.model import hidden_alert_prefixes, may_see_alert_kind
from citydata.incidents.schema import alerts
from citydata.store import Store
from citydata.store.schema import audit_log

log = logging.getLogger(__name__)
ACTIVE = ("open", "acknowledged")
STATES = ("open", "acknowledged", "cleared")
MqttPublish = Callable[[str, bytes], Awaitable[bool]]


def alert_view(row: Any) -> dict[str, Any]:
    """The public JSON of an alert row."""
    r = dict(row)

    def iso(v: datetime | None) -> str | None:
        return v.isoformat() if v is not None else None

    return {
        "id": r["id"], "kind": r["kind"], "severity": r["severity"], "category": r["category"],
        "urgency": r["urgency"], "certainty": r["certainty"], "subject": r["subject"], "message": r["message"],
        "message_th": r["message_th"], "opened_at": iso(r["opened_at"]), "state": r["state"],
        "data": r["data"] or {}, "dedup_key": r["dedup_key"], "occurrences": r["occurrences"],
        "last_seen_at": iso(r["last_seen_at"]), "observed_at": iso(r["observed_at"]),
        "location": r["location"], "zone_id": r["zone_id"], "evidence": r["evidence"] or [],
        "rule_id": r["rule_id"], "rule_version": r["rule_version"], "source": r["source"],
        "acked_at": iso(r["acked_at"]), "acked_by": r["acked_by"], "cleared_at": iso(r["cleared_at"]),
        "cleared_by": r["cleared_by"], "clear_reason": r["clear_reason"], "updated_at": iso(r["updated_at"]),
    }


def audit_row(principal: Principal, action: str, subject_type: str, subject_id: str, at: datetime,
              detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """An ``audit_log`` row, written inside the same transaction as the change it records."""
    return {"at": at, "actor": principal.subject[:100], "role": principal.role.value, "action": action,
            "subject_type": subject_type, "subject_id": subject_id, "purpose": None, "detail": detail,
            "client": None}


def new_id(result: Any) -> int:
    """The primary key of the row an INSERT just created."""
    return int(result.inserted_primary_key[0])


def stale(stored: int | None, incoming: int | None) -> bool:
    """True when a raise's revision is not newer than the episode's stored one (a duplicate or older update)."""
    return stored is not None and incoming is not None and incoming <= stored


def merge_evidence(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Old then new, one entry per (kind, id) (the newer wins), sorted by time, the newest ``MAX_EVIDENCE``."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for item in [*old, *new]:
        by_key[(str(item.get("kind")), str(item.get("id")))] = item
    ordered = sorted(by_key.values(), key=lambda e: str(e.get("time", "")))
    return ordered[-MAX_EVIDENCE:]


class AlertService:
    """Reads and changes alerts; consumes the ``alert.*`` events."""

    def __init__(self, store: Store, bus: Bus, clock: Clock, mqtt_publish: MqttPublish | None = None) -> None:
        self.store, self.bus, self.clock = store, bus, clock
        self.mqtt_publish = mqtt_publish
        self._consumer: Consumer | None = None
        self.mqtt_published = 0
        self.duplicates_ignored = 0    # raises of an episode (or event) already stored: redelivered or decided twice
        self.batches_applied = 0       # consumer batches applied (one transaction each)
        # the consumer's batch so far, by event id: applied in one transaction on the batch's last event
        self._batch: dict[str, tuple[AlertRaised | AlertCleared, str]] = {}

    async def start(self) -> None:
        self._consumer = await self.bus.consume("alerts", "alert.>", self._on_event, start="all", batch_ack=True)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None

    # -- consuming ------------------------------------------------------------------------------------------
    async def _on_event(self, delivery: Delivery) -> None:
        """Collect the batch's events; on its last one apply them all in one transaction (the bus acknowledges
        the batch after that). An event handed again while still collected is collected once."""
        event = delivery.event
        try:
            if event.kind == "alert.raised":
                self._batch[event.id] = (AlertRaised.model_validate(event.data), event.source)
            elif event.kind == "alert.cleared":
                self._batch[event.id] = (AlertCleared.model_validate(event.data), event.source)
        except ValidationError as err:
            # A malformed event fails the same way on every attempt; the bus dead-letters it after its attempts.
            if delivery.last_in_batch:
                await self._apply_batch()
            raise ValidationFailed(f"{event.kind} {event.id}: {err.errors()[0]['msg']}") from err
        if delivery.last_in_batch:
            await self._apply_batch()

    async def _apply_batch(self) -> None:
        """Apply the collected events in order in one transaction, then announce the changes. On failure they
        are dropped: the bus hands the whole batch again (to this node or, on NATS, to another)."""
        if not self._batch:
            return
        items = list(self._batch.items())
        self._batch.clear()
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> list[tuple[str, int | None]]:
            out: list[tuple[str, int | None]] = []
            for event_id, (payload, source) in items:
                if isinstance(payload, AlertRaised):
                    out.append(await self._apply_raise(conn, payload, event_id, source, now))
                else:
                    out.append(("cleared", await self._apply_clear(conn, payload, now)))
            return out

        results = await self._write(op, episodes=any(isinstance(p, AlertRaised) and p.episode is not None
                                                      for _, (p, _) in items))
        self.batches_applied += 1
        views = {v["id"]: v for v in await self.rows([i for _, i in results if i is not None])}
        for (event_id, (payload, _)), (change, alert_id) in zip(items, results, strict=True):
            if alert_id is None:
                continue
            if change == "unchanged":
                self.duplicates_ignored += 1
                log.info("alert.raised %s (%s) is stored already: ignored", event_id, payload.dedup_key)
            elif alert_id in views:
                await self.announce(change, views[alert_id])

    async def _write(self, op: Callable[[AsyncConnection], Awaitable[Any]], *, episodes: bool) -> Any:
        try:
            return await self.store.write(op)
        except Conflict as err:
            # another writer (a second leader's consumer, in the overlap of a leader change) stored an episode
            # between our read and our insert: the unique index refused ours; decide again on its row
            if err.code != "integrity_conflict" or not episodes:
                raise
            return await self.store.write(op)

    async def raise_alert(self, raised: AlertRaised, *, event_id: str | None = None,
                          source: str = "citydata") -> tuple[str, dict[str, Any]]:
        """Open an alert or update the active one with the same dedup key; returns (change, alert)."""
        now = self.clock.now()
        change, alert_id = await self._write(
            lambda conn: self._apply_raise(conn, raised, event_id, source, now), episodes=raised.episode is not None)
        view = alert_view(await self._row(alert_id))
        if change == "unchanged":
            self.duplicates_ignored += 1
            log.info("alert.raised %s (%s, episode %s) is stored already: ignored", event_id, raised.dedup_key,
                     raised.episode)
        else:
            await self.announce(change, view)
        return change, view

    async def _apply_raise(self, conn: AsyncConnection, raised: AlertRaised, event_id: str | None, source: str,
                           now: datetime) -> tuple[str, int]:
        """One raise in the caller's transaction: ("opened" | "updated" | "unchanged", alert id)."""
        payload = raised.model_dump(mode="json")
        evidence = payload["evidence"]
        # one statement (one snapshot): the active alerts, and whatever its state, this episode's alert and
        # the alert this very event updated last (a redelivery after the clear must not open another)
        wanted: ColumnElement[bool] = alerts.c.state.in_(ACTIVE)
        if raised.episode is not None:
            wanted = or_(wanted, alerts.c.episode == raised.episode)
        if event_id is not None:
            wanted = or_(wanted, alerts.c.last_event_id == event_id)
        candidates = (await conn.execute(select(alerts).where(alerts.c.dedup_key == raised.dedup_key, wanted)
                                         .order_by(alerts.c.id.desc()))).mappings().all()
        applied = next((r for r in candidates if event_id is not None and r["last_event_id"] == event_id), None)
        if applied is not None:
            return "unchanged", int(applied["id"])   # a redelivery of what we already applied
        same = next((r for r in candidates if raised.episode is not None and r["episode"] == raised.episode),
                    None)
        if same is not None and (same["state"] not in ACTIVE or stale(same["revision"], raised.revision)):
            return "unchanged", int(same["id"])   # this episode's raise again, or an older revision of it
        found = same or next((r for r in candidates if r["state"] in ACTIVE), None)
        fields = {
            "kind": raised.kind, "severity": raised.severity, "category": raised.category,
            "urgency": raised.urgency, "certainty": raised.certainty, "subject": raised.subject,
            "message": raised.message, "message_th": raised.message_th, "location": raised.location,
            "zone_id": raised.zone_id, "rule_id": raised.rule_id or None, "rule_version": raised.rule_version,
            "data": payload["data"], "observed_at": raised.observed_at, "last_seen_at": now,
            "updated_at": now, "last_event_id": event_id, "revision": raised.revision,
        }
        if found is None:
            result = await conn.execute(alerts.insert().values(
                dedup_key=raised.dedup_key, episode=raised.episode, state="open", occurrences=1,
                opened_at=now, source=source[:100], evidence=merge_evidence([], evidence), **fields))
            return "opened", new_id(result)
        if raised.episode is not None:
            fields["episode"] = raised.episode   # an active alert of another episode now stands for this one
        await conn.execute(alerts.update().where(alerts.c.id == found["id"]).values(
            occurrences=alerts.c.occurrences + 1,
            evidence=merge_evidence(list(found["evidence"] or []), evidence), **fields))
        return "updated", int(found["id"])

    async def clear_by_key(self, cleared: AlertCleared) -> dict[str, Any] | None:
        """Clear the active alert with this dedup key (none: nothing to do)."""
        now = self.clock.now()
        alert_id = await self.store.write(lambda conn: self._apply_clear(conn, cleared, now))
        if alert_id is None:
            return None
        view = alert_view(await self._row(alert_id))
        await self.announce("cleared", view)
        return view

    async def _apply_clear(self, conn: AsyncConnection, cleared: AlertCleared, now: datetime) -> int | None:
        """One clear in the caller's transaction: the id of the alert it cleared (None: no active alert)."""
        by = f"rule:{cleared.rule_id}" if cleared.rule_id else "rule"
        query = select(alerts.c.id).where(alerts.c.dedup_key == cleared.dedup_key, alerts.c.state.in_(ACTIVE))
        if cleared.episode is not None:   # not a later episode's alert (a stale clear redelivered)
            query = query.where(or_(alerts.c.episode == cleared.episode, alerts.c.episode.is_(None)))
        found = (await conn.execute(query)).scalars().all()
        for alert_id in found:
            await conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
                state="cleared", cleared_at=now, cleared_by=by[:100], clear_reason=cleared.reason[:500] or None,
                updated_at=now))
        return int(found[-1]) if found else None

    # -- operator actions ------------------------------------------------------------------------------------
    async def acknowledge(self, alert_id: int, principal: Principal, note: str | None = None) -> dict[str, Any]:
        """open → acknowledged (idempotent for an acknowledged alert); a cleared alert: 409."""
        await self.get(alert_id, principal)
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> str:
            state = (await conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id))).scalar()
            if state == "cleared":
                return "cleared"
            if state == "acknowledged":
                return "already"
            await conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
                state="acknowledged", acked_at=now, acked_by=principal.subject[:100], updated_at=now))
            await conn.execute(audit_log.insert().values(**audit_row(
                principal, "alert.ack", "alert", str(alert_id), now, {"note": note} if note else None)))
            return "acked"

        outcome = await self.store.write(op)
        if outcome == "cleared":
            raise Conflict(f"alert {alert_id} is cleared", code="alert_cleared")
        view = alert_view(await self._row(alert_id))
        if outcome == "acked":
            await self.announce("acknowledged", view)
        return view

    async def clear(self, alert_id: int, principal: Principal, reason: str | None = None) -> dict[str, Any]:
        """An operator clears an active alert (idempotent for a cleared one)."""
        await self.get(alert_id, principal)
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> bool:
            state = (await conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id))).scalar()
            if state == "cleared":
                return False
            await conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
                state="cleared", cleared_at=now, cleared_by=principal.subject[:100],
                clear_reason=(reason or "cleared by operator")[:500], updated_at=now))
            await conn.execute(audit_log.insert().values(**audit_row(
                principal, "alert.clear", "alert", str(alert_id), now, {"reason": reason} if reason else None)))
            return True

        changed = await self.store.write(op)
        view = alert_view(await self._row(alert_id))
        if changed:
            await self.announce("cleared", view)
        return view

    # -- reads ------------------------------------------------------------------------------------------------
    async def _row(self, alert_id: int) -> Any:
        row = await self.store.fetch_one(select(alerts).where(alerts.c.id == alert_id))
        if row is None:
            raise NotFound(f"no alert {alert_id}", code="alert_not_found")
        return row

    async def get(self, alert_id: int, principal: Principal) -> dict[str, Any]:
        row = await self._row(alert_id)
        if not may_see_alert_kind(principal, row["kind"]):
            raise NotFound(f"no alert {alert_id}", code="alert_not_found")
        return alert_view(row)

    async def rows(self, ids: list[int]) -> list[dict[str, Any]]:
        if not ids:
            return []
        return [alert_view(r) for r in await self.store.fetch_all(select(alerts).where(alerts.c.id.in_(ids)))]

    async def list(self, principal: Principal, *, kind: str | None = None, state: str | None = None,
                   since: datetime | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Alerts the caller may see, newest first. ``kind`` may end in ``.*`` or ``.>`` (a prefix);
        ``state`` is one of open, acknowledged, cleared, or ``active`` (open or acknowledged)."""
        stmt = select(alerts)
        if kind:
            if kind.endswith((".*", ".>")):
                stmt = stmt.where(alerts.c.kind.startswith(kind[:-1], autoescape=True))
            else:
                stmt = stmt.where(alerts.c.kind == kind)
        if state:
            if state == "active":
                stmt = stmt.where(alerts.c.state.in_(ACTIVE))
            elif state in STATES:
                stmt = stmt.where(alerts.c.state == state)
            else:
                raise ValidationFailed("state must be open, acknowledged, cleared or active", code="invalid_state")
        if since is not None:
            if since.tzinfo is None:
                raise ValidationFailed("since must be timezone-aware", code="invalid_time")
            stmt = stmt.where(or_(alerts.c.opened_at >= since, alerts.c.updated_at >= since))
        hidden = hidden_alert_prefixes(principal)
        if hidden:
            stmt = stmt.where(and_(*[not_(alerts.c.kind.startswith(p, autoescape=True)) for p in hidden]))
        stmt = stmt.order_by(alerts.c.opened_at.desc(), alerts.c.id.desc()).limit(limit).offset(offset)
        return [alert_view(r) for r in await self.store.fetch_all(stmt)]

    # -- fan-out ------------------------------------------------------------------------------------------------
    async def announce(self, change: str, view: dict[str, Any]) -> None:
        """Tell live subscribers (SSE on every node) and MQTT integrators. Best effort: never raises."""
        try:
            await self.bus.broadcast([make_event("alert.changed", str(view["id"]), self.clock.now(),
                                                 {"change": change, "alert": view})])
        except Exception:
            log.exception("could not broadcast alert.changed for alert %s", view["id"])
        if self.mqtt_publish is not None:
            topic = "citydata/alerts/" + str(view["kind"]).replace(".", "/")
            try:
                if await self.mqtt_publish(topic, orjson.dumps({"change": change, "alert": view})):
                    self.mqtt_published += 1
            except Exception:
                log.exception("could not publish alert %s to MQTT", view["id"])
