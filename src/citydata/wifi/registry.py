"""The hotspot registry: the shipped Phuket hotspots (``data/phuket_hotspots.csv``) loaded on first start, and
create / update through the API. Kept in memory as well (the ingest path looks hotspots up per record)."""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.errors import Conflict, NotFound, ValidationFailed
from citydata.wifi.model import ParseError, normalise_mac
from citydata.wifi.schema import wifi_hotspots

if TYPE_CHECKING:
    from citydata.clock import Clock
    from citydata.geo import Geography
    from citydata.store import Store

SEED_FILE = "phuket_hotspots.csv"
SEEDED_KEY = "wifi:hotspots_seeded"
OFFSHORE_M = 2000.0     # a pier hotspot just offshore still gets its sub-district
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
ZONE_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"


class HotspotIn(BaseModel):
    id: str = Field(pattern=ID_PATTERN, description="Hotspot id; also the AP's NAS-Identifier / syslog host name")
    name: str = Field(min_length=1, max_length=200)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    zone: str = Field(pattern=ZONE_PATTERN, description="Footfall zone (patong, old_town, rassada_pier, ...)")
    operator: str = Field("municipal", min_length=1, max_length=120)
    ap_mac: str | None = Field(None, description="The AP's BSSID, matched against Called-Station-Id")
    active: bool = True


class HotspotPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    zone: str | None = Field(None, pattern=ZONE_PATTERN)
    operator: str | None = Field(None, min_length=1, max_length=120)
    ap_mac: str | None = None
    active: bool | None = None


def seed_rows() -> list[dict[str, str]]:
    text = resources.files("citydata.wifi").joinpath("data", SEED_FILE).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in ("id", "name", "lon", "lat", "zone", "subdistrict_code", "operator", "ap_mac",
                               "active")}
    for k in ("created_at", "updated_at"):
        out[k] = row[k].isoformat() if row.get(k) else None
    return out


class HotspotRegistry:
    def __init__(self, store: Store, clock: Clock, geography: Geography) -> None:
        self.store, self.clock, self.geography = store, clock, geography
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_ap: dict[str, str] = {}

    def subdistrict_of(self, lon: float, lat: float) -> str | None:
        hit = self.geography.nearest(lon, lat, OFFSHORE_M, kind="subdistrict")
        return None if hit is None else hit[0].code

    async def load(self, *, seed: bool = True) -> bool:
        """Read the registry; on first start (never seeded, empty) load the shipped hotspots. True if seeded."""
        seeded = False
        if seed and not await self.store.get_meta(SEEDED_KEY):
            count = len(await self.store.fetch_all(select(wifi_hotspots.c.id).limit(1)))
            if count == 0:
                now = self.clock.now()
                rows = [{"id": r["id"], "name": r["name"], "lon": float(r["lon"]), "lat": float(r["lat"]),
                         "zone": r["zone"], "subdistrict_code": r["subdistrict_code"] or None,
                         "operator": r["operator"], "ap_mac": None, "active": True, "created_at": now,
                         "updated_at": now} for r in seed_rows()]
                await self.store.insert_rows(wifi_hotspots, rows, wait=True)  # at start: no client to retry
                seeded = True
            await self.store.set_meta(SEEDED_KEY, True)
        self.by_id = {r["id"]: dict(r) for r in await self.store.fetch_all(select(wifi_hotspots))}
        self.by_ap = {r["ap_mac"]: r["id"] for r in self.by_id.values() if r["ap_mac"]}
        return seeded

    def resolve(self, hotspot: str | None, ap_mac: str | None) -> dict[str, Any] | None:
        """The hotspot a record names (NAS-Identifier / host = id, else the AP MAC), or None."""
        if hotspot:
            row = self.by_id.get(hotspot)
            if row is not None:
                return row
        if ap_mac:
            hid = self.by_ap.get(ap_mac)
            if hid is not None:
                return self.by_id.get(hid)
        return None

    def _ap(self, value: str | None, own: str) -> str | None:
        if not value:
            return None
        try:
            mac = normalise_mac(value)
        except ParseError as err:
            raise ValidationFailed("ap_mac is not a MAC address", code="invalid_ap_mac") from err
        other = self.by_ap.get(mac)
        if other is not None and other != own:
            raise Conflict(f"ap_mac already belongs to hotspot {other}", code="ap_mac_taken")
        return mac

    async def upsert(self, body: HotspotIn) -> tuple[dict[str, Any], bool]:
        """Create or replace a hotspot; returns (hotspot, created)."""
        now = self.clock.now()
        existing = self.by_id.get(body.id)
        row = {**body.model_dump(), "ap_mac": self._ap(body.ap_mac, body.id),
               "subdistrict_code": self.subdistrict_of(body.lon, body.lat), "updated_at": now,
               "created_at": existing["created_at"] if existing else now}

        async def op(conn: AsyncConnection) -> None:
            if existing is None:
                await conn.execute(wifi_hotspots.insert().values(**row))
            else:
                await conn.execute(update(wifi_hotspots).where(wifi_hotspots.c.id == body.id).values(**row))

        await self.store.write(op)
        self._remember(row, existing)
        return public(row), existing is None

    async def patch(self, hotspot_id: str, body: HotspotPatch) -> dict[str, Any]:
        existing = self.get_row(hotspot_id)
        changes = body.model_dump(exclude_unset=True)
        if "ap_mac" in changes:
            changes["ap_mac"] = self._ap(changes["ap_mac"], hotspot_id)
        for k in ("name", "lon", "lat", "zone", "operator", "active"):
            if k in changes and changes[k] is None:
                raise ValidationFailed(f"{k} cannot be null")
        row = {**existing, **changes, "updated_at": self.clock.now()}
        row["subdistrict_code"] = self.subdistrict_of(row["lon"], row["lat"])
        values = {k: v for k, v in row.items() if k not in ("id", "created_at")}
        await self.store.execute(update(wifi_hotspots).where(wifi_hotspots.c.id == hotspot_id).values(**values))
        self._remember(row, existing)
        return public(row)

    def _remember(self, row: dict[str, Any], previous: dict[str, Any] | None) -> None:
        if previous is not None and previous.get("ap_mac"):
            self.by_ap.pop(previous["ap_mac"], None)
        self.by_id[row["id"]] = row
        if row.get("ap_mac"):
            self.by_ap[row["ap_mac"]] = row["id"]

    def get_row(self, hotspot_id: str) -> dict[str, Any]:
        row = self.by_id.get(hotspot_id)
        if row is None:
            raise NotFound(f"no hotspot {hotspot_id}", code="hotspot_not_found")
        return row

    def list(self, *, zone: str | None = None, subdistrict: str | None = None, active: bool | None = None,
             limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        rows = [r for r in sorted(self.by_id.values(), key=lambda r: r["id"])
                if (zone is None or r["zone"] == zone) and (subdistrict is None or r["subdistrict_code"] == subdistrict)
                and (active is None or r["active"] == active)]
        return [public(r) for r in rows[offset: offset + limit]]

    def zones(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.by_id.values():
            out[r["zone"]] = out.get(r["zone"], 0) + 1
        return dict(sorted(out.items()))
