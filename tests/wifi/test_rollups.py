"""Footfall rollups, built incrementally from records arriving in chunks, some late and some repeated, equal a
brute-force computation from the sessions themselves (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from citydata.clock import DrivenClock
from citydata.wifi.schema import (
    wifi_footfall_area_daily,
    wifi_footfall_area_hourly,
    wifi_footfall_daily,
    wifi_footfall_hourly,
)
from tests.wifi.conftest import NOW, START, Session, make_sessions, make_wifi, session_lines

BKK = ZoneInfo("Asia/Bangkok")
HOUR = 3600
Key = tuple[Any, ...]


def brute_force(sessions: list[Session], meta: dict[str, dict[str, Any]], rotation_days: int
                ) -> dict[str, dict[Key, tuple[int, int, int, int, int, float]]]:
    """Every rollup table's rows, straight from the sessions: hours overlapped (plus the start hour), unique
    devices per scope, 'returning' = present at the scope earlier in the same rotation period."""
    def period(t: float) -> int:
        return (datetime.fromtimestamp(t, BKK).date() - date(2020, 1, 1)).days // rotation_days

    # presence: (hour, hotspot, device) -> [sessions, dwell]; a device is (mac, period): pseudonyms rotate
    presence: dict[tuple[int, str, tuple[str, int]], list[float]] = defaultdict(lambda: [0, 0.0])
    randomised: dict[str, bool] = {}
    for s in sessions:
        randomised[s.mac] = s.randomised
        h0 = int(s.start // HOUR) * HOUR
        presence[(h0, s.hotspot, (s.mac, period(h0)))][0] += 1
        h = h0
        while h < s.end:
            overlap = min(s.end, h + HOUR) - max(s.start, h)
            if overlap > 0:
                presence[(h, s.hotspot, (s.mac, period(h)))][1] += overlap
            h += HOUR

    def scope_key(level: str, hotspot: str) -> str:
        m = meta[hotspot]
        return {"hotspot": hotspot, "zone": m["zone"], "subdistrict": m["subdistrict_code"] or "", "city": "all"}[level]

    def local_day(h: int) -> date:
        return datetime.fromtimestamp(h, BKK).date()

    out: dict[str, dict[Key, tuple[int, int, int, int, int, float]]] = {}
    for level in ("hotspot", "zone", "subdistrict", "city"):
        for gran in ("hour", "day"):
            seen: dict[tuple[str, tuple[str, int]], list[Any]] = {}    # (area, device) -> windows present
            cells: dict[Key, dict[str, Any]] = {}
            for (h, hs, dev), (n, w) in sorted(presence.items()):
                area = scope_key(level, hs)
                t: Any = h if gran == "hour" else local_day(h)
                cell = cells.setdefault((area, t), {"devices": set(), "sessions": 0, "dwell": 0.0})
                cell["devices"].add(dev)
                cell["sessions"] += int(n)
                cell["dwell"] += w
                seen.setdefault((area, dev), []).append(t)
            rows: dict[Key, tuple[int, int, int, int, int, float]] = {}
            for (area, t), cell in cells.items():
                devs = cell["devices"]
                ret = sum(1 for d in devs if min(seen[(area, d)]) < t)
                rows[(area, t)] = (len(devs), sum(1 for d in devs if randomised[d[0]]), len(devs) - ret, ret,
                                   cell["sessions"], round(cell["dwell"], 3))
            out[f"{level}/{gran}"] = rows
    return out


async def stored(wifi: Any) -> dict[str, dict[Key, tuple[int, int, int, int, int, float]]]:
    out: dict[str, dict[Key, tuple[int, int, int, int, int, float]]] = {}
    measures = ("devices", "randomised_devices", "new_devices", "returning_devices", "sessions")
    for level in ("hotspot", "zone", "subdistrict", "city"):
        for gran in ("hour", "day"):
            if level == "hotspot":
                table = wifi_footfall_hourly if gran == "hour" else wifi_footfall_daily
                stmt = select(table)
                key = "hotspot_id"
            else:
                table = wifi_footfall_area_hourly if gran == "hour" else wifi_footfall_area_daily
                stmt = select(table).where(table.c.level == level)
                key = "area"
            rows = {}
            for r in await wifi.store.fetch_all(stmt):
                t = int(r["hour"].timestamp()) if gran == "hour" else r["day"]
                rows[(r[key], t)] = (*(int(r[m]) for m in measures), round(float(r["dwell_s"]), 3))
            out[f"{level}/{gran}"] = rows
    return out


async def feed(wifi: Any, sessions: list[Session], seed: int) -> None:
    """Send the records in time order, in chunks, flushing in between; a fifth of the RADIUS records come in
    late (after later hours were rolled up), out of order."""
    rng = random.Random(seed)
    lines = session_lines(sessions, rng)
    lines.sort(key=lambda x: x[0])
    late = [ln for ln in lines if '"Acct-Status-Type"' in ln[1] and rng.random() < 0.2]
    late_set = {id(x) for x in late}
    ontime = [ln for ln in lines if id(ln) not in late_set]
    chunk = max(1, len(ontime) // 9)
    for i in range(0, len(ontime), chunk):
        result = await wifi.ingest_lines([ln for _, ln in ontime[i:i + chunk]], "jsonl", "test")
        assert result.rejected == 0, result.errors
        await wifi.flush(days=i % 3 == 0)
    rng.shuffle(late)
    result = await wifi.ingest_lines([ln for _, ln in late], "jsonl", "test")
    assert result.rejected == 0, result.errors
    await wifi.flush(days=True)


def _compare(got: dict[str, Any], want: dict[str, Any]) -> None:
    for name in want:
        assert set(got[name]) == set(want[name]), f"{name}: different cells"
        for k, v in want[name].items():
            g = got[name][k]
            assert g[:5] == v[:5], f"{name} {k}: got {g}, want {v}"
            assert abs(g[5] - v[5]) < 0.01, f"{name} {k}: dwell {g[5]} != {v[5]}"


async def test_incremental_rollups_equal_brute_force(wifi: Any) -> None:
    sessions = make_sessions(seed=5)
    await feed(wifi, sessions, seed=6)
    want = brute_force(sessions, wifi.registry.by_id, rotation_days=1)
    got = await stored(wifi)
    assert sum(len(v) for v in want.values()) > 200
    assert any(v[3] for v in want["zone/hour"].values()), "some devices return within the day"
    assert any(v[1] for v in want["city/hour"].values()), "some randomised devices"
    _compare(got, want)
    # the read side on this backend
    from citydata.wifi import views

    zone = await views.footfall(wifi, level="zone", area="patong", granularity="hour", start=None, end=None)
    assert [i["devices"] for i in zone["items"]] == [v[0] for k, v in sorted(want["zone/hour"].items())
                                                     if k[0] == "patong"]
    assert zone["items"][0]["hour"].endswith("+00:00")
    days = await views.footfall(wifi, level="hotspot", area="wifi-patong-001", granularity="day",
                                start=NOW - timedelta(days=2), end=NOW + timedelta(days=1))
    want_days = sorted(str(k[1]) for k in want["hotspot/day"] if k[0] == "wifi-patong-001")
    assert [i["day"] for i in days["items"]] == want_days and want_days
    stats = await wifi.stats()
    assert stats["events_24h"] > 100 and 0 < stats["randomised_events_24h"] < stats["events_24h"]
    assert stats["dead_letters"] == 0 and stats["repeats_ignored"] > 0


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
async def test_two_day_rotation_counts_returning_days(store: Any, backend_settings: Any) -> None:
    """With a two-day key, a device seen yesterday (same period) is returning today; the key period starts on
    even days since 2020-01-01."""
    wifi = await make_wifi(store, DrivenClock(NOW), backend_settings, wifi_rotation_days=2)
    sessions = make_sessions(seed=9, devices=25, hours=14)
    await feed(wifi, sessions, seed=10)
    want = brute_force(sessions, wifi.registry.by_id, rotation_days=2)
    _compare(await stored(wifi), want)


async def test_rebuilding_a_flushed_hour_is_idempotent(wifi: Any) -> None:
    sessions = make_sessions(seed=11, devices=10, hours=4)
    await feed(wifi, sessions, seed=12)
    before = await stored(wifi)
    for h in {k[1] for k in before["hotspot/hour"]}:
        wifi.rollups.dirty_hours.add(h)
    await wifi.flush(days=True)
    assert await stored(wifi) == before
    assert datetime.fromtimestamp(min(k[1] for k in before["city/hour"]), UTC) >= NOW - timedelta(days=1)


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
async def test_timer_writes_presence_each_tick_and_paces_rebuilds_by_their_cost(store: Any,
                                                                               backend_settings: Any) -> None:
    clock = DrivenClock(START + timedelta(hours=3, minutes=1))    # just after the data, as in live operation
    wifi = await make_wifi(store, clock, backend_settings)
    wifi.settings = wifi.settings.model_copy(update={"wifi_flush_s": 5.0, "wifi_daily_every_s": 60.0})
    sessions = make_sessions(seed=13, devices=6, hours=3)
    lines = [ln for _, ln in sorted(session_lines(sessions, random.Random(1)))]
    half = len(lines) // 2
    await wifi.ingest_lines(lines[:half], "jsonl", "test")
    clock.advance(5)
    await wifi._tick()
    first = await stored(wifi)
    assert first["city/hour"] and not first["city/day"]            # hours now, days not yet due
    wifi._rebuild_cost = 10.0                                      # a slow rebuild: wait 4 x 10 s before the next
    await wifi.ingest_lines(lines[half:], "jsonl", "test")
    clock.advance(5)
    await wifi._tick()
    assert wifi.rollups.dirty_hours and not wifi.tracker.delta    # presence written, hours still pending
    assert await stored(wifi) == first
    clock.advance(60)
    await wifi._tick()
    assert not wifi.rollups.dirty_hours
    _compare(await stored(wifi), brute_force(sessions, wifi.registry.by_id, rotation_days=1))
