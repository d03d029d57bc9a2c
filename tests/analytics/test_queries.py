"""The planning analytics against brute-force answers over the seeded sources, on SQLite and PostgreSQL; the
API (JSON, plots, parameter errors) and the CLI plots."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from citydata.errors import NotFound, ValidationFailed
from tests.analytics.seed import END, KARON, PATONG, START, TALAT_YAI, seed
from tests.conftest import bearer, token_for

WINDOW = {"start": START.isoformat(), "end": END.isoformat()}


async def test_every_query_against_brute_force(aplatform: Any, aclient: Any) -> None:
    s = await seed(aplatform, aclient)
    svc = aplatform.analytics

    tourism = await svc.run("tourism_density", WINDOW)
    expected: dict[tuple[str, int], float] = defaultdict(float)
    for w in s.wifi:
        if START <= w["hour"] < END:
            expected[(w["area"], (w["hour"].hour + 7) % 24)] += w["devices"] / 2     # 2 days
    got = {(r["subdistrict"], r["hour"]): r["wifi_devices"] for r in tourism.rows}
    assert got == {k: round(v, 1) for k, v in expected.items()}
    patong_9 = next(r for r in tourism.rows if r["subdistrict"] == PATONG and r["hour"] == 9)
    assert patong_9["name_th"] == "ป่าตอง"
    assert patong_9["travellers"] == round(sum(t["travellers"] for t in s.tracking
                                               if (t["hour"].hour + 7) % 24 == 9) / 2, 1)
    # a zone with daylight saving takes the row-by-row path: the same answer in its own local hours
    from zoneinfo import ZoneInfo

    from citydata.analytics import AnalyticsService

    london = AnalyticsService(aplatform.store, aplatform.geography,
                              aplatform.settings.model_copy(update={"timezone": "Europe/London"}), aplatform.clock)
    by_row = await london.run("tourism_density", WINDOW)
    expected_london: dict[tuple[str, int], float] = defaultdict(float)
    for w in s.wifi:
        if START <= w["hour"] < END:
            expected_london[(w["area"], w["hour"].astimezone(ZoneInfo("Europe/London")).hour)] += w["devices"] / 2
    assert {(r["subdistrict"], r["hour"]): r["wifi_devices"] for r in by_row.rows} == {
        k: round(v, 1) for k, v in expected_london.items()}
    assert by_row.series == tourism.series
    # November arrivals (2026 is not in the sample: the latest November, 2024, pro rata for 2 days)
    november = sum(r["data"]["arrivals"] for r in await svc.datasets.rows("tourist_arrivals")
                   if r["data"]["month"] == "2024-11-01")
    assert tourism.meta["arrivals"] == round(november * 2 / 30)
    assert tourism.meta["arrivals_basis"] == ["2024-11"]

    flood = await svc.run("flood_risk", WINDOW)
    [row] = flood.rows
    assert row["subdistrict"] == TALAT_YAI
    assert row["rain_total_mm"] == round(sum(s.rain.values()), 1)
    assert row["hours_rain_exceeded"] == sum(1 for v in s.rain.values() if v >= 30)
    assert row["hours_level_exceeded"] == sum(1 for lo, hi in s.level.values() if hi - lo >= 0.3)
    # rain at hours 5 and 20, level rises at 6 and 30: only hour 6 follows a rain exceedance within 2 h
    assert row["hours_at_risk"] == 1
    assert len(flood.series[TALAT_YAI]) == 48
    stricter = await svc.run("flood_risk", {**WINDOW, "rain_mm_h": "50"})
    assert stricter.rows[0]["hours_rain_exceeded"] == 0 and stricter.rows[0]["hours_at_risk"] == 0

    safety = await svc.run("safety_hotspots", WINDOW)
    inc: dict[tuple[str, int], int] = defaultdict(int)
    for i, x in enumerate(s.incidents):
        inc[(TALAT_YAI if i < 20 else PATONG, (x["created_at"].hour + 7) % 24)] += 1
    assert {(r["subdistrict"], r["hour"]): r["incidents"] for r in safety.rows if r["incidents"]} == dict(inc)
    assert sum(r["cctv_hits"] for r in safety.rows) == 12                         # vision.* only
    assert safety.meta["hotspots"][0]["subdistrict"] in (TALAT_YAI, PATONG)

    estate = await svc.run("realestate_footfall", WINDOW)
    patong = next(r for r in estate.rows if r["subdistrict"] == PATONG)
    zones = [z["data"]["price_thb_per_sq_wah"] for z in await svc.datasets.rows("land_price_zones")
             if z["place_id"] == f"subdistrict:{PATONG}"]
    assert patong["land_price_thb_per_sq_wah"] == round(sum(zones) / len(zones))
    assert patong["wifi_devices_per_day"] == (5000 + 7000) / 2
    assert patong["hotels"] == sum(1 for h in await svc.datasets.rows("hotel_register")
                                   if h["place_id"] == f"subdistrict:{PATONG}")
    karon = next(r for r in estate.rows if r["subdistrict"] == KARON)
    assert karon["wifi_devices_per_day"] is None


async def test_parameters_are_checked(aplatform: Any) -> None:
    svc = aplatform.analytics
    with pytest.raises(ValidationFailed, match="unknown parameter"):
        await svc.run("flood_risk", {"rain": "3"})
    with pytest.raises(ValidationFailed, match="offset"):
        await svc.run("flood_risk", {"start": "2026-11-01T00:00:00"})
    with pytest.raises(ValidationFailed, match="before end"):
        await svc.run("flood_risk", {"start": END.isoformat(), "end": START.isoformat()})
    with pytest.raises(NotFound):
        await svc.run("nope")
    empty = await svc.run("tourism_density", {"start": (START - timedelta(days=9)).isoformat(),
                                              "end": (START - timedelta(days=8)).isoformat()})
    assert empty.rows == [] and empty.meta["arrivals"] is None     # no dataset imported in this test


async def test_api_and_plots(aplatform: Any, aclient: Any, tmp_path: Path) -> None:
    await seed(aplatform, aclient)
    analyst = bearer(await token_for(aplatform, "analyst"))
    r = await aclient.get("/api/v1/analytics", headers=analyst)
    assert {q["name"] for q in r.json()["items"]} == {"tourism_density", "flood_risk", "safety_hotspots",
                                                      "realestate_footfall"}
    r = await aclient.get("/api/v1/analytics/safety_hotspots", params=WINDOW, headers=analyst)
    assert r.status_code == 200 and r.json()["rows"]
    r = await aclient.get("/api/v1/analytics/flood_risk", params={"bogus": "1"}, headers=analyst)
    assert r.status_code == 400 and r.json()["code"] == "bad_parameter"
    r = await aclient.get("/api/v1/analytics/flood_risk", headers=bearer(await token_for(aplatform, "hotel")))
    assert r.status_code == 403
    for name, fmt, magic in (("tourism_density", "png", b"\x89PNG"), ("flood_risk", "svg", b"<?xml"),
                             ("realestate_footfall", "png", b"\x89PNG"), ("safety_hotspots", "svg", b"<?xml")):
        r = await aclient.get(f"/api/v1/analytics/{name}/plot", params={**WINDOW, "format": fmt}, headers=analyst)
        assert r.status_code == 200 and r.content.startswith(magic), (name, r.status_code, r.text[:200])
    r = await aclient.get("/api/v1/datasets", headers=analyst)
    assert len(r.json()["items"]) == 4
    r = await aclient.get("/api/v1/datasets/hotel_register/rows", params={"limit": 2}, headers=analyst)
    assert r.json()["total"] == 117 and len(r.json()["items"]) == 2


async def test_flood_reads_raw_observations_after_the_rollups(aplatform: Any, aclient: Any) -> None:
    """Hours not rolled up yet (the rollup runs with a lag) come from the raw Observations."""
    s = await seed(aplatform, aclient)
    admin = bearer(await token_for(aplatform, "admin"))
    streams = (await aclient.get("/v1.1/Datastreams?$select=id,name", headers=admin)).json()["value"]
    ids = {d["name"]: d["@iot.id"] for d in streams}
    hour = END + timedelta(hours=2)
    for name, values in (("Rain gauge Talat Yai", (20.0, 25.0)), ("Level Khlong Bang Yai", (1.0, 1.45))):
        for i, value in enumerate(values):
            r = await aclient.post(f"/v1.1/Datastreams({ids[name]})/Observations", headers=admin, json={
                "phenomenonTime": (hour + timedelta(minutes=10 + 20 * i)).isoformat(), "result": value})
            assert r.status_code == 201, r.text
    before = (await aplatform.analytics.run("flood_risk", WINDOW)).rows[0]
    after = (await aplatform.analytics.run("flood_risk", {"start": START.isoformat(),
                                                          "end": (END + timedelta(days=1)).isoformat()})).rows[0]
    assert after["rain_total_mm"] == round(sum(s.rain.values()) + 45.0, 1)
    assert after["hours_rain_exceeded"] == before["hours_rain_exceeded"] + 1
    assert after["hours_level_exceeded"] == before["hours_level_exceeded"] + 1
    assert after["hours_at_risk"] == before["hours_at_risk"] + 1
