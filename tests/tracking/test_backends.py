"""The tracking flow on SQLite and PostgreSQL, across a restart: state is reloaded from the store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from citydata.clock import DrivenClock
from citydata.config import Settings
from citydata.tracking.schema import tracking_fence_state, tracking_pings
from tests.conftest import bearer, token_for
from tests.tracking.conftest import PATONG, SARASIN_TRACK, START, arrival_body, ping


async def _platform(settings: Settings, clock: DrivenClock) -> Any:
    from citydata.api.routes import tracking as routes
    from citydata.app import Platform
    from citydata.tracking import start_tracking

    p = Platform(settings, clock=clock)
    await p.start()
    await start_tracking(p)
    assert p.app is not None
    p.app.include_router(routes.router)
    return p


async def _stop(p: Any) -> None:
    await p.tracking.stop()
    await p.stop()


def _client(p: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app), base_url="http://citydata.test")


@pytest.mark.parametrize("backend_settings", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
async def test_flow_and_restart(backend_settings: Settings, tmp_path: Path) -> None:
    settings = backend_settings.model_copy(update={"mqtt_url": "none://"})
    clock = DrivenClock(START + timedelta(minutes=5))
    p = await _platform(settings, clock)
    try:
        async with _client(p) as c:
            imm = await token_for(p, "immigration")
            r = await c.post("/api/v1/tracking/arrivals", json=arrival_body(1), headers=bearer(imm))
            tid = r.json()["traveller_id"]
            r = await c.post("/api/v1/tracking/enrol", json={"enrolment_code": r.json()["enrolment_code"]})
            device = r.json()["device_token"]
            t = START + timedelta(minutes=10)
            batch = []
            for lon, lat in SARASIN_TRACK:
                batch.append(ping(t, lon, lat))
                t += timedelta(minutes=6)
            clock.set(t)
            batch.reverse()                                   # out of order, as a phone's buffer may send it
            r = await c.post("/api/v1/tracking/pings", json={"pings": batch + batch[:2]}, headers=bearer(device))
            assert r.status_code == 202 and r.json()["accepted"] == 12 and r.json()["duplicates"] == 2
        await p.tracking.flush()
        assert await p.store.scalar(select(func.count()).select_from(tracking_pings)) == 10
        states = await p.store.fetch_all(select(tracking_fence_state))
        assert [(s["fence_id"], s["state"]) for s in states] == [("province:83", "outside")]
    finally:
        await _stop(p)
    # restart on the same database: the traveller is still outside, the token still works
    p = await _platform(settings, clock)
    try:
        assert p.tracking.views.attention()["items"][0]["traveller_id"] == tid
        async with _client(p) as c:
            clock.advance(600)
            r = await c.post("/api/v1/tracking/pings", json={"pings": [ping(clock.now(), 98.3000, 8.1000)]},
                             headers=bearer(device))
            assert r.status_code == 202
            clock.advance(1200)
            r = await c.post("/api/v1/tracking/pings", json={"pings": [ping(clock.now(), *PATONG)]},
                             headers=bearer(device))
            assert r.status_code == 202
        states = await p.store.fetch_all(select(tracking_fence_state))
        assert [s["state"] for s in states] == ["inside"]
        admin = await token_for(p, "admin")
        async with _client(p) as c:
            r = await c.request("DELETE", f"/api/v1/tracking/travellers/{tid}", params={"purpose": "DSR"},
                                headers=bearer(admin))
            assert r.status_code == 200 and r.json()["erased"]["pings"] == 12
    finally:
        await _stop(p)
