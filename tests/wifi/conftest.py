"""Fixtures for the WiFi tests: a ``WifiService`` over a started store (SQLite and PostgreSQL) on a driven
clock, without the rest of the platform; and a generator of realistic sessions with its brute-force footfall."""

from __future__ import annotations

import functools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from citydata.clock import DrivenClock
from citydata.config import Settings
from citydata.geo import read_reference_city
from citydata.geo.index import Geography
from citydata.ingest.deadletter import DeadLetters
from citydata.ops.metrics import Metrics
from citydata.wifi import WifiService

SECRET = b"wifi-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
# 2026-11-21 17:00 UTC is midnight in Bangkok: the data straddles a key rotation
START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
NOW = START + timedelta(hours=14)


@functools.cache
def geography() -> Geography:
    return Geography.from_places(read_reference_city("phuket"))


async def make_wifi(store: Any, clock: DrivenClock, settings: Settings, *, listen: bool = False,
                    **overrides: Any) -> WifiService:
    s = settings.model_copy(update={"wifi_flush_s": 0, "wifi_purge_interval_s": 0, **overrides})
    service = WifiService(settings=s, store=store, clock=clock, metrics=Metrics(), geography=geography(),
                          dead_letters=DeadLetters(store, clock, Metrics()), secret_key=SECRET)
    await service.start(timers=False, listen=listen)
    return service


@pytest.fixture
async def wifi(store: Any, backend_settings: Settings) -> AsyncIterator[WifiService]:
    clock = DrivenClock(NOW)
    service = await make_wifi(store, clock, backend_settings)
    yield service


# -- realistic sessions ------------------------------------------------------------------------------------------
HOTSPOTS = ["wifi-patong-001", "wifi-patong-002", "wifi-bangla-001", "wifi-old-town-001", "wifi-old-town-002",
            "wifi-rassada-pier-001", "wifi-bus-stops-001"]


def mac_of(n: int, randomised: bool) -> str:
    first = 0x3A if randomised else 0x3C      # 0x3A: locally administered bit set
    return f"{first:02x}:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}:5e:{(n * 7) & 0xFF:02x}"


@dataclass
class Session:
    mac: str
    randomised: bool
    hotspot: str
    start: float
    end: float
    radius: bool
    sid: str


def make_sessions(seed: int, devices: int = 40, hours: int = 12) -> list[Session]:
    rng = random.Random(seed)
    t_min, t_max = START.timestamp(), START.timestamp() + hours * 3600
    out: list[Session] = []
    for n in range(devices):
        randomised = rng.random() < 0.35
        mac = mac_of(n + 1, randomised)
        t = float(round(t_min + rng.uniform(0, 3 * 3600)))
        while t < t_max - 600:
            length = round(rng.choice([0, 30, 300, 1500, 4000, 9000]) * rng.uniform(0.5, 1.0))
            end = min(t + length, t_max)
            out.append(Session(mac, randomised, rng.choice(HOTSPOTS), t, end, rng.random() < 0.6,
                               f"{n:04X}{len(out):06X}"))
            t = end + round(rng.uniform(60, 5 * 3600))   # next session strictly after this one ends
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def session_lines(sessions: list[Session], rng: random.Random) -> list[tuple[float, str]]:
    """(when it would be sent, JSON line) for every record of every session; RADIUS sessions send Start, an
    Interim-Update every 10 minutes and Stop, and now and then a record twice."""
    lines: list[tuple[float, str]] = []
    for s in sessions:
        if s.radius:
            base = {"Calling-Station-Id": s.mac.upper().replace(":", "-"), "NAS-Identifier": s.hotspot,
                    "Acct-Session-Id": s.sid, "Called-Station-Id": "02-00-00-00-00-01:Phuket-Free-WiFi"}
            recs = [(s.start, {**base, "Acct-Status-Type": "Start", "Event-Timestamp": _iso(s.start)})]
            t = s.start + 600
            while t < s.end:
                recs.append((t, {**base, "Acct-Status-Type": "Interim-Update", "Event-Timestamp": _iso(t),
                                 "Acct-Session-Time": round(t - s.start), "Acct-Input-Octets": 1000}))
                t += 600
            recs.append((s.end, {**base, "Acct-Status-Type": "Stop", "Event-Timestamp": _iso(s.end),
                                 "Acct-Session-Time": round(s.end - s.start)}))
            for when, rec in recs:
                lines.append((when, orjson.dumps(rec).decode()))
                if rng.random() < 0.05:
                    lines.append((when + 5, orjson.dumps(rec).decode()))       # a retransmission
        else:
            lines.append((s.start, orjson.dumps({"event": "associate", "mac": s.mac, "hotspot_id": s.hotspot,
                                                 "time": _iso(s.start)}).decode()))
            lines.append((s.end, orjson.dumps({"event": "disassociate", "mac": s.mac, "hotspot_id": s.hotspot,
                                               "time": _iso(s.end)}).decode()))
    return lines
