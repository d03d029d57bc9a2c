"""The simulator's WiFi feed against a platform over HTTP: tourists (from the tourist feed) and residents join
the hotspots, both record formats are accepted, and footfall appears in the rollups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from citydata.clock import DrivenClock
from citydata.sim.tourists import REPORT_S, TouristFeed, platform_settings
from citydata.sim.wifi import WifiFeed
from tests.conftest import bearer, make_settings, token_for

SPEED = 30


@pytest.fixture
async def fast(tmp_path: Path) -> AsyncIterator[Any]:
    from citydata.app import Platform

    clock = DrivenClock()
    p = Platform(make_settings(tmp_path, mqtt_url="none://", wifi_flush_s=0, **platform_settings(SPEED)),
                 clock=clock)
    async with p:
        yield p


async def test_feed_over_http(fast: Any) -> None:
    clock = fast.clock
    tourists = TouristFeed(5, per_hour=2, speed=SPEED, stay_days=(0.3, 0.5), wall_now=clock.now)
    wifi = WifiFeed(5, speed=SPEED, tourists=tourists, residents=120, wall_now=clock.now)
    transport = httpx.ASGITransport(app=fast.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://citydata.test",
                                 headers=bearer(await token_for(fast, "admin"))) as http:
        await tourists.setup(http)
        await wifi.setup(http)
        assert len(wifi.hotspots) == 1000 and len(wifi.residents) == 120
        sim_t = 0.0
        while sim_t < 5 * 3600:
            sim_t += REPORT_S / 3
            clock.advance(REPORT_S / 3 / SPEED)
            await tourists.step(http, sim_t)
            await wifi.step(http, sim_t)
    st = wifi.stats
    assert st.errors == 0 and st.rejected == 0 and st.accepted == st.records, st
    assert st.tourists_seen == tourists.stats.arrivals > 3
    assert set(st.by_format) == {"jsonl", "syslog"} and st.sessions > 20
    tourist_phones = {p.mac for p in wifi.phones.values()}
    assert any(p.session for p in wifi.phones.values()) or st.sessions > len(wifi.residents)
    await fast.wifi.flush()
    analyst = bearer(await token_for(fast, "analyst"))
    async with httpx.AsyncClient(transport=transport, base_url="http://citydata.test", headers=analyst) as http:
        zones = (await http.get("/api/v1/wifi/footfall", params={"level": "zone"})).json()["items"]
        city = (await http.get("/api/v1/wifi/footfall", params={"level": "city"})).json()["items"]
    assert {z["area"] for z in zones} >= {"old_town", "bus_stops"}
    assert sum(c["sessions"] for c in city) >= st.sessions * 0.9
    assert any(c["randomised_devices"] for c in city)
    assert tourist_phones
