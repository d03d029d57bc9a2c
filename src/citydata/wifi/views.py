"""Read side: footfall queries over the rollups, the dashboard map (hotspots with the latest hour's footfall)
and the public "nearest free WiFi" list (locations only)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, func, select, type_coerce

from citydata.errors import NotFound, ValidationFailed
from citydata.wifi.schema import (
    wifi_footfall_area_daily,
    wifi_footfall_area_hourly,
    wifi_footfall_daily,
    wifi_footfall_hourly,
)

if TYPE_CHECKING:
    from citydata.wifi.service import WifiService

LEVELS = ("hotspot", "zone", "subdistrict", "city")
MEASURES = ("devices", "randomised_devices", "new_devices", "returning_devices", "sessions", "dwell_s")
MAX_ROWS = 100_000


def _iso(value: datetime | date) -> str:
    return value.isoformat()


async def footfall(wifi: WifiService, *, level: str, area: str | None, granularity: str, start: datetime | None,
                   end: datetime | None, limit: int = 10_000) -> dict[str, Any]:
    """Rollup rows for one level (``area`` narrows to one hotspot / zone / sub-district), ordered by time."""
    if level not in LEVELS:
        raise ValidationFailed(f"level must be one of {', '.join(LEVELS)}", code="invalid_level")
    if granularity not in ("hour", "day"):
        raise ValidationFailed("granularity must be hour or day", code="invalid_granularity")
    if start and end and end <= start:
        raise ValidationFailed("to must be after from", code="invalid_range")
    hourly = granularity == "hour"
    sqlite = wifi.store.dialect == "sqlite"
    if level == "hotspot":
        table = wifi_footfall_hourly if hourly else wifi_footfall_daily
        if area is not None and area not in wifi.registry.by_id:
            raise NotFound(f"no hotspot {area}", code="hotspot_not_found")
        key = table.c.hotspot_id
        cols = [table.c.hotspot_id.label("area"), table.c.zone, table.c.subdistrict_code]
    else:
        table = wifi_footfall_area_hourly if hourly else wifi_footfall_area_daily
        key = table.c.area
        cols = [table.c.area, table.c.hotspots]
    tcol = table.c.hour if hourly else table.c.day
    # SQLite keeps times as text: read it as text (parsing 10,000 datetimes costs more than the query)
    tsel = type_coerce(tcol, String).label("t") if sqlite else tcol.label("t")
    stmt = select(*cols, tsel, *(table.c[m] for m in MEASURES))
    if level != "hotspot":
        stmt = stmt.where(table.c.level == level)
    if area is not None:
        stmt = stmt.where(key == area)
    if start is not None:
        stmt = stmt.where(tcol >= (start if hourly else wifi.pseudo.local_day(start)))
    if end is not None:
        stmt = stmt.where(tcol < (end if hourly else wifi.pseudo.local_day(end)))
    stmt = stmt.order_by(tcol, key).limit(min(limit, MAX_ROWS))
    async with wifi.store.read() as conn:
        result = await conn.execute(stmt)
        names = [granularity if k == "t" else k for k in result.keys()]  # noqa: SIM118 - a Result, not a dict
        rows = result.all()
    ti, wi = names.index(granularity), names.index("dwell_s")
    items = []
    for r in rows:
        values = list(r)
        t = values[ti]
        if not sqlite:
            values[ti] = _iso(t)
        elif hourly:     # "2026-11-21 10:00:00.000000" (UTCDateTime's SQLite form)
            values[ti] = t[:19].replace(" ", "T") + "+00:00"
        else:
            values[ti] = t[:10]
        values[wi] = round(float(values[wi]), 1)
        items.append(dict(zip(names, values, strict=True)))
    return {"level": level, "area": area, "granularity": granularity,
            "timezone": "UTC" if hourly else wifi.settings.timezone, "items": items}


async def latest_hour(wifi: WifiService) -> datetime | None:
    value: datetime | None = await wifi.store.scalar(select(func.max(wifi_footfall_hourly.c.hour)))
    return value


async def map_geojson(wifi: WifiService, *, hour: datetime | None = None) -> dict[str, Any]:
    """Every hotspot as a GeoJSON Feature, with the footfall of ``hour`` (default: the latest hour with data)."""
    hour = hour or await latest_hour(wifi)
    figures: dict[str, dict[str, Any]] = {}
    if hour is not None:
        t = wifi_footfall_hourly
        rows = await wifi.store.fetch_all(select(t.c.hotspot_id, *(t.c[m] for m in MEASURES)).where(t.c.hour == hour))
        figures = {r["hotspot_id"]: dict(r) for r in rows}
    features = []
    for h in sorted(wifi.registry.by_id.values(), key=lambda r: r["id"]):
        f = figures.get(h["id"], {})
        props = {"id": h["id"], "name": h["name"], "zone": h["zone"], "subdistrict_code": h["subdistrict_code"],
                 "operator": h["operator"], "active": h["active"]}
        props.update({m: (round(float(f[m]), 1) if m == "dwell_s" else int(f[m])) if m in f else 0
                      for m in MEASURES})
        features.append({"type": "Feature", "id": h["id"],
                         "geometry": {"type": "Point", "coordinates": [h["lon"], h["lat"]]}, "properties": props})
    return {"type": "FeatureCollection", "hour": hour.isoformat() if hour else None, "features": features}


def public_hotspots(wifi: WifiService, *, lon: float | None, lat: float | None, limit: int) -> dict[str, Any]:
    """Active hotspot locations (no footfall), nearest first when a point is given."""
    rows = [h for h in wifi.registry.by_id.values() if h["active"]]
    dist: dict[str, float] = {}
    if lon is not None and lat is not None:
        kx = 111_195.0 * math.cos(math.radians(lat))
        for h in rows:
            dist[h["id"]] = math.hypot((h["lon"] - lon) * kx, (h["lat"] - lat) * 111_195.0)
        rows.sort(key=lambda h: dist[h["id"]])
    else:
        rows.sort(key=lambda h: h["id"])
    features = []
    for h in rows[:limit]:
        props: dict[str, Any] = {"id": h["id"], "name": h["name"], "zone": h["zone"]}
        if dist:
            props["distance_m"] = round(dist[h["id"]])
        features.append({"type": "Feature", "id": h["id"],
                         "geometry": {"type": "Point", "coordinates": [h["lon"], h["lat"]]}, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def default_range(now: datetime, hours: int = 24) -> tuple[datetime, datetime]:
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end - timedelta(hours=hours), end
