"""Retention and data-subject requests (PDPA).

* ``rollup``: hourly counts of distinct travellers per sub-district, computed from the pings of complete hours
  (older than the lateness window); only counts of at least k are written, so nothing under k survives.
* ``purge``: exact pings (and fence states, last positions) of travellers departed more than
  ``tracking_retention_days`` ago are deleted in bounded chunks, after the rollup; identities of travellers
  departed more than ``tracking_identity_retention_days`` ago are deleted; the app token is revoked.
* ``export``: everything held about one traveller as JSON (admin; audited, purpose required).
* ``erase``: delete everything held about one traveller (admin; audited). Audit records stay: they name only
  the pseudonymous id and are the proof of who read what.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.auth import Principal
from citydata.errors import CityDataError, NotFound
from citydata.tracking.arrivals import iso
from citydata.tracking.privacy import check_purpose
from citydata.tracking.schema import (
    tracking_fence_state,
    tracking_hourly,
    tracking_identity,
    tracking_pings,
    tracking_travellers,
)

if TYPE_CHECKING:
    from citydata.tracking.service import TrackingService

log = logging.getLogger(__name__)
ROLLUP_KEY = "tracking:rollup_until"
MAX_ROLLUP_HOURS = 24 * 7


def _hour(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class Retention:
    def __init__(self, service: TrackingService) -> None:
        self.svc = service

    async def rollup(self, now: datetime | None = None) -> int:
        """Aggregate every complete hour not yet aggregated; returns the number of rows written."""
        svc = self.svc
        now = now or svc.clock.now()
        end = _hour(now - timedelta(seconds=svc.settings.tracking_lateness_s))
        stored = await svc.store.get_meta(ROLLUP_KEY)
        if stored:
            start = datetime.fromisoformat(stored)
        else:
            first = await svc.store.scalar(select(tracking_pings.c.t).order_by(tracking_pings.c.t).limit(1))
            if first is None:
                return 0
            start = _hour(first)
        written = 0
        k = svc.settings.tracking_k
        while start < end:
            stop = min(end, start + timedelta(hours=MAX_ROLLUP_HOURS))
            p = tracking_pings
            rows = await svc.store.fetch_all(select(p.c.traveller_id, p.c.t, p.c.subdistrict).where(
                p.c.t >= start, p.c.t < stop, p.c.flags.op("&")(1) == 0))
            seen: dict[tuple[datetime, str], set[str]] = defaultdict(set)
            for r in rows:
                seen[(_hour(r["t"]), r["subdistrict"] or "outside")].add(r["traveller_id"])
            out = [{"hour": h, "subdistrict": sub, "travellers": len(ids)}
                   for (h, sub), ids in sorted(seen.items()) if len(ids) >= k]
            if out:
                written += await svc.store.insert_rows(tracking_hourly, out)
            start = stop
            await svc.store.set_meta(ROLLUP_KEY, start.isoformat())
        return written

    async def purge(self, now: datetime | None = None, *, chunk: int = 5000) -> dict[str, int]:
        """Apply the retention periods. Returns counts of what was deleted."""
        svc = self.svc
        now = now or svc.clock.now()
        await self.rollup(now)
        t = tracking_travellers
        cutoff = now - timedelta(days=svc.settings.tracking_retention_days)
        due = await svc.store.fetch_all(select(t.c.traveller_id, t.c.device_token_id).where(
            t.c.status == "departed", t.c.departed_at <= cutoff, t.c.pings_purged_at.is_(None)))
        pings = 0
        for row in due:
            tid = row["traveller_id"]
            pings += await svc.store.delete_in_chunks(tracking_pings, tracking_pings.c.traveller_id == tid, chunk)
            await svc.store.execute(tracking_fence_state.delete().where(tracking_fence_state.c.traveller_id == tid))
            await svc.store.execute(update(t).where(t.c.traveller_id == tid).values(
                pings_purged_at=now, last_t=None, last_lat=None, last_lon=None, last_accuracy_m=None))
            if row["device_token_id"]:
                with contextlib.suppress(CityDataError):
                    await svc.tokens.revoke(row["device_token_id"])
        id_cutoff = now - timedelta(days=svc.settings.tracking_identity_retention_days)
        gone = select(t.c.traveller_id).where(t.c.status == "departed", t.c.departed_at <= id_cutoff)
        identities = await svc.store.delete_in_chunks(
            tracking_identity, tracking_identity.c.traveller_id.in_(gone), chunk)
        if pings or identities:
            log.info("tracking retention: %d pings of %d travellers and %d identities purged", pings, len(due),
                     identities)
        return {"travellers": len(due), "pings": pings, "identities": identities}

    async def export(self, principal: Principal, traveller_id: str, purpose: str | None,
                     client: str | None = None) -> dict[str, Any]:
        """Everything held about one traveller (a data-subject access request)."""
        purpose = check_purpose(purpose)
        svc = self.svc
        row = await svc.store.fetch_one(select(tracking_travellers).where(
            tracking_travellers.c.traveller_id == traveller_id))
        if row is None:
            raise NotFound("unknown traveller", code="traveller_not_found")
        identity: dict[str, Any] | None = None
        held = await svc.store.fetch_one(select(tracking_identity.c.traveller_id).where(
            tracking_identity.c.traveller_id == traveller_id))
        if held is not None:
            identity = await svc.vault.read(principal, traveller_id, purpose, client=client,
                                            action="tracking.subject_export")
        else:
            await svc.audit.record(principal, "tracking.subject_export", subject_type="traveller",
                                   subject_id=traveller_id, purpose=purpose, client=client)
        traveller = {k: (iso(v) if isinstance(v, datetime) else v) for k, v in dict(row).items()
                     if k not in ("enrol_hash",)}
        pings = await svc.store.fetch_all(select(tracking_pings).where(
            tracking_pings.c.traveller_id == traveller_id).order_by(tracking_pings.c.t))
        fences = await svc.store.fetch_all(select(tracking_fence_state).where(
            tracking_fence_state.c.traveller_id == traveller_id))
        reads = await svc.audit.query(subject_type="traveller", subject_id=traveller_id, limit=1000)

        def plain(r: Any) -> dict[str, Any]:
            return {k: (iso(v) if isinstance(v, datetime) else v) for k, v in dict(r).items()}

        return {"traveller_id": traveller_id, "exported_at": iso(svc.clock.now()), "identity": identity,
                "stay": traveller, "pings": [plain(p) for p in pings], "fence_states": [plain(f) for f in fences],
                "access_log": [{k: v for k, v in plain(a).items() if k in ("at", "actor", "role", "action",
                                                                             "purpose")} for a in reads]}

    async def erase(self, principal: Principal, traveller_id: str, reason: str | None,
                    client: str | None = None) -> dict[str, int]:
        """Delete everything held about one traveller (audited first)."""
        reason = check_purpose(reason)
        svc = self.svc
        row = await svc.store.fetch_one(select(tracking_travellers.c.device_token_id).where(
            tracking_travellers.c.traveller_id == traveller_id))
        ident = await svc.store.fetch_one(select(tracking_identity.c.traveller_id).where(
            tracking_identity.c.traveller_id == traveller_id))
        if row is None and ident is None:
            raise NotFound("unknown traveller", code="traveller_not_found")
        await svc.audit.record(principal, "tracking.subject_erase", subject_type="traveller",
                               subject_id=traveller_id, purpose=reason, client=client)
        pings = await svc.store.delete_in_chunks(tracking_pings, tracking_pings.c.traveller_id == traveller_id)

        async def op(conn: AsyncConnection) -> None:
            for table in (tracking_fence_state, tracking_identity, tracking_travellers):
                await conn.execute(table.delete().where(and_(table.c.traveller_id == traveller_id)))

        await svc.store.write(op, rows=3)
        svc.forget(traveller_id)
        if row is not None and row["device_token_id"]:
            with contextlib.suppress(CityDataError):
                await svc.tokens.revoke(row["device_token_id"])
        return {"pings": pings, "identity": 1 if ident is not None else 0, "stay": 1 if row is not None else 0}
