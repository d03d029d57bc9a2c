"""The WiFi events and the CCTV vendor events are served ahead of FastAPI (``citydata.api.hot_routes``): the
answers must be the same as the routed FastAPI routes', including the requests the hot handler hands back to
FastAPI's own validation (``NotHot``: a body that is not a JSON object, a ``format`` longer than allowed)."""

from __future__ import annotations

from typing import Any

import httpx

from citydata.api.app import create_app, serving_app
from citydata.api.hot_routes import HotRoutes
from tests.conftest import bearer, token_for
from tests.wifi.test_api import records

WIFI = "/api/v1/wifi/events"
VENDOR = "/api/v1/vision/vendor/acme"


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://citydata.test")


def _shape(r: httpx.Response) -> tuple[Any, ...]:
    return (r.status_code, r.headers["content-type"], r.headers.get("www-authenticate"),
            r.headers.get("retry-after"), r.json())


async def _compare(platform: Any, cases: list[tuple[str, str, dict[str, str], Any]], route: str) -> None:
    hot, routed = serving_app(create_app(platform)), create_app(platform, hot_routes=False)
    assert isinstance(hot, HotRoutes)
    served = [entry[0].path for entry in hot.routes.values()] + [p[-1][0].path for p in hot.prefixed]
    assert route in served
    async with _client(hot) as h, _client(routed) as r:
        for name, path, headers, body in cases:
            answers = []
            for client in (h, r):
                if isinstance(body, str | bytes):
                    resp = await client.post(path, content=body, headers=headers)
                else:
                    resp = await client.post(path, json=body, headers=headers)
                answers.append(_shape(resp))
            assert answers[0] == answers[1], (name, answers)


async def test_hot_and_routed_wifi_events_answer_alike(platform: Any) -> None:
    device, operator = bearer(await token_for(platform, "device")), bearer(await token_for(platform, "operator"))
    ndjson = {"content-type": "application/x-ndjson"}
    body = records(platform.clock.now(), n=1)     # each path ingests its own copy: a repeated Start is counted
    await _compare(platform, [
        ("good lines", WIFI, device | ndjson, body),
        ("a bad line among good ones", WIFI, device | ndjson, body + "\n{broken"),
        ("unknown format", WIFI + "?format=nonsense", device | ndjson, body),
        ("format too long for the query validation", WIFI + "?format=" + "x" * 40, device | ndjson, body),
        ("no credentials", WIFI, ndjson, body),
        ("role without wifi.ingest", WIFI, operator | ndjson, body),
    ], WIFI)


async def test_hot_and_routed_vendor_events_answer_alike(platform: Any) -> None:
    admin = bearer(await token_for(platform, "admin"))
    r = await _client(platform.app).post("/api/v1/cameras", headers=admin, json={
        "id": "cam:junction-01", "name": "junction", "lon": 98.2965, "lat": 7.8961, "heading_deg": 0.0,
        "zone_id": "subdistrict:830302", "analytics": ["traffic"]})
    assert r.status_code == 201, r.text
    device, operator = bearer(await token_for(platform, "device")), bearer(await token_for(platform, "operator"))
    event = {"camera_id": "cam:junction-01", "type": "wrong_way", "line": "lane-2", "track_id": "7"}
    json_type = {"content-type": "application/json"}
    await _compare(platform, [
        ("an event", VENDOR, device, event),
        ("an unsupported event", VENDOR, device, {"camera_id": "cam:junction-01", "type": "x"}),
        ("an unknown camera", VENDOR, device, event | {"camera_id": "cam:nowhere"}),
        ("an unknown vendor", "/api/v1/vision/vendor/nobody", device, event),
        ("not JSON (FastAPI's validation)", VENDOR, device | json_type, "{not json"),
        ("a JSON array (FastAPI's validation)", VENDOR, device, [event]),
        ("a vendor path with a slash (no route)", VENDOR + "/more", device, event),
        ("no credentials", VENDOR, {}, event),
        ("role without cameras.frames", VENDOR, operator, event),
    ], "/api/v1/vision/vendor/{vendor}")
