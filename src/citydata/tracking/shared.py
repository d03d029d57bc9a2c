"""Tracking on a node of a multi-node deployment (``TrackingService.start(shared=True)``).

Every node serves ``/api/v1/tracking/*``: arrivals, departures, enrolment, zones, hotels and every read work
on the shared store as on one node; the 191 views (positions, attention, density) read the last-seen rows and
fence states the partition owners commit (``citydata.tracking.partition``), so they lag the newest ping by at
most one commit (a fetched batch, or one timer round for overdue). A pending (not yet confirmed) exit is not
in the store, so the shared attention list shows an exit once it is confirmed.

Pings: the node checks them, commits them to ``tracking_pings`` (flags 0) and only then publishes one
``tracking.pings`` event, keyed by the traveller, for the partition owner's geofence; the 202 comes after both.
A crash between the two loses nothing the client was told was taken: without the 202 the app sends the batch
again, the rows are found already stored (counted as duplicates) and the event is published again (the
geofence ignores fixes it has seen). Impossible-speed and too-late fixes are found by the owner, which flags
their rows; the answer lists only the checks this node can make (format, time, before arrival).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select

from citydata.auth import Principal
from citydata.errors import Conflict, NotFound, ValidationFailed
from citydata.events import make_event
from citydata.tracking.arrivals import iso
from citydata.tracking.geofence import INSIDE, OUTSIDE, Fix
from citydata.tracking.partition import PINGS, ZONES_CHANGED
from citydata.tracking.pings import PingsAccepted, Rejection, parse_batch
from citydata.tracking.schema import tracking_fence_state, tracking_pings, tracking_travellers
from citydata.tracking.views import TrackingViews

if TYPE_CHECKING:
    from citydata.bus import Delivery, Subscription
    from citydata.tracking.service import TrackingService

log = logging.getLogger(__name__)


async def active_traveller(svc: TrackingService, principal: Principal) -> tuple[str, float]:
    """The traveller a device token reports for and its arrival time: 404 when none, 409 when departed."""
    t = tracking_travellers
    row = await svc.store.fetch_one(select(t.c.traveller_id, t.c.status, t.c.arrived_at).where(
        t.c.device_token_id == (principal.token_id or "")))
    if row is None:
        raise NotFound("no traveller is enrolled with this device token", code="traveller_not_found")
    if row["status"] != "active":
        raise Conflict("the traveller has departed; reports are no longer accepted", code="traveller_departed")
    arrived: float = row["arrived_at"].timestamp()
    # kept for the ``report_shared`` of the same request, so the ping path reads the store once
    if len(svc.checked_arrivals) > 10_000:     # (requests that never reached report_shared)
        svc.checked_arrivals.clear()
    svc.checked_arrivals[row["traveller_id"]] = arrived
    return row["traveller_id"], arrived


async def report_shared(svc: TrackingService, traveller_id: str, body: Any) -> PingsAccepted:
    s = svc.settings
    arrived = svc.checked_arrivals.pop(traveller_id, None)
    if arrived is None:
        t = tracking_travellers
        row = await svc.store.fetch_one(select(t.c.status, t.c.arrived_at).where(t.c.traveller_id == traveller_id))
        if row is None:
            raise NotFound("unknown traveller", code="traveller_not_found")
        if row["status"] != "active":
            raise Conflict("the traveller has departed", code="traveller_departed")
        arrived = row["arrived_at"].timestamp()
    now = svc.clock.now()
    items, rejected = parse_batch(body, now, skew_s=s.tracking_max_skew_s, max_batch=s.tracking_max_batch)
    earliest = arrived - s.tracking_max_skew_s
    kept = []
    for item in items:
        if item.t.timestamp() < earliest:
            rejected.append(Rejection(index=item.index, code="before_arrival",
                                      detail="t is before the traveller's arrival"))
        else:
            kept.append(item)
    rejected.sort(key=lambda r: r.index)
    if not kept:
        if rejected:
            first = rejected[0]
            raise ValidationFailed(first.detail, code=first.code,
                                   rejected=[r.model_dump() for r in rejected], accepted=0)
        return PingsAccepted(accepted=0, rejected=rejected, duplicates=0)
    subs = svc.subdistricts_of([i.lon for i in kept], [i.lat for i in kept])
    rows = [{"traveller_id": traveller_id, "t": i.t, "lat": i.lat, "lon": i.lon, "accuracy_m": i.accuracy_m,
             "battery": i.battery, "source": i.source, "subdistrict": sub, "flags": 0, "received_at": now}
            for i, sub in zip(kept, subs, strict=True)]
    new = await svc.store.insert_rows(tracking_pings, rows)          # committed: now the owner may see them
    fixes = [[i.t.timestamp(), i.lon, i.lat, i.accuracy_m or 0.0] for i in kept]
    await svc.bus.publish(make_event(PINGS, traveller_id, now, {
        "traveller_id": traveller_id, "received_at": iso(now), "fixes": fixes}))
    return PingsAccepted(accepted=len(kept), rejected=rejected, duplicates=len(kept) - new)


# -- zones ---------------------------------------------------------------------------------------------------------
async def zones_changed(svc: TrackingService, zone_id: str) -> None:
    """Tell every node (live, not journaled: the zones are in the store) to reload the zones."""
    await svc.bus.broadcast([make_event(ZONES_CHANGED, "zones", svc.clock.now(), {"zone": zone_id})])


async def watch_zones(svc: TrackingService) -> Subscription:
    async def reload(_: Delivery) -> None:
        await svc.load_zones()
        log.info("tracking zones reloaded: %d", len(svc.zones))

    return await svc.bus.subscribe(ZONES_CHANGED, reload)


# -- the 191 views from the store ------------------------------------------------------------------------------
class SharedViews(TrackingViews):
    """Positions, attention and density from the rows the partition owners commit."""

    def _query(self, where: Any = None) -> Any:
        t, f = tracking_travellers, tracking_fence_state
        home = and_(f.c.traveller_id == t.c.traveller_id, f.c.fence_id == self.svc.home.id)
        stmt = select(t.c.traveller_id, t.c.last_t, t.c.last_lat, t.c.last_lon, t.c.last_accuracy_m,
                      t.c.overdue_since, f.c.state).select_from(t.outerjoin(f, home)).where(t.c.status == "active")
        return stmt if where is None else stmt.where(where)

    @staticmethod
    def _item(r: Any, now: float) -> dict[str, Any]:
        last = r["last_t"].timestamp() if r["last_t"] is not None else None
        return {"traveller_id": r["traveller_id"], "last_seen_at": iso(r["last_t"]) if last else None,
                "fix_age_s": round(now - last, 1) if last is not None else None,
                "lat": round(r["last_lat"], 6) if last is not None else None,
                "lon": round(r["last_lon"], 6) if last is not None else None,
                "accuracy_m": r["last_accuracy_m"] if last is not None else None,
                "province_state": r["state"] or INSIDE, "overdue": r["overdue_since"] is not None}

    async def read_positions(self, *, limit: int = 1000, offset: int = 0) -> dict[str, Any]:
        t = tracking_travellers
        now = self.svc.clock.now().timestamp()
        total = await self.svc.store.scalar(select(func.count()).select_from(t).where(t.c.status == "active"))
        rows = await self.svc.store.fetch_all(self._query().order_by(
            t.c.last_t.asc().nulls_first(), t.c.traveller_id).limit(limit).offset(offset))
        return {"total": int(total or 0), "items": [self._item(r, now) for r in rows]}

    async def read_attention(self) -> dict[str, Any]:
        t, f = tracking_travellers, tracking_fence_state
        now = self.svc.clock.now().timestamp()
        rows = await self.svc.store.fetch_all(self._query(
            (f.c.state == OUTSIDE) | t.c.overdue_since.is_not(None)).order_by(t.c.traveller_id))
        items = []
        for r in rows:
            item = self._item(r, now)
            outside = r["state"] == OUTSIDE
            item["reasons"] = [n for n, on in (("outside", outside), ("overdue", r["overdue_since"] is not None))
                               if on]
            if outside and r["last_t"] is not None:
                item["now_in"] = self.svc.now_in(r["last_lon"], r["last_lat"])
            items.append(item)
        return {"items": items}

    async def read_density(self, principal: Principal, *, by: str = "subdistrict", res: int = 8) -> dict[str, Any]:
        t = tracking_travellers
        rows = await self.svc.store.fetch_all(select(t.c.last_t, t.c.last_lat, t.c.last_lon, t.c.last_accuracy_m)
                                              .where(t.c.status == "active", t.c.last_t.is_not(None)))
        fixes = [Fix(r["last_t"].timestamp(), r["last_lon"], r["last_lat"], r["last_accuracy_m"] or 0.0)
                 for r in rows]
        return self.count_density(principal, fixes, by=by, res=res)

