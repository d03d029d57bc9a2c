"""``TrackingService``: the one service call per input (arrival, departure, enrolment, pings) and the timers.

The ping path: parse and check each item → the geofence engine (in memory, per traveller, synchronous so two
requests of one traveller never interleave) decides what each fix is (accepted, duplicate, too late to
replay, impossible speed) → every item is stored (``tracking_pings``, idempotent on traveller + time, flagged
where it did not count) → the fence transitions are persisted and published as typed events. Last-seen data
is kept in memory and flushed to ``tracking_travellers`` in batches; the geofence and overdue state of active
travellers is reloaded from the store on start.

On one node this service owns the tracking state (the geofence and the silent-tracker timer are in-process).
In multi-node mode (``start(shared=True)``) it keeps no traveller state: the routes read the store and pings go
to the owner of the traveller's partition (``citydata.tracking.shared``, ``citydata.tracking.partition``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.auth import Principal, Role
from citydata.cluster.partition import partition_of
from citydata.errors import CityDataError, Conflict, NotFound, ValidationFailed
from citydata.events import Event, make_event
from citydata.geo.model import geometry_from_geojson
from citydata.tracking import events as _events  # noqa: F401 - registers the payload models
from citydata.tracking.arrivals import ArrivalIn, ArrivalOut, DepartureIn, EnrolOut, ZoneIn, iso, screening_reasons
from citydata.tracking.geofence import (
    INSIDE,
    OUTSIDE,
    Fence,
    FenceSet,
    FenceState,
    GeofenceEngine,
    StepResult,
    Transition,
)
from citydata.tracking.overdue import OverdueMonitor
from citydata.tracking.ping_batch import PingBatcher
from citydata.tracking.pings import PingsAccepted, Rejection, parse_batch
from citydata.tracking.privacy import IdentityVault, IncidentAccess, new_traveller_id
from citydata.tracking.schema import (
    tracking_fence_state,
    tracking_identity,
    tracking_travellers,
    tracking_zones,
)
from citydata.tracking.state import Runtime, from_epoch, last_seen_row, load_runtimes, to_epoch
from citydata.tracking.zones import add_zone, delete_zone, list_zones

if TYPE_CHECKING:
    from citydata.auth import AuditLog, TokenService
    from citydata.bus import Bus
    from citydata.clock import Clock
    from citydata.config import Settings
    from citydata.geo import Geography
    from citydata.store import Store

log = logging.getLogger(__name__)
FLUSH_S = 2.0
OVERDUE_PER_ROUND = 5000      # overdue events per timer round at most (a storm is spread over rounds)
PUBLISH_CHUNK = 500


class TrackingService:
    def __init__(self, *, settings: Settings, store: Store, bus: Bus, clock: Clock, geography: Geography,
                 audit: AuditLog, tokens: TokenService, pii_keys: list[tuple[str, bytes]], secret_key: bytes,
                 incident_access: IncidentAccess | None = None) -> None:
        self.settings, self.store, self.bus, self.clock = settings, store, bus, clock
        self.geography, self.audit, self.tokens = geography, audit, tokens
        self.vault = IdentityVault(store, audit, clock, pii_keys, secret_key, incident_access)
        self._enrol_key = hmac.new(secret_key, b"citydata/tracking/enrolment", hashlib.sha256).digest()
        s = settings
        home = geography.require(f"province:{s.tracking_home_province}")
        self.home = Fence(home.id, home.name_en, home.geometry, s.tracking_tolerance_m, home=True)
        self.engine = GeofenceEngine(FenceSet(self.home), dwell_s=s.tracking_dwell_s,
                                     lateness_s=s.tracking_lateness_s, still_outside_s=s.tracking_still_outside_s,
                                     max_speed_kmh=s.tracking_max_speed_kmh,
                                     window_fixes=s.tracking_window_fixes)
        self.zones: dict[str, dict[str, Any]] = {}
        subs = geography.by_kind("subdistrict")
        self._sub_codes = [p.code for p in subs]
        self._sub_tree = shapely.STRtree([p.geometry for p in subs]) if subs else None
        self.travellers: dict[str, Runtime] = {}
        self._by_token: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._attention: set[str] = set()
        self.monitor = OverdueMonitor(2 * s.tracking_report_interval_s + s.tracking_overdue_grace_s,
                                      self._last_report_of)
        self._tasks: list[asyncio.Task[None]] = []
        self.alerts: Any = None
        self.shared = False
        self._pings = PingBatcher(self)
        self.checked_arrivals: dict[str, float] = {}   # shared mode: traveller -> arrival, checked this request
        self._zone_sub: Any = None
        from citydata.tracking.retention import Retention
        from citydata.tracking.views import TrackingViews

        self.views = TrackingViews(self)
        self.retention = Retention(self)

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, *, timers: bool = True, shared: bool = False) -> None:
        """``shared``: multi-node mode: this node answers the routes from the store and hands pings to the
        traveller's partition owner over the bus (``citydata.tracking.shared``); no state, no timers here."""
        self.shared = shared
        await self._load()
        if shared:
            from citydata.tracking.shared import SharedViews, watch_zones

            self.views = SharedViews(self)
            self._zone_sub = await watch_zones(self)
            log.info("tracking started (shared): %d zones", len(self.zones))
            return
        if self.settings.tracking_direct_alerts:
            from citydata.tracking.alerts import TrackingAlerts

            self.alerts = TrackingAlerts(self.bus, self.clock, self.home.id)
            await self.alerts.start()
        if timers:
            self._tasks.append(asyncio.create_task(self._timer(), name="tracking-timer"))
            self._tasks.append(asyncio.create_task(self._flusher(), name="tracking-flush"))
        log.info("tracking started: %d active travellers, %d zones", len(self.travellers), len(self.zones))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._zone_sub is not None:
            await self._zone_sub.close()
            self._zone_sub = None
        await self._pings.drain()
        if self.alerts is not None:
            await self.alerts.stop()
        with contextlib.suppress(CityDataError):
            await self.flush()

    async def _load(self) -> None:
        await self.load_zones()
        if self.shared:
            return          # the travellers' state lives with their partition's owner (tracking.partition)
        for rt, token in await self.load_runtimes():
            self.travellers[rt.traveller_id] = rt
            if token:
                self._by_token[token] = rt.traveller_id
            if rt.overdue_since is None:
                self.monitor.reported(rt.traveller_id, rt.last_report or rt.arrived)
            if self.engine.needs_tick(rt.fences.states):
                self._attention.add(rt.traveller_id)

    async def load_zones(self) -> None:
        self.zones = {row["id"]: dict(row) for row in await self.store.fetch_all(select(tracking_zones))}
        self._rebuild_fences()

    async def load_runtimes(self, keep: Callable[[str], bool] | None = None, *, traveller_id: str | None = None,
                            partition: int | None = None) -> list[tuple[Runtime, str | None]]:
        """The active travellers' state from the store (``citydata.tracking.state.load_runtimes``); with
        ``partition``, those of that bus partition (read by their stored partition, not all of them)."""
        return await load_runtimes(self.store, self.home.id, set(self.engine.fences.by_id), keep,
                                   traveller_id=traveller_id,
                                   partition=None if partition is None else (partition, self.bus.partitions))

    def _rebuild_fences(self) -> None:
        zones = [Fence(z["id"], z["name"], geometry_from_geojson(z["geometry"]), z["buffer_m"])
                 for z in self.zones.values()]
        self.engine.fences = FenceSet(self.home, zones)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _last_report_of(self, tid: str) -> tuple[float, float] | None:
        rt = self.travellers.get(tid)
        if rt is None or not rt.active or rt.overdue_since is not None:
            return None
        last_seen = rt.last_fix.t if rt.last_fix else rt.arrived
        return (rt.last_report or rt.arrived), last_seen

    def now_in(self, lon: float, lat: float) -> str:
        """The province the point is in (or nearest, within ``tracking_sea_max_m``), else ``at sea``."""
        place = self.geography.province_at(lon, lat)
        if place is not None:
            return place.name_en
        near = self.geography.nearest_province(lon, lat, self.settings.tracking_sea_max_m)
        return near[0].name_en if near else "at sea"

    def subdistricts_of(self, lons: list[float], lats: list[float]) -> list[str | None]:
        out: list[str | None] = [None] * len(lons)
        if self._sub_tree is None or not lons:
            return out
        pairs = self._sub_tree.query(shapely.points(np.asarray(lons), np.asarray(lats)), predicate="intersects")
        for p, s in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
            if out[p] is None:
                out[p] = self._sub_codes[s]
        return out

    def enrol_hash(self, code: str) -> str:
        return hmac.new(self._enrol_key, code.encode(), hashlib.sha256).hexdigest()

    def forget(self, tid: str) -> None:
        """Drop a traveller from memory (erasure)."""
        self.travellers.pop(tid, None)
        self.monitor.forget(tid)
        self._attention.discard(tid)
        self._dirty.discard(tid)
        for token, owner in list(self._by_token.items()):
            if owner == tid:
                del self._by_token[token]

    def runtime(self, tid: str) -> Runtime:
        rt = self.travellers.get(tid)
        if rt is None:
            raise NotFound("unknown traveller", code="traveller_not_found")
        return rt

    # -- arrivals and departures -----------------------------------------------------------------------------
    async def arrive(self, principal: Principal, body: ArrivalIn) -> ArrivalOut:
        s = self.settings
        code = body.checkpoint.upper()
        checkpoint = self.geography.checkpoint(code)
        if checkpoint is None:
            raise ValidationFailed(f"unknown checkpoint {body.checkpoint!r} (HKT, THA_CHATCHAI, AO_CHALONG, "
                                   "RASSADA, AO_PO)", code="unknown_checkpoint")
        now = self.clock.now()
        if body.arrived_at > now + timedelta(seconds=s.tracking_max_skew_s):
            raise ValidationFailed("arrived_at is in the future", code="time_in_future")
        if not body.consent.tracking:
            raise ValidationFailed("the Sandbox entry needs the traveller's consent to tracking",
                                   code="consent_required")
        tid = new_traveller_id()
        enrol_code = secrets.token_urlsafe(12)
        reasons = screening_reasons(body.screening)
        identity = self.vault.identity_row(tid, body.traveller.model_dump(mode="json"))
        traveller = {
            "traveller_id": tid, "status": "active", "checkpoint": code, "arrived_at": body.arrived_at,
            "hotel_id": body.hotel_id, "screening": body.screening.model_dump(mode="json"),
            "screening_failed": bool(reasons),
            "consent": {"tracking": body.consent.tracking,
                        "at": iso(body.consent.at) if body.consent.at else iso(now)},
            "enrol_hash": self.enrol_hash(enrol_code),
            "enrol_expires_at": now + timedelta(seconds=s.tracking_enrol_ttl_s), "created_at": now,
            "bus_partitions": self.bus.partitions, "bus_partition": partition_of(tid, self.bus.partitions),
        }

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(tracking_identity.insert().values(**identity))
            await conn.execute(tracking_travellers.insert().values(**traveller))

        await self.store.write(op, rows=2)
        if not self.shared:      # shared: the partition owner takes it from tracking.arrived
            rt = Runtime(tid, to_epoch(body.arrived_at), body.hotel_id)
            self.engine.start(rt.fences, rt.arrived)
            self.travellers[tid] = rt
            self.monitor.reported(tid, rt.arrived)
        at = iso(body.arrived_at)
        evs = [make_event("tracking.arrived", tid, now, {"traveller_id": tid, "checkpoint": code, "at": at,
                                                         "hotel_id": body.hotel_id})]
        if reasons:
            evs.append(make_event("tracking.screening_failed", tid, now,
                                  {"traveller_id": tid, "checkpoint": code, "reasons": reasons, "at": at}))
        await self.bus.publish_many(evs)
        log.info("traveller %s arrived at %s", tid, code)
        return ArrivalOut(traveller_id=tid, enrolment_code=enrol_code, screening_failed=reasons)

    async def depart(self, principal: Principal, body: DepartureIn) -> dict[str, Any]:
        row = await self.store.fetch_one(select(tracking_travellers.c.status).where(
            tracking_travellers.c.traveller_id == body.traveller_id))
        if row is None:
            raise NotFound("unknown traveller", code="traveller_not_found")
        if row["status"] != "active":
            raise Conflict("the traveller has already departed", code="traveller_departed")
        code = body.checkpoint.upper() if body.checkpoint else None
        if code is not None and self.geography.checkpoint(code) is None:
            raise ValidationFailed(f"unknown checkpoint {body.checkpoint!r}", code="unknown_checkpoint")
        now = self.clock.now()
        when = body.departed_at or now
        await self.store.execute(update(tracking_travellers).where(
            tracking_travellers.c.traveller_id == body.traveller_id).values(
            status="departed", departed_at=when, departure_checkpoint=code))
        rt = self.travellers.pop(body.traveller_id, None)
        self.monitor.forget(body.traveller_id)
        self._attention.discard(body.traveller_id)
        evs = [make_event("tracking.departed", body.traveller_id, now,
                          {"traveller_id": body.traveller_id, "checkpoint": code, "at": iso(when)})]
        if rt is not None and rt.overdue_since is not None:
            evs.append(self._overdue_cleared(rt, now))
        await self.bus.publish_many(evs)
        return {"traveller_id": body.traveller_id, "status": "departed", "departed_at": iso(when)}

    # -- enrolment -------------------------------------------------------------------------------------------
    async def enrol(self, code: str) -> EnrolOut:
        now = self.clock.now()
        row = await self.store.fetch_one(select(tracking_travellers).where(
            tracking_travellers.c.enrol_hash == self.enrol_hash(code)))
        if row is None or row["status"] != "active" or row["enrol_expires_at"] is None \
                or row["enrol_expires_at"] <= now:
            raise NotFound("unknown, used or expired enrolment code", code="enrolment_invalid")
        tid = row["traveller_id"]
        token_id, token = await self.tokens.create(Role.DEVICE, "tourist app", created_by="tracking:enrol")

        async def op(conn: AsyncConnection) -> int:
            res = await conn.execute(update(tracking_travellers).where(
                tracking_travellers.c.traveller_id == tid,
                tracking_travellers.c.enrol_hash == row["enrol_hash"]).values(
                enrol_hash=None, enrolled_at=now, device_token_id=token_id))
            return int(res.rowcount or 0)

        if await self.store.write(op) != 1:            # a concurrent enrolment used the code first
            await self.tokens.revoke(token_id)
            raise NotFound("unknown, used or expired enrolment code", code="enrolment_invalid")
        if row["device_token_id"]:
            with contextlib.suppress(CityDataError):
                await self.tokens.revoke(row["device_token_id"])
        if not self.shared:
            self._by_token[token_id] = tid
        return EnrolOut(device_token=token, traveller_id=tid,
                        report_interval_s=self.settings.tracking_report_interval_s)

    async def traveller_for(self, principal: Principal) -> str:
        """The traveller a device token reports for: 404 when none, 409 when departed."""
        if self.shared:
            from citydata.tracking.shared import active_traveller

            return (await active_traveller(self, principal))[0]
        tid = self._by_token.get(principal.token_id or "")
        if tid is not None and tid in self.travellers:
            return tid
        row = await self.store.fetch_one(select(tracking_travellers.c.traveller_id, tracking_travellers.c.status)
                                         .where(tracking_travellers.c.device_token_id == (principal.token_id or "")))
        if row is None:
            raise NotFound("no traveller is enrolled with this device token", code="traveller_not_found")
        if row["status"] != "active":
            raise Conflict("the traveller has departed; reports are no longer accepted", code="traveller_departed")
        raise NotFound("no active traveller for this device token", code="traveller_not_found")

    # -- pings -----------------------------------------------------------------------------------------------
    async def report(self, traveller_id: str, body: Any) -> PingsAccepted:
        if self.shared:
            from citydata.tracking.shared import report_shared

            return await report_shared(self, traveller_id, body)
        s = self.settings
        rt = self.travellers.get(traveller_id)
        if rt is None:
            raise NotFound("unknown traveller", code="traveller_not_found")
        if not rt.active:
            raise Conflict("the traveller has departed", code="traveller_departed")
        now = self.clock.now()
        items, rejected = parse_batch(body, now, skew_s=s.tracking_max_skew_s, max_batch=s.tracking_max_batch)
        earliest = rt.arrived - s.tracking_max_skew_s
        kept = []
        for item in items:
            if to_epoch(item.t) < earliest:
                rejected.append(Rejection(index=item.index, code="before_arrival",
                                          detail="t is before the traveller's arrival"))
            else:
                kept.append(item)
        return await self._pings.submit(rt, kept, rejected, now)

    def note_report(self, rt: Runtime, result: StepResult, now: datetime, now_s: float, *,
                    reported: bool) -> list[Event]:
        """A traveller's fixes were taken (``PingBatcher``): last fix and report, the overdue watch, the
        attention list; returns the events to publish (the geofence's transitions, overdue cleared)."""
        evs: list[Event] = []
        if result.accepted:
            newest = max(result.accepted)
            if rt.last_fix is None or newest.t >= rt.last_fix.t:
                rt.last_fix = newest
        if reported:
            rt.last_report = now_s
            self._dirty.add(rt.traveller_id)
            if rt.overdue_since is not None:
                evs.append(self._overdue_cleared(rt, now))
                rt.overdue_since = None
            self.monitor.reported(rt.traveller_id, now_s)
        evs.extend(self._transition_events(rt, result.transitions, now))
        if self.engine.needs_tick(rt.fences.states):
            self._attention.add(rt.traveller_id)
        return evs

    # -- events ----------------------------------------------------------------------------------------------
    def _fence_name(self, fence_id: str) -> str:
        fence = self.engine.fences.by_id.get(fence_id)
        return fence.name if fence else fence_id

    def _transition_events(self, rt: Runtime, transitions: list[Transition], now: datetime) -> list[Event]:
        out: list[Event] = []
        for tr in transitions:
            fix = tr.fix
            if math.isnan(fix.lon) and rt.last_fix is not None:
                fix = rt.last_fix
            if math.isnan(fix.lon):
                continue
            data: dict[str, Any] = {"traveller_id": rt.traveller_id, "zone": tr.fence_id,
                                    "zone_name": self._fence_name(tr.fence_id),
                                    "now_in": self.now_in(fix.lon, fix.lat), "lat": round(fix.lat, 6),
                                    "lon": round(fix.lon, 6), "accuracy_m": fix.acc, "at": iso(from_epoch(fix.t))}
            if tr.kind == "still_outside":
                kind = "tracking.still_outside"
                data["since"] = iso(from_epoch(tr.since))
            elif tr.new == INSIDE:
                kind = "tracking.zone_entered"
            elif tr.new == OUTSIDE:
                kind = "tracking.zone_left"
            else:
                continue
            out.append(make_event(kind, rt.traveller_id, now, data))
        return out

    def _overdue_cleared(self, rt: Runtime, now: datetime) -> Event:
        since = rt.overdue_since or to_epoch(now)
        last = rt.last_fix.t if rt.last_fix else rt.arrived
        return make_event("tracking.overdue_cleared", rt.traveller_id, now,
                          {"traveller_id": rt.traveller_id, "last_seen_at": iso(from_epoch(last)),
                           "overdue_for_s": round(max(0.0, to_epoch(now) - since), 1)})

    async def persist_transitions(self, rt: Runtime, transitions: list[Transition], now: datetime) -> None:
        fences = {tr.fence_id for tr in transitions if tr.kind == "change"}
        if not fences:
            return
        rows = []
        for fid in fences:
            st = rt.fences.states.get(fid, FenceState(OUTSIDE))
            rows.append({"traveller_id": rt.traveller_id, "fence_id": fid, "state": st.state,
                         "since": from_epoch(st.since) if st.since else None, "updated_at": now})
        ins = (pg_insert if self.store.dialect == "postgresql" else sqlite_insert)(tracking_fence_state)
        stmt = ins.on_conflict_do_update(index_elements=["traveller_id", "fence_id"], set_={
            "state": ins.excluded.state, "since": ins.excluded.since, "updated_at": ins.excluded.updated_at})

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(stmt, rows)

        await self.store.write(op, rows=len(rows))

    # -- timers ----------------------------------------------------------------------------------------------
    async def tick(self) -> list[Event]:
        """One timer round: overdue travellers, pending geofence changes, still-outside repeats."""
        now = self.clock.now()
        now_s = to_epoch(now)
        evs: list[Event] = []
        hits = []
        for hit in self.monitor.due(now_s, OVERDUE_PER_ROUND):
            rt = self.travellers.get(hit.traveller_id)
            if rt is None:
                continue
            hits.append(rt)
            evs.append(make_event("tracking.overdue", rt.traveller_id, now, {
                "traveller_id": rt.traveller_id, "last_seen_at": iso(from_epoch(hit.last_seen)),
                "overdue_by_s": round(now_s - hit.due, 1)}))
        try:
            for i in range(0, len(evs), PUBLISH_CHUNK):
                await self.bus.publish_many(evs[i:i + PUBLISH_CHUNK])
        except CityDataError:
            for rt in hits:                       # not published: they stay due for the next round
                self.monitor.reported(rt.traveller_id, (rt.last_report or rt.arrived))
            raise
        for rt in hits:
            rt.overdue_since = now_s
            self._dirty.add(rt.traveller_id)
        published, evs = evs, []
        for tid in list(self._attention):
            rt = self.travellers.get(tid)
            if rt is None:
                self._attention.discard(tid)
                continue
            transitions = self.engine.tick(rt.fences.states, now_s)
            if transitions:
                evs.extend(self._transition_events(rt, transitions, now))
                await self.persist_transitions(rt, transitions, now)
            if not self.engine.needs_tick(rt.fences.states):
                self._attention.discard(tid)
        if evs:
            await self.bus.publish_many(evs)
        return published + evs

    async def _timer(self) -> None:
        while True:
            await self.clock.sleep(self.settings.tracking_overdue_check_s)
            try:
                await self.tick()
            except CityDataError as err:
                log.warning("tracking timer round failed: %s", err.code)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                await self.flush()
            except CityDataError as err:
                log.warning("tracking last-seen flush failed: %s", err.code)

    async def flush(self) -> int:
        """Write the last-seen data of travellers changed since the last flush."""
        dirty, self._dirty = self._dirty, set()
        rows = []
        for tid in dirty:
            rt = self.travellers.get(tid)
            if rt is None:
                continue
            rows.append(last_seen_row(rt))
        if not rows:
            return 0
        t = tracking_travellers
        stmt = update(t).where(t.c.traveller_id == bindparam("b_tid")).values(
            last_t=bindparam("b_last_t", type_=t.c.last_t.type), last_lat=bindparam("b_lat"),
            last_lon=bindparam("b_lon"), last_accuracy_m=bindparam("b_acc"),
            last_report_at=bindparam("b_report", type_=t.c.last_report_at.type),
            overdue_since=bindparam("b_overdue", type_=t.c.overdue_since.type))

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(stmt, rows)

        try:
            await self.store.write(op, rows=len(rows))
        except CityDataError:
            self._dirty |= dirty                      # try again next round
            raise
        return len(rows)

    # -- zones (citydata.tracking.zones) ---------------------------------------------------------------------
    async def add_zone(self, principal: Principal, body: ZoneIn) -> dict[str, Any]:
        return await add_zone(self, principal, body)

    async def delete_zone(self, zone_id: str) -> None:
        await delete_zone(self, zone_id)

    def list_zones(self) -> list[dict[str, Any]]:
        return list_zones(self)

    # -- hotels ----------------------------------------------------------------------------------------------
    async def hotel_stay(self, principal: Principal, traveller_id: str, action: str) -> dict[str, Any]:
        """Confirm a guest's check-in or check-out; only for the caller's own hotel's guests."""
        row = await self.store.fetch_one(select(tracking_travellers.c.hotel_id).where(
            tracking_travellers.c.traveller_id == traveller_id))
        if row is None or (principal.role != Role.ADMIN and row["hotel_id"] != principal.agency):
            raise NotFound("no such guest of this hotel", code="guest_not_found")
        now = self.clock.now()
        column = "checked_in_at" if action == "check-in" else "checked_out_at"
        await self.store.execute(update(tracking_travellers).where(
            tracking_travellers.c.traveller_id == traveller_id).values(**{column: now}))
        await self.audit.record(principal, f"tracking.hotel_{column[:-3]}", subject_type="traveller",
                                subject_id=traveller_id)
        return {"traveller_id": traveller_id, column: iso(now)}
