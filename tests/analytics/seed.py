"""Seed a platform's store with the sources of the analytics: WiFi area rollups, tracking aggregates, sensor
streams (rain and water level) with hourly rollups, incidents and CCTV-hit alerts, and the sample datasets.
``Seed`` keeps what was written so tests can compute the expected answers by brute force."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from citydata.datasets.samples import SAMPLES
from citydata.incidents.schema import alerts, incidents
from citydata.sensorthings.rollups_schema import observation_rollups
from citydata.tracking.schema import tracking_hourly
from citydata.wifi.schema import wifi_footfall_area_daily, wifi_footfall_area_hourly
from tests.conftest import bearer, token_for

START = datetime(2026, 11, 1, tzinfo=UTC)          # 07:00 in Phuket
END = START + timedelta(days=2)
PATONG, TALAT_YAI, KARON = "830202", "830101", "830108"
POINT_PATONG = (98.2965, 7.8961)
BANGYAI = (98.3905, 7.8890)                        # Khlong Bang Yai, Talat Yai


@dataclass
class Seed:
    wifi: list[dict[str, Any]] = field(default_factory=list)
    wifi_daily: list[dict[str, Any]] = field(default_factory=list)
    tracking: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rain: dict[datetime, float] = field(default_factory=dict)
    level: dict[datetime, tuple[float, float]] = field(default_factory=dict)


def _alert(i: int, kind: str, at: datetime, lon: float, lat: float) -> dict[str, Any]:
    return {"dedup_key": f"k{i}", "kind": kind, "severity": "moderate", "category": "Security",
            "urgency": "immediate", "certainty": "observed", "subject": "camera", "message": "hit",
            "location": {"type": "Point", "coordinates": [lon, lat]}, "zone_id": None, "evidence": [],
            "state": "open", "opened_at": at, "last_seen_at": at, "updated_at": at}


async def _insert(store: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    async def op(conn: Any) -> None:
        await conn.execute(table.insert(), rows)

    await store.write(op)


async def seed(platform: Any, client: Any, *, small: bool = False) -> Seed:
    """``small``: also write counts under k (to check their suppression in open data)."""
    s = Seed()
    rng = random.Random(7)
    store = platform.store
    for sample in SAMPLES:
        await platform.analytics.datasets.import_file(sample.path, sample.name, sample.options())
    for h in range(48):
        hour = START + timedelta(hours=h)
        for code, base in ((PATONG, 400), (TALAT_YAI, 150), (KARON, 3 if small else 90)):
            devices = base + rng.randint(0, 50) if not (small and code == KARON) else rng.randint(1, 9)
            s.wifi.append({"level": "subdistrict", "area": code, "hour": hour, "hotspots": 5, "devices": devices,
                           "randomised_devices": 1, "new_devices": 1, "returning_devices": 0, "sessions": devices,
                           "dwell_s": 600.0})
        s.tracking.append({"hour": hour, "subdistrict": PATONG, "travellers": 20 + h % 5})
    s.wifi.append({"level": "subdistrict", "area": PATONG, "hour": END, "hotspots": 5, "devices": 999_999,
                   "randomised_devices": 0, "new_devices": 0, "returning_devices": 0, "sessions": 1,
                   "dwell_s": 1.0})                                       # outside the window
    for day, devices in ((date(2026, 11, 1), 5000), (date(2026, 11, 2), 7000)):
        s.wifi_daily.append({"level": "subdistrict", "area": PATONG, "day": day, "hotspots": 5, "devices": devices,
                             "randomised_devices": 0, "new_devices": 0, "returning_devices": 0,
                             "sessions": devices, "dwell_s": 1.0})
    await store.insert_rows(wifi_footfall_area_hourly, s.wifi)
    await store.insert_rows(wifi_footfall_area_daily, s.wifi_daily)
    await store.insert_rows(tracking_hourly, s.tracking)

    for i in range(30):   # incidents: 20 in Talat Yai (by zone), 10 in Patong (by location), at varied hours
        at = START + timedelta(hours=i % 12, minutes=5)
        zone = f"subdistrict:{TALAT_YAI}" if i < 20 else None
        loc = None if i < 20 else {"type": "Point", "coordinates": list(POINT_PATONG)}
        s.incidents.append({"title": f"incident {i}", "priority": "P3", "state": "open", "origin": "phone",
                            "location": loc, "zone_id": zone, "created_at": at, "created_by": "op",
                            "updated_at": at, "state_times": {}, "breaches": []})
    await _insert(store, incidents, s.incidents)
    s.alerts = [_alert(i, "vision.face_match" if i < 12 else "env.heavy_rain", START + timedelta(hours=1),
                       *POINT_PATONG) for i in range(15)]
    await _insert(store, alerts, s.alerts)

    # a rain gauge and a canal level sensor in Talat Yai, through the SensorThings API
    token = await token_for(platform, "admin")
    for name, prop, unit in (("Rain gauge Talat Yai", "precipitation", "mm"),
                             ("Level Khlong Bang Yai", "water_level", "m")):
        r = await client.post("/v1.1/Things", headers=bearer(token), json={
            "name": name, "description": name,
            "Locations": [{"name": name, "description": name, "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": list(BANGYAI)}}],
            "Datastreams": [{"name": name, "description": name,
                             "unitOfMeasurement": {"name": unit, "symbol": unit, "definition": unit},
                             "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
                                                "OM_Measurement",
                             "ObservedProperty": {"name": prop, "definition": prop, "description": prop},
                             "Sensor": {"name": name, "description": name, "encodingType": "text/plain",
                                        "metadata": name}}]})
        assert r.status_code == 201, r.text
    streams = (await client.get("/v1.1/Datastreams?$select=id,name", headers=bearer(token))).json()["value"]
    ids = {d["name"]: d["@iot.id"] for d in streams}
    rows = []
    for h in range(48):
        hour = START + timedelta(hours=h)
        rain = 45.0 if h in (5, 20) else (10.0 if h % 7 == 0 else 0.0)
        low = 1.0 + (0.5 if h in (6, 30) else 0.0)
        high = low + (0.4 if h in (6, 30) else 0.05)
        s.rain[hour], s.level[hour] = rain, (low, high)
        for sid, values in ((ids["Rain gauge Talat Yai"], (rain, 0.0, rain)),
                            (ids["Level Khlong Bang Yai"], (low + high, low, high))):
            rows.append({"datastream_id": sid, "period": "hour", "bucket_start": hour, "count": 6,
                         "sum": values[0], "min": values[1], "max": values[2], "first_time": hour,
                         "last_time": hour + timedelta(minutes=50), "last_result": values[2],
                         "updated_at": hour})
    await store.insert_rows(observation_rollups, rows)
    return s
