"""Reading the sources of the analytics: tables that may not exist yet (a capability not deployed), the
contracts of other capabilities' tables (lightweight ``table()`` clauses, so analytics imports none of their
modules), and the sub-district of an alert or incident."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Float, Integer, String, column, inspect, table

from citydata.geo import Geography
from citydata.store import Store
from citydata.store.types import UTCDateTime

# wifi capability (contract: wifi_footfall_area_hourly/daily; level 'subdistrict' has area = tam_code)
wifi_area_hourly = table("wifi_footfall_area_hourly", column("level", String), column("area", String),
                         column("hour", UTCDateTime), column("devices", Integer), column("dwell_s", Float))
wifi_area_daily = table("wifi_footfall_area_daily", column("level", String), column("area", String),
                        column("day", Date), column("devices", Integer))
# tracking capability: distinct travellers per sub-district and hour (only counts >= k are kept)
tracking_hourly = table("tracking_hourly", column("hour", UTCDateTime), column("subdistrict", String),
                        column("travellers", Integer))


async def has_tables(store: Store, *names: str) -> bool:
    async with store.read() as conn:
        def check(sync_conn: Any) -> bool:
            insp = inspect(sync_conn)
            return all(insp.has_table(n, schema=store.schema_name) for n in names)

        return bool(await conn.run_sync(check))


def subdistrict_of(geography: Geography, zone_id: str | None, location: Any) -> str | None:
    """The tam_code of an alert or incident: its zone when that is a sub-district, else its point's."""
    if zone_id and zone_id.startswith("subdistrict:"):
        return zone_id.split(":", 1)[1]
    geom = location.get("geometry", location) if isinstance(location, dict) else None
    if isinstance(geom, dict) and geom.get("type") == "Point":
        coords = geom.get("coordinates") or []
        if len(coords) >= 2:
            found = geography.containing(float(coords[0]), float(coords[1]), kind="subdistrict")
            if found:
                return found[0].code
    return None


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
