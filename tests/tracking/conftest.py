"""Fixtures for the tracking tests: a started platform (SQLite, no MQTT) with tracking and its routes, on a
driven clock, and helpers for the checkpoint and app flows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from citydata.clock import DrivenClock
from citydata.events import Event
from tests.conftest import bearer, make_settings, token_for

START = datetime.fromisoformat("2026-11-21T02:30:00+00:00")

# Real places (reference city): lon, lat
PATONG = (98.2913, 7.8875)
KARON = (98.2933, 7.8478)
OLD_TOWN = (98.3880, 7.8840)
HKT = (98.30655, 8.10846)
THA_CHATCHAI = (98.2974, 8.2018)
RASSADA = (98.4013, 7.8557)
AO_CHALONG = (98.3613, 7.8281)
# north over the Sarasin bridge into Phang Nga (Khok Kloi)
SARASIN_TRACK = [(98.3000, 8.1000), (98.3000, 8.1500), (98.2990, 8.1800), (98.2974, 8.2018), (98.2940, 8.2150),
                 (98.2900, 8.2200), (98.2850, 8.2350), (98.2820, 8.2550), (98.2800, 8.2800), (98.2800, 8.3000)]


def arrival_body(n: int = 1, checkpoint: str = "HKT", **extra: Any) -> dict[str, Any]:
    body = {"checkpoint": checkpoint, "arrived_at": START.isoformat(),
            "traveller": {"name": f"Erika Mustermann {n}", "passport_no": f"C01X00T4{n:02d}", "nationality": "DEU",
                          "birth_date": "1990-01-31", "phone": f"+4915123456{n:02d}"},
            "screening": {"health": "pass", "test_result": "negative", "vaccinated": True, "goods": "cleared"},
            "hotel_id": "hotel-patong-1", "consent": {"tracking": True, "at": START.isoformat()}}
    body.update(extra)
    return body


def ping(t: datetime, lon: float, lat: float, acc: float = 15.0) -> dict[str, Any]:
    return {"t": t.isoformat(), "lat": lat, "lon": lon, "accuracy_m": acc}


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, delivery: Any) -> None:
        self.events.append(delivery.event)

    def kinds(self, prefix: str = "") -> list[str]:
        return [e.kind for e in self.events if e.kind.startswith(prefix)]

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


@pytest.fixture
def dclock() -> DrivenClock:
    return DrivenClock(START + timedelta(minutes=5))


@pytest.fixture
async def tp(tmp_path: Path, dclock: DrivenClock) -> AsyncIterator[Any]:
    """A started platform with tracking (timers on the driven clock) and the tracking routes."""
    from citydata.api.routes import tracking as routes
    from citydata.app import Platform
    from citydata.tracking import start_tracking

    p = Platform(make_settings(tmp_path, mqtt_url="none://", log_level="DEBUG"), clock=dclock)
    async with p:
        service = await start_tracking(p)
        assert p.app is not None
        p.app.include_router(routes.router)
        try:
            yield p
        finally:
            await service.stop()


@pytest.fixture
async def tclient(tp: Any) -> AsyncIterator[httpx.AsyncClient]:
    from citydata.api.app import serving_app

    transport = httpx.ASGITransport(app=serving_app(tp.app))
    async with httpx.AsyncClient(transport=transport, base_url="http://citydata.test") as c:
        yield c


@pytest.fixture
async def recorder(tp: Any) -> AsyncIterator[Recorder]:
    rec = Recorder()
    sub = await tp.bus.subscribe(">", rec)
    yield rec
    await sub.close()


async def arrive_and_enrol(platform: Any, client: httpx.AsyncClient, n: int = 1, **extra: Any) -> tuple[str, str]:
    """Immigration registers the arrival, the app enrols; returns (traveller_id, device token)."""
    imm = await token_for(platform, "immigration")
    r = await client.post("/api/v1/tracking/arrivals", json=arrival_body(n, **extra), headers=bearer(imm))
    assert r.status_code == 201, r.text
    body = r.json()
    r = await client.post("/api/v1/tracking/enrol", json={"enrolment_code": body["enrolment_code"]})
    assert r.status_code == 200, r.text
    return body["traveller_id"], r.json()["device_token"]


async def settle(rounds: int = 20, pause: float = 0.05) -> None:
    """Let the timer task and the bus run (the in-process bus journals through the store's writer)."""
    import asyncio

    for _ in range(rounds):
        await asyncio.sleep(0)
    await asyncio.sleep(pause)


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
