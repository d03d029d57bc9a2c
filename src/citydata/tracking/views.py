"""The 191 view: last seen, who needs attention, one traveller's track, density; hotels' and health's views.

Who sees what (the privacy model, docs/privacy.md):

* positions, attention list: ``tracking.read_positions`` (admin, operator, police roles); pseudonymous only;
* one traveller's track: admin, or a police role for a traveller within an incident assigned to its agency
  (``IncidentAccess``); always with a purpose, always audited;
* density per sub-district / H3 cell: counts under k suppressed for every role below police;
* hotels: their own guests only (name only, audited); health and immigration: screening results.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from citydata.auth import Principal, Role
from citydata.auth.roles import POLICE_ROLES
from citydata.errors import Forbidden, NotFound, ValidationFailed
from citydata.geo.h3cells import h3_cell
from citydata.tracking.arrivals import iso
from citydata.tracking.geofence import OUTSIDE, UNKNOWN, Fix
from citydata.tracking.privacy import check_purpose
from citydata.tracking.schema import tracking_hourly, tracking_pings, tracking_travellers

if TYPE_CHECKING:
    from citydata.tracking.service import TrackingService
    from citydata.tracking.state import Runtime

FULL_COUNT_ROLES = frozenset({Role.ADMIN}) | POLICE_ROLES


def _iso_ts(value: float) -> str:
    from datetime import UTC

    return iso(datetime.fromtimestamp(value, UTC))


class TrackingViews:
    def __init__(self, service: TrackingService) -> None:
        self.svc = service

    def _position(self, rt: Runtime, now: float) -> dict[str, Any]:
        home = rt.fences.states.get(self.svc.home.id)
        fix = rt.last_fix
        return {
            "traveller_id": rt.traveller_id,
            "last_seen_at": _iso_ts(fix.t) if fix else None,
            "fix_age_s": round(now - fix.t, 1) if fix else None,
            "lat": round(fix.lat, 6) if fix else None, "lon": round(fix.lon, 6) if fix else None,
            "accuracy_m": fix.acc if fix else None,
            "province_state": home.state if home else UNKNOWN,
            "overdue": rt.overdue_since is not None,
        }

    def positions(self, *, limit: int = 1000, offset: int = 0) -> dict[str, Any]:
        """Every active traveller's last fix and its age (no identity), oldest fix first."""
        now = self.svc.clock.now().timestamp()
        rts = sorted(self.svc.travellers.values(),
                     key=lambda r: (r.last_fix.t if r.last_fix else -1.0, r.traveller_id))
        page = rts[offset:offset + limit]
        return {"total": len(rts), "items": [self._position(rt, now) for rt in page]}

    def attention(self) -> dict[str, Any]:
        """Active travellers outside the province (or leaving it) or overdue."""
        now = self.svc.clock.now().timestamp()
        items = []
        for rt in self.svc.travellers.values():
            home = rt.fences.states.get(self.svc.home.id)
            outside = home is not None and (home.state == OUTSIDE or home.pending == OUTSIDE)
            if outside or rt.overdue_since is not None:
                item = self._position(rt, now)
                item["reasons"] = [r for r, on in (("outside", outside), ("overdue", rt.overdue_since is not None))
                                   if on]
                if rt.last_fix is not None and outside:
                    item["now_in"] = self.svc.now_in(rt.last_fix.lon, rt.last_fix.lat)
                items.append(item)
        items.sort(key=lambda i: i["traveller_id"])
        return {"items": items}

    async def track(self, principal: Principal, traveller_id: str, purpose: str | None, *,
                    since: datetime | None = None, until: datetime | None = None, limit: int = 5000,
                    client: str | None = None) -> dict[str, Any]:
        """One traveller's exact fixes: admin, or police roles within an assigned incident. Audited."""
        purpose = check_purpose(purpose)
        allowed = principal.role == Role.ADMIN or (
            principal.can("tracking.read_identity_incident")
            and await self.svc.vault.incident_access.traveller_visible_to(principal, traveller_id))
        if not allowed:
            await self.svc.audit.record(principal, "tracking.track_denied", subject_type="traveller",
                                        subject_id=traveller_id, purpose=purpose, client=client)
            raise Forbidden("a traveller's track is shown only within an incident assigned to the caller",
                            code="track_forbidden")
        exists = await self.svc.store.fetch_one(select(tracking_travellers.c.traveller_id).where(
            tracking_travellers.c.traveller_id == traveller_id))
        if exists is None:
            raise NotFound("unknown traveller", code="traveller_not_found")
        await self.svc.audit.record(principal, "tracking.track_read", subject_type="traveller",
                                    subject_id=traveller_id, purpose=purpose, client=client)
        p = tracking_pings
        stmt = select(p.c.t, p.c.lat, p.c.lon, p.c.accuracy_m, p.c.battery, p.c.source, p.c.flags).where(
            p.c.traveller_id == traveller_id)
        if since is not None:
            stmt = stmt.where(p.c.t >= since)
        if until is not None:
            stmt = stmt.where(p.c.t < until)
        rows = await self.svc.store.fetch_all(stmt.order_by(p.c.t).limit(limit))
        return {"traveller_id": traveller_id, "fixes": [
            {"t": iso(r["t"]), "lat": r["lat"], "lon": r["lon"], "accuracy_m": r["accuracy_m"],
             "battery": r["battery"], "source": r["source"], "flags": r["flags"]} for r in rows]}

    # the routes await these: in multi-node mode (``citydata.tracking.shared.SharedViews``) they read the store
    async def read_positions(self, *, limit: int = 1000, offset: int = 0) -> dict[str, Any]:
        return self.positions(limit=limit, offset=offset)

    async def read_attention(self) -> dict[str, Any]:
        return self.attention()

    async def read_density(self, principal: Principal, *, by: str = "subdistrict", res: int = 8) -> dict[str, Any]:
        return self.density(principal, by=by, res=res)

    def density(self, principal: Principal, *, by: str = "subdistrict", res: int = 8) -> dict[str, Any]:
        """Active travellers per sub-district or H3 cell (last fix). Counts under k are suppressed for every
        role below police."""
        fixes = [rt.last_fix for rt in self.svc.travellers.values() if rt.last_fix is not None]
        return self.count_density(principal, fixes, by=by, res=res)

    def count_density(self, principal: Principal, fixes: list[Fix], *, by: str, res: int) -> dict[str, Any]:
        k = self.svc.settings.tracking_k
        counts: Counter[str] = Counter()
        if by == "subdistrict":
            subs = self.svc.subdistricts_of([f.lon for f in fixes], [f.lat for f in fixes])
            counts.update(s or "outside" for s in subs)
        elif by == "h3":
            if not 5 <= res <= 10:
                raise ValidationFailed("res must be 5 to 10", code="h3_resolution")
            counts.update(h3_cell(f.lat, f.lon, res) for f in fixes)
        else:
            raise ValidationFailed("by must be subdistrict or h3", code="invalid_grouping")
        suppress = principal.role not in FULL_COUNT_ROLES
        shown = {key: n for key, n in counts.items() if not suppress or n >= k}
        return {"by": by, "res": res if by == "h3" else None, "k": k, "suppressed": suppress,
                "suppressed_cells": len(counts) - len(shown),
                "items": [{"id": key, "count": n} for key, n in sorted(shown.items())]}

    async def aggregates(self, *, since: datetime | None = None, limit: int = 10_000) -> dict[str, Any]:
        """The hourly distinct-traveller counts per sub-district kept after purges (all >= k)."""
        stmt = select(tracking_hourly)
        if since is not None:
            stmt = stmt.where(tracking_hourly.c.hour >= since)
        rows = await self.svc.store.fetch_all(stmt.order_by(tracking_hourly.c.hour, tracking_hourly.c.subdistrict)
                                              .limit(limit))
        return {"k": self.svc.settings.tracking_k, "items": [
            {"hour": iso(r["hour"]), "subdistrict": r["subdistrict"], "travellers": r["travellers"]} for r in rows]}

    async def hotel_guests(self, principal: Principal, *, hotel_id: str | None, purpose: str | None,
                           with_names: bool, client: str | None = None) -> dict[str, Any]:
        """The guests booked with the caller's hotel (``Principal.agency``); admin may name any hotel."""
        hotel = hotel_id if principal.role == Role.ADMIN and hotel_id else principal.agency
        if not hotel:
            raise ValidationFailed("this token is not bound to a hotel (its agency); admin: give hotel_id",
                                   code="hotel_required")
        t = tracking_travellers
        rows = await self.svc.store.fetch_all(select(
            t.c.traveller_id, t.c.status, t.c.checkpoint, t.c.arrived_at, t.c.departed_at, t.c.checked_in_at,
            t.c.checked_out_at).where(t.c.hotel_id == hotel).order_by(t.c.arrived_at, t.c.traveller_id))
        items = []
        for r in rows:
            item = {k: (iso(v) if isinstance(v, datetime) else v) for k, v in dict(r).items()}
            if with_names:
                ident = await self.svc.vault.read(principal, r["traveller_id"], purpose, fields=["name"],
                                                  client=client, action="tracking.hotel_guest_name")
                item["name"] = ident.get("name")
            items.append(item)
        return {"hotel_id": hotel, "items": items}

    async def screening(self, *, failed_only: bool = False, limit: int = 1000) -> dict[str, Any]:
        """Screening results by pseudonymous traveller (health, immigration)."""
        t = tracking_travellers
        stmt = select(t.c.traveller_id, t.c.checkpoint, t.c.arrived_at, t.c.screening, t.c.screening_failed,
                      t.c.status)
        if failed_only:
            stmt = stmt.where(t.c.screening_failed.is_(True))
        rows = await self.svc.store.fetch_all(stmt.order_by(t.c.arrived_at.desc()).limit(limit))
        return {"items": [{"traveller_id": r["traveller_id"], "checkpoint": r["checkpoint"],
                           "arrived_at": iso(r["arrived_at"]), "status": r["status"],
                           "screening": r["screening"], "failed": bool(r["screening_failed"])} for r in rows]}
