"""The platform API in process: problem+json errors, authentication, devices, geography, operations."""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.conftest import bearer, token_for

PROBLEM = "application/problem+json"


async def test_health_ready_and_metrics(client: Any) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["store"]["ok"] is True
    metrics = (await client.get("/metrics")).text
    assert "citydata_http_requests_total" in metrics
    assert "citydata_queue_depth" in metrics
    memory = dict(re.findall(r'^citydata_memory_bytes\{name="([a-z_]+)"\} (\S+)$', metrics, re.M))
    assert float(memory["rss"]) > 10 * 2**20
    assert float(memory["rss_anon"]) + float(memory["rss_file"]) <= float(memory["rss"]) * 1.01
    if "sqlite" in memory:                                  # SQLite a shared library (tests/ops/test_memory.py)
        assert 0 < float(memory["sqlite"]) < float(memory["heap_in_use"])
    tracker = dict(re.findall(r'^citydata_wifi_tracker\{name="([a-z_]+)"\} (\S+)$', metrics, re.M))
    assert set(tracker) == {"open", "closed", "presence"}


async def test_missing_and_malformed_credentials_are_401_problems(client: Any) -> None:
    r = await client.get("/api/v1/devices")
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "unauthorized"
    for header in ("Bearer cd_nonsense", "Bearer x.y.z", "Basic !!!", "Digest abc", "Bearer cd_" + "a" * 500):
        r = await client.get("/api/v1/devices", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["code"] in ("invalid_token", "invalid_session"), header


async def test_wrong_role_is_403_problem(client: Any, platform: Any) -> None:
    token = await token_for(platform, "device")
    r = await client.get("/api/v1/tokens", headers=bearer(token))
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "forbidden"


async def test_basic_auth_with_token_as_password(client: Any, platform: Any) -> None:
    token = await token_for(platform, "operator")
    basic = base64.b64encode(f"anyone:{token}".encode()).decode()
    r = await client.get("/api/v1/auth/me", headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200
    assert r.json()["role"] == "operator"


async def test_login_session_and_me(client: Any, platform: Any) -> None:
    password = platform.settings.admin_password.get_secret_value()
    bad = await client.post("/api/v1/auth/login", json={"username": "admin", "password": "wrong" * 3})
    assert bad.status_code == 401 and bad.json()["code"] == "bad_credentials"
    r = await client.post("/api/v1/auth/login", json={"username": "admin", "password": password})
    assert r.status_code == 200
    session = r.json()["access_token"]
    me = await client.get("/api/v1/auth/me", headers=bearer(session))
    assert me.json()["role"] == "admin"
    # the session cookie works too (the dashboard uses it)
    assert (await client.get("/api/v1/auth/me")).json()["role"] == "admin"


async def test_login_brute_force_is_throttled(client: Any, platform: Any) -> None:
    codes = []
    for _ in range(platform.settings.login_max_failures + 2):
        r = await client.post("/api/v1/auth/login", json={"username": "admin", "password": "not-the-password"})
        codes.append(r.status_code)
    assert codes[-1] == 429
    assert "Retry-After" in r.headers
    assert r.json()["code"] == "too_many_failures"


async def test_token_lifecycle_over_http(client: Any, platform: Any) -> None:
    admin = await token_for(platform, "admin")
    r = await client.post("/api/v1/tokens", json={"role": "device", "name": "gauge 1"}, headers=bearer(admin))
    assert r.status_code == 201
    created = r.json()
    assert created["token"].startswith("cd_")
    listed = (await client.get("/api/v1/tokens", headers=bearer(admin))).json()["items"]
    assert any(t["id"] == created["id"] for t in listed)
    assert created["token"] not in str(listed)
    assert (await client.get("/api/v1/auth/me", headers=bearer(created["token"]))).status_code == 200
    assert (await client.delete(f"/api/v1/tokens/{created['id']}", headers=bearer(admin))).status_code == 204
    r = await client.get("/api/v1/auth/me", headers=bearer(created["token"]))
    assert r.status_code == 401
    audit = (await client.get("/api/v1/admin/audit", headers=bearer(admin),
                              params={"subject_id": created["id"]})).json()["items"]
    assert {a["action"] for a in audit} == {"token.create", "token.revoke"}


async def test_device_registry_and_heartbeat(client: Any, platform: Any) -> None:
    token = await token_for(platform, "device")
    device = {"id": "rain-test-01", "kind": "rain_gauge", "name": "Test gauge", "lat": 7.89, "lon": 98.3}
    r = await client.post("/api/v1/devices", json=device, headers=bearer(token))
    assert r.status_code == 201
    assert (await client.post("/api/v1/devices", json=device, headers=bearer(token))).status_code == 200
    r = await client.post("/api/v1/devices/rain-test-01/heartbeat", json={"battery": 88.5},
                          headers=bearer(token))
    assert r.status_code == 202
    got = (await client.get("/api/v1/devices/rain-test-01", headers=bearer(token))).json()
    assert got["online"] is True and got["last_heartbeat"]["battery"] == 88.5


async def test_device_validation_names_the_field(client: Any, platform: Any) -> None:
    token = await token_for(platform, "device")
    r = await client.post("/api/v1/devices", json={"id": "x", "kind": "toaster", "name": "n"},
                          headers=bearer(token))
    assert r.status_code == 400
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == "kind"
    r = await client.post("/api/v1/devices", content=b"{not json", headers={
        **bearer(token), "content-type": "application/json"})
    assert r.status_code == 400
    r = await client.post("/api/v1/devices/ghost/heartbeat", json={}, headers=bearer(token))
    assert r.status_code == 404 and r.json()["code"] == "device_not_found"


async def test_device_bound_token_cannot_speak_for_another_device(client: Any, platform: Any) -> None:
    admin = await token_for(platform, "admin")
    for dev in ("a-1", "b-1"):
        await client.post("/api/v1/devices", json={"id": dev, "kind": "gateway", "name": dev},
                          headers=bearer(admin))
    bound = await token_for(platform, "device", device_id="a-1")
    assert (await client.post("/api/v1/devices/a-1/heartbeat", headers=bearer(bound))).status_code == 202
    r = await client.post("/api/v1/devices/b-1/heartbeat", headers=bearer(bound))
    assert r.status_code == 403 and r.json()["code"] == "device_mismatch"


async def test_geography_routes(client: Any) -> None:
    checkpoints = (await client.get("/api/v1/places", params={"kind": "checkpoint"})).json()
    codes = {f["properties"]["code"] for f in checkpoints["features"]}
    everything = (await client.get("/api/v1/places", params={"geometry": "false"})).json()["features"]
    assert len([f for f in everything if f["properties"]["kind"] == "province"]) == 77
    assert codes == {"HKT", "THA_CHATCHAI", "AO_CHALONG", "RASSADA", "AO_PO"}
    airport = (await client.get("/api/v1/geo/locate", params={"lat": 8.10846, "lon": 98.30655})).json()
    assert airport["province"]["code"] == "83"
    khao_lak = (await client.get("/api/v1/geo/locate", params={"lat": 8.64, "lon": 98.25})).json()
    assert khao_lak["province"]["name_en"] == "Phang Nga"
    r = await client.get("/api/v1/geo/locate", params={"lat": 91, "lon": 0})
    assert r.status_code == 400
    assert (await client.get("/api/v1/places/nowhere")).status_code == 404


async def test_unknown_route_and_method_are_problems(client: Any) -> None:
    r = await client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await client.delete("/healthz")
    assert r.status_code == 405 and r.headers["content-type"] == PROBLEM


async def test_openapi_documents_every_route(client: Any) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in ("/api/v1/devices", "/api/v1/tokens", "/api/v1/auth/login", "/readyz", "/api/v1/geo/locate"):
        assert path in spec["paths"]


async def test_latest_sensor_values_come_from_the_latest_table(client: Any, platform: Any) -> None:
    from citydata.sensorthings.model import THING

    await platform.sta.writer.create(THING, {
        "name": "gauge", "description": "d", "properties": {"device_id": "rain-01"},
        "Locations": [{"name": "p", "description": "p", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [98.3, 7.9]}}],
        "Datastreams": [{"name": "rain", "description": "r", "unitOfMeasurement": {"name": "mm", "symbol": "mm",
                                                                                    "definition": "x"},
                         "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                         "Sensor": {"name": "s", "description": "s", "encodingType": "text/plain", "metadata": "m"},
                         "ObservedProperty": {"name": "precipitation", "definition": "x", "description": "d"},
                         "Observations": [{"phenomenonTime": "2026-11-21T01:00:00Z", "result": 2},
                                          {"phenomenonTime": "2026-11-21T03:00:00Z", "result": 5.5},
                                          {"phenomenonTime": "2026-11-21T02:00:00Z", "result": 9}]}]})
    items = (await client.get("/api/v1/sensors/latest")).json()["items"]
    assert len(items) == 1
    item = items[0]
    assert (item["result"], item["phenomenon_time"], item["unit"]) == (5.5, "2026-11-21T03:00:00Z", "mm")
    assert item["device_id"] == "rain-01" and item["geometry"]["type"] == "Point"
    only = (await client.get("/api/v1/sensors/latest", params={"observed_property": "oxygen"})).json()["items"]
    assert only == []
