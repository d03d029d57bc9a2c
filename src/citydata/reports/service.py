"""Tourist problem reports: submit (public), follow up by code (public), read (responders, audited), purge.

A report is stored (text and photo encrypted), then ``report.submitted`` is published on the bus; the rule
pack's ``citizen-report`` rule turns it into an alert in the IOC. The follow-up code answers with the state of
that alert (received, acknowledged, closed), never with the report's content."""

from __future__ import annotations

import base64
import logging
import secrets
import time
from collections import deque
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from citydata.events import make_event, register_event_kind
from citydata.ops.periodic import Periodic
from citydata.reports.photo import clean_photo
from citydata.reports.schema import reports
from citydata.tracking.privacy import PiiCipher

if TYPE_CHECKING:
    from citydata.auth import AuditLog, Principal
    from citydata.bus import Bus
    from citydata.clock import Clock
    from citydata.config import Settings
    from citydata.geo import Geography
    from citydata.ops.metrics import Metrics
    from citydata.store import Store

log = logging.getLogger(__name__)
CATEGORIES = ("safety", "crime", "scam", "medical", "lost", "environment", "flooding", "road", "noise", "other")
Category = Literal["safety", "crime", "scam", "medical", "lost", "environment", "flooding", "road", "noise", "other"]
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"     # no 0/O, 1/I: read out over the phone
RULE_ID = "citizen-report"


class ReportIn(BaseModel):
    """A problem report from the tourist app. ``photo`` is the image file, base64-encoded (JPEG, PNG or WebP)."""

    model_config = ConfigDict(extra="forbid")

    category: Category
    text: str = Field(min_length=3, max_length=2000)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, le=100_000)
    lang: Literal["en", "th", "zh"] = "en"
    photo: str | None = Field(None, max_length=16_000_000, description="base64 (a data: URL prefix is allowed)")
    client_ref: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{8,64}$",
                                   description="idempotency key: a report queued offline and sent twice is "
                                               "stored once")


class ReportSubmitted(BaseModel):
    """``report.submitted``: a tourist reported a problem. Key: the follow-up code. No free text (it stays
    encrypted in the store)."""

    code: str
    category: str
    lat: float | None = None
    lon: float | None = None
    zone_id: str | None = None
    has_photo: bool = False
    lang: str = "en"


def new_code() -> str:
    """``R-XXXX-XXXX``: 40 random bits in an unambiguous alphabet."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"R-{chars[:4]}-{chars[4:]}"


def _decode_photo(value: str, limit: int) -> bytes:
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError as err:
        raise ValidationFailed("photo: not valid base64", code="invalid_photo", field="photo") from err
    if len(raw) > limit:
        raise ValidationFailed(f"photo: larger than {limit // (1024 * 1024)} MB", code="photo_too_large",
                               field="photo")
    return raw


class ReportService:
    def __init__(self, *, settings: Settings, store: Store, bus: Bus, clock: Clock, audit: AuditLog,
                 metrics: Metrics, pii_keys: list[tuple[str, bytes]], geography: Geography | None) -> None:
        self.settings, self.store, self.bus, self.clock = settings, store, bus, clock
        self.audit, self.metrics, self.geography = audit, metrics, geography
        self.cipher = PiiCipher(pii_keys)
        self._recent: dict[str, deque[float]] = {}
        self._purger = Periodic("reports-purge", clock, settings.reports_purge_interval_s, self.purge)
        self.submitted = self.rejected = 0
        register_event_kind("report.submitted", ReportSubmitted)

    def start(self) -> None:
        self._purger.start()

    async def stop(self) -> None:
        await self._purger.stop()

    # -- submit -----------------------------------------------------------------------------------------------
    def _throttle(self, client: str) -> None:
        limit = self.settings.reports_per_client_hour
        now = time.monotonic()
        recent = self._recent.setdefault(client, deque())
        while recent and now - recent[0] > 3600:
            recent.popleft()
        if len(recent) >= limit:
            self._reject("reports_rate_limited")
            raise TooManyRequests(f"at most {limit} reports an hour from one address; call 1155 if urgent",
                                  code="reports_rate_limited")
        recent.append(now)
        if len(self._recent) > 10_000:            # forget idle clients
            for key in [k for k, q in self._recent.items() if not q or now - q[-1] > 3600]:
                del self._recent[key]

    def _reject(self, code: str) -> None:
        self.rejected += 1
        self.metrics.rejected.labels("report", code).inc()

    def _aad_text(self, code: str) -> str:
        return f"report/{code}"

    async def submit(self, body: ReportIn, client: str) -> dict[str, Any]:
        if body.client_ref:
            existing = await self.store.fetch_one(select(reports.c.code, reports.c.created_at)
                                                  .where(reports.c.client_ref == body.client_ref))
            if existing is not None:
                return {"code": existing["code"], "created_at": existing["created_at"].isoformat(),
                        "duplicate": True}
        if (body.lat is None) != (body.lon is None):
            self._reject("invalid_location")
            raise ValidationFailed("lat and lon go together", code="invalid_location", field="lat")
        self._throttle(client)
        photo = None
        if body.photo:
            try:
                photo = clean_photo(_decode_photo(body.photo, self.settings.reports_photo_max_bytes))
            except ValidationFailed as err:
                self._reject(err.code)
                raise
        lat, lon, source = body.lat, body.lon, "browser" if body.lat is not None else None
        if lat is None and photo is not None and photo.lat is not None:
            lat, lon, source = photo.lat, photo.lon, "photo"
        zone_id = None
        if lat is not None and lon is not None and self.geography is not None:
            inside = self.geography.containing(lon, lat, kind="subdistrict")
            zone_id = inside[0].id if inside else None
        now = self.clock.now()
        code = new_code()
        row = {"code": code, "client_ref": body.client_ref, "category": body.category, "lang": body.lang,
               "text_ct": self.cipher.encrypt(self._aad_text(code), "text", body.text),
               "photo_ct": self.cipher.encrypt(self._aad_text(code), "photo",
                                               base64.b64encode(photo.jpeg).decode()) if photo else None,
               "photo_bytes": len(photo.jpeg) if photo else 0, "lat": lat, "lon": lon,
               "accuracy_m": body.accuracy_m if source == "browser" else None, "location_source": source,
               "zone_id": zone_id, "created_at": now, "purged_at": None}

        try:
            # the bulk path: the reports of one writer batch go in one executemany, no statement built per row
            await self.store.insert_rows(reports, [row], conflict="error")
        except Conflict:
            if body.client_ref:      # the same queued report raced itself: answer with the stored one
                return await self.submit(body, client)
            raise
        event = make_event("report.submitted", code, now, ReportSubmitted(
            code=code, category=body.category, lat=lat, lon=lon, zone_id=zone_id, has_photo=photo is not None,
            lang=body.lang), source="reports")
        await self.bus.publish(event)
        self.submitted += 1
        log.info("report %s (%s) received%s", code, body.category, " with a photo" if photo else "")
        return {"code": code, "created_at": now.isoformat(), "duplicate": False,
                "location": None if lat is None else {"lat": lat, "lon": lon, "source": source}}

    # -- follow-up (public) -----------------------------------------------------------------------------------
    async def status(self, code: str) -> dict[str, Any]:
        from citydata.incidents.schema import alerts as alerts_table

        row = await self.store.fetch_one(select(reports.c.code, reports.c.category, reports.c.created_at)
                                         .where(reports.c.code == code.upper()))
        if row is None:
            raise NotFound("no report with this code", code="report_not_found")
        alert = await self.store.fetch_one(select(alerts_table.c.state, alerts_table.c.acked_at,
                                                  alerts_table.c.cleared_at)
                                           .where(alerts_table.c.dedup_key == f"{RULE_ID}:{row['code']}")
                                           .order_by(alerts_table.c.id.desc()).limit(1))
        state = "received"
        if alert is not None:
            state = {"open": "in_ioc", "acknowledged": "acknowledged", "cleared": "closed"}.get(
                str(alert["state"]), "in_ioc")
        return {"code": row["code"], "category": row["category"], "created_at": row["created_at"].isoformat(),
                "state": state}

    # -- responders (audited) ---------------------------------------------------------------------------------
    async def list(self, since: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(reports.c.code, reports.c.category, reports.c.lat, reports.c.lon, reports.c.zone_id,
                      reports.c.photo_bytes, reports.c.created_at, reports.c.lang, reports.c.purged_at) \
            .order_by(reports.c.created_at.desc()).limit(limit)
        if since is not None:
            stmt = stmt.where(reports.c.created_at >= since)
        return [{**dict(r), "created_at": r["created_at"].isoformat(),
                 "purged_at": r["purged_at"].isoformat() if r["purged_at"] else None,
                 "has_photo": bool(r["photo_bytes"])} for r in await self.store.fetch_all(stmt)]

    async def _row(self, code: str) -> Any:
        row = await self.store.fetch_one(select(reports).where(reports.c.code == code.upper()))
        if row is None:
            raise NotFound("no report with this code", code="report_not_found")
        return row

    async def detail(self, code: str, principal: Principal) -> dict[str, Any]:
        row = await self._row(code)
        await self.audit.record(principal, "report.read", subject_type="report", subject_id=row["code"])
        text = self.cipher.decrypt(self._aad_text(row["code"]), "text", row["text_ct"]) if row["text_ct"] else None
        return {"code": row["code"], "category": row["category"], "lang": row["lang"], "text": text,
                "lat": row["lat"], "lon": row["lon"], "accuracy_m": row["accuracy_m"],
                "location_source": row["location_source"], "zone_id": row["zone_id"],
                "has_photo": row["photo_ct"] is not None, "photo_bytes": row["photo_bytes"],
                "created_at": row["created_at"].isoformat(),
                "purged_at": row["purged_at"].isoformat() if row["purged_at"] else None}

    async def photo(self, code: str, principal: Principal) -> bytes:
        row = await self._row(code)
        if row["photo_ct"] is None:
            raise NotFound("this report has no photo (or it was purged)", code="photo_not_found")
        await self.audit.record(principal, "report.photo", subject_type="report", subject_id=row["code"])
        return base64.b64decode(self.cipher.decrypt(self._aad_text(row["code"]), "photo", row["photo_ct"]))

    # -- retention --------------------------------------------------------------------------------------------
    async def purge(self, now: datetime | None = None) -> int:
        """Drop the text and photo of reports older than the retention (category, place and time stay)."""
        days = self.settings.reports_retention_days
        if days <= 0:
            return 0
        now = now or self.clock.now()
        cutoff = now - timedelta(days=days)

        async def op(conn: AsyncConnection) -> int:
            done = await conn.execute(update(reports).where(reports.c.created_at < cutoff,
                                                            reports.c.purged_at.is_(None))
                                      .values(text_ct=None, photo_ct=None, purged_at=now))
            return int(done.rowcount or 0)

        purged = int(await self.store.write(op, heavy=True))
        if purged:
            log.info("purged the text and photos of %d reports older than %d days", purged, days)
        return purged
