"""The WiFi API on a started platform: who may do what, ingest over HTTP with dead-lettering, the dashboard map,
the public hotspot list, footfall and stats."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.conftest import bearer, token_for

PATONG = (98.2947, 7.8896)


def session_start(now: Any) -> Any:
    """20-minute sessions ending a minute ago, moved back when they would cross midnight in Bangkok."""
    bkk = ZoneInfo("Asia/Bangkok")
    end = now - timedelta(minutes=1)
    if (end - timedelta(seconds=1200)).astimezone(bkk).date() != end.astimezone(bkk).date():
        end = end.astimezone(bkk).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(seconds=1)
    return end - timedelta(seconds=1200)


def records(now: Any, n: int = 3) -> str:
    lines = []
    for i in range(n):
        start = session_start(now)
        base = {"Calling-Station-Id": f"3A-22-FB-00-00-0{i}" if i % 2 else f"3C-22-FB-00-00-0{i}",
                "NAS-Identifier": "wifi-patong-001", "Acct-Session-Id": f"A{i}"}
        lines.append(orjson.dumps({**base, "Acct-Status-Type": "Start", "Event-Timestamp": start.isoformat()}))
        lines.append(orjson.dumps({**base, "Acct-Status-Type": "Stop", "Acct-Session-Time": 1200,
                                   "Event-Timestamp": (start + timedelta(seconds=1200)).isoformat()}))
    return b"\n".join(lines).decode()


@pytest.mark.parametrize(("method", "path", "allowed", "denied"), [
    ("POST", "/api/v1/wifi/events", ["device", "admin"], ["operator", "analyst", "hotel"]),
    ("GET", "/api/v1/wifi/hotspots", ["operator", "hotel", "analyst", "device"], []),
    ("POST", "/api/v1/wifi/hotspots", ["admin", "device"], ["operator", "analyst"]),
    ("GET", "/api/v1/wifi/map", ["operator", "analyst", "admin"], ["device", "hotel", "police"]),
    ("GET", "/api/v1/wifi/footfall", ["operator", "analyst"], ["device", "hotel"]),
    ("GET", "/api/v1/wifi/stats", ["analyst"], ["device", "tourist_police"]),
])
async def test_authorization(platform: Any, client: Any, method: str, path: str, allowed: list[str],
                             denied: list[str]) -> None:
    body: dict[str, Any] = {}
    if path == "/api/v1/wifi/hotspots" and method == "POST":
        body = {"json": {"id": "wifi-test-1", "name": "Test", "lon": PATONG[0], "lat": PATONG[1], "zone": "patong"}}
    elif path.endswith("/events"):
        body = {"content": records(platform.clock.now(), 1)}
    r = await client.request(method, path, **body)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    for role in allowed:
        r = await client.request(method, path, headers=bearer(await token_for(platform, role)), **body)
        assert r.status_code in (200, 201, 202), (role, r.text)
    for role in denied:
        r = await client.request(method, path, headers=bearer(await token_for(platform, role)), **body)
        assert r.status_code == 403 and r.json()["code"] == "forbidden", role


async def test_ingest_map_footfall_and_public_list(platform: Any, client: Any) -> None:
    device = bearer(await token_for(platform, "device"))
    body = records(platform.clock.now()) + "\n{broken 3c:22:fb:99:99:99\n" + orjson.dumps({
        "Acct-Status-Type": "Start", "Calling-Station-Id": "3c:22:fb:00:00:09", "NAS-Identifier": "nowhere"}).decode()
    r = await client.post("/api/v1/wifi/events", content=body, headers={**device,
                                                                        "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202
    out = r.json()
    assert (out["accepted"], out["rejected"]) == (6, 2)
    assert [e["line"] for e in out["errors"]] == [7, 8] and "unknown hotspot" in out["errors"][1]["reason"]
    letters = await platform.dead_letters.list(source="wifi")
    assert len(letters) == 2 and all("3c:22:fb" not in (d["payload"] or "").lower() for d in letters)
    assert "<mac>" in letters[-1]["payload"]
    assert 'citydata_dead_letters_total{source="wifi"} 2.0' in platform.metrics.render().decode()
    await platform.wifi.flush()

    analyst = bearer(await token_for(platform, "analyst"))
    fc = (await client.get("/api/v1/wifi/map", headers=analyst)).json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 1000
    patong = next(f for f in fc["features"] if f["id"] == "wifi-patong-001")["properties"]
    assert (patong["devices"], patong["randomised_devices"]) == (3, 1) and patong["zone"] == "patong"
    r = await client.get("/api/v1/wifi/footfall", params={"level": "zone", "area": "patong", "granularity": "day"},
                         headers=analyst)
    day = r.json()["items"]
    assert len(day) == 1 and (day[0]["devices"], day[0]["sessions"], day[0]["dwell_s"]) == (3, 3, 3600.0)
    r = await client.get("/api/v1/wifi/footfall", params={"level": "city", "granularity": "hour"}, headers=analyst)
    assert sum(i["dwell_s"] for i in r.json()["items"]) == 3600.0
    r = await client.get("/api/v1/wifi/footfall", params={"level": "bogus"}, headers=analyst)
    assert r.status_code == 400 and r.json()["code"] == "invalid_level"
    stats = (await client.get("/api/v1/wifi/stats", headers=analyst)).json()
    assert (stats["hotspots"], stats["events_24h"], stats["randomised_events_24h"], stats["dead_letters"]) == (
        1000, 6, 2, 2)

    # the tourist app's "nearest free WiFi": anonymous, locations only
    r = await client.get("/api/v1/wifi/public/hotspots", params={"lat": PATONG[1], "lon": PATONG[0], "limit": 3})
    assert r.status_code == 200
    feats = r.json()["features"]
    assert len(feats) == 3 and feats[0]["properties"]["distance_m"] <= feats[2]["properties"]["distance_m"]
    assert not {"devices", "dwell_s", "sessions"} & set(feats[0]["properties"])


async def test_hotspot_registry_changes(platform: Any, client: Any) -> None:
    admin = bearer(await token_for(platform, "admin"))
    new = {"id": "wifi-test-9", "name": "Karon viewpoint", "lon": 98.3050, "lat": 7.8120, "zone": "karon",
           "operator": "municipal", "ap_mac": "02-00-00-00-00-99"}
    r = await client.post("/api/v1/wifi/hotspots", json=new, headers=admin)
    assert r.status_code == 201 and r.json()["subdistrict_code"] and r.json()["ap_mac"] == "02:00:00:00:00:99"
    assert (await client.post("/api/v1/wifi/hotspots", json=new, headers=admin)).status_code == 200
    r = await client.post("/api/v1/wifi/hotspots", json={**new, "id": "wifi-test-10"}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "ap_mac_taken"
    r = await client.patch("/api/v1/wifi/hotspots/wifi-test-9", json={"zone": "kata", "active": False}, headers=admin)
    assert r.status_code == 200 and (r.json()["zone"], r.json()["active"]) == ("kata", False)
    r = await client.patch("/api/v1/wifi/hotspots/nope", json={"zone": "kata"}, headers=admin)
    assert r.status_code == 404 and r.json()["code"] == "hotspot_not_found"
    r = await client.post("/api/v1/wifi/hotspots", json={**new, "id": "bad id!"}, headers=admin)
    assert r.status_code in (400, 422)
    # a record naming the AP by its BSSID only (Called-Station-Id) lands on that hotspot
    line = orjson.dumps({"Acct-Status-Type": "Start", "Calling-Station-Id": "3c:22:fb:00:00:01",
                         "Called-Station-Id": "02-00-00-00-00-99:Phuket-Free-WiFi",
                         "Event-Timestamp": platform.clock.now().isoformat()}).decode()
    device = bearer(await token_for(platform, "device"))
    r = await client.post("/api/v1/wifi/events", content=line, headers=device)
    assert r.json()["accepted"] == 1
    r = await client.post("/api/v1/wifi/events?format=telnet", content=line, headers=device)
    assert r.status_code == 400 and r.json()["code"] == "unknown_format"
    platform.settings = platform.settings.model_copy(update={"wifi_max_lines": 2})
    r = await client.post("/api/v1/wifi/events", content="\n".join([line] * 3), headers=device)
    assert r.status_code == 413 and r.json()["code"] == "too_many_lines"
