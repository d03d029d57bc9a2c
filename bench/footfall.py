#!/usr/bin/env python3
"""WiFi footfall benchmark: events ingested per second, and footfall queries from the rollups against the raw scan.

1. **Ingest** (same run, same events): a platform (SQLite file, no MQTT, the WiFi rollup timer running every
   5 s) with the 1,000 shipped hotspots; concurrent clients post RADIUS accounting JSON lines (Start,
   Interim-Update, Stop; a third of the phones randomised) through ``POST /api/v1/wifi/events`` over the in-process
   ASGI transport (HTTP semantics, no sockets). Each record is parsed, its hotspot found, its MAC pseudonymised,
   its session tracked into presence, and stored; the rollups follow. Goal: 1,000 hotspots × 10 events/min × 10
   headroom ≈ 1,667 events/s. Baseline: raw ``sqlite3`` ``executemany`` of the same number of already-prepared
   event rows into a table of the same shape (what storing alone costs).
2. **Query**: ``--days`` days of sessions (1,000 hotspots) go through the service (parse → pseudonymise → sessions →
   presence → incremental rollups, a day at a time). Then "unique devices per zone per hour for the last 30 days"
   is answered from ``wifi_footfall_area_hourly`` and by a raw scan (``COUNT(DISTINCT device)`` over
   ``wifi_events`` grouped by zone and hour), each timed as the median of several runs. Goal: rollups ≥ 100 ×
   faster. (The raw scan counts devices with a record in the hour; the rollup also counts devices connected
   through the hour without one, so the rollup's answer is the more complete one.)
3. **A year**: a year of zone-hour rollup rows (13 zones × 8,760 hours, synthetic figures) and the API's query
   for one zone's hourly series over the year, and every zone's daily series.

    .venv/bin/python bench/footfall.py [--events 60000] [--clients 4] [--batch 500] [--days 30]
        [--sessions-per-day 12000] [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

GOAL_EPS = 1000 * 10 / 60 * 10


def _mac(rng: random.Random) -> str:
    o = [rng.randrange(256) for _ in range(6)]
    o[0] = (o[0] & 0xFC) | (0x02 if rng.random() < 0.33 else 0)
    return "-".join(f"{x:02X}" for x in o)


def session_records(rng: random.Random, hotspots: list[str], day_start: datetime, sessions: int,
                    interim_s: int = 600, span_s: int | None = None) -> list[tuple[float, bytes]]:
    """(time, JSON line) of ``sessions`` RADIUS sessions spread over one day (busier by day), or uniformly over
    ``span_s`` seconds (sessions then end by ``day_start + span_s``), in time order."""
    out: list[tuple[float, bytes]] = []
    macs = [_mac(rng) for _ in range(max(1, sessions // 2))]      # people come back: ~2 sessions each
    t0 = day_start.timestamp()
    for n in range(sessions):
        hour = rng.choices(range(24), weights=[1, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 5, 4, 4, 5, 6, 7, 7, 6, 4, 3,
                                               2])[0]
        start = t0 + hour * 3600 + rng.randrange(3600)
        length = int(rng.expovariate(1 / 1500)) + 30
        if span_s is not None:
            start = t0 + rng.randrange(span_s)
            length = min(length, int(t0 + span_s - start))
        base = {"Calling-Station-Id": rng.choice(macs), "NAS-Identifier": rng.choice(hotspots),
                "Acct-Session-Id": f"{day_start:%j}{n:07X}"}
        out.append((start, orjson.dumps({**base, "Acct-Status-Type": "Start",
                                         "Event-Timestamp": datetime.fromtimestamp(start, UTC).isoformat()})))
        t = start + interim_s
        while t < start + length:
            stamp = datetime.fromtimestamp(t, UTC).isoformat()
            out.append((t, orjson.dumps({**base, "Acct-Status-Type": "Interim-Update",
                                         "Acct-Session-Time": int(t - start), "Event-Timestamp": stamp})))
            t += interim_s
        end = start + length
        out.append((end, orjson.dumps({**base, "Acct-Status-Type": "Stop", "Acct-Session-Time": length,
                                       "Event-Timestamp": datetime.fromtimestamp(end, UTC).isoformat()})))
    out.sort(key=lambda x: x[0])
    return out


async def start_platform(workdir: Path, clock: Any = None, **extra: Any) -> Any:
    from citydata.app import Platform
    from citydata.config import load_settings

    settings = load_settings(environ={}, data_dir=workdir / "data", mqtt_url="none://", log_level="WARNING",
                             vision_enabled=False, **extra)
    platform = Platform(settings, clock=clock)
    await platform.start()
    return platform


# -- 1. ingest -----------------------------------------------------------------------------------------------
async def ingest(events: int, clients: int, batch: int, workdir: Path) -> dict[str, Any]:
    import httpx

    from citydata.auth import Role

    platform = await start_platform(workdir / "ingest", wifi_flush_s=5.0)
    try:
        assert platform.wifi is not None
        hotspots = sorted(platform.wifi.registry.by_id)
        _, token = await platform.tokens.create(Role.DEVICE, "bench wifi")
        now = platform.clock.now()
        rng = random.Random(1)
        # sessions over the last two hours, all ended by now; trimmed to the event count
        records = session_records(rng, hotspots, now - timedelta(hours=2), sessions=events // 2, span_s=7200)
        records = records[:events]
        lines = [r[1] for r in records]
        bodies = [b"\n".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]
        transport = httpx.ASGITransport(app=platform.app)
        accepted = 0
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for b in bodies:
            queue.put_nowait(b)

        async def client(http: httpx.AsyncClient) -> None:
            nonlocal accepted
            while not queue.empty():
                body = queue.get_nowait()
                r = await http.post("/api/v1/wifi/events", content=body,
                                    headers={"Content-Type": "application/x-ndjson"})
                assert r.status_code == 202, r.text
                accepted += r.json()["accepted"]

        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            began = time.perf_counter()
            await asyncio.gather(*(client(http) for _ in range(clients)))
            elapsed = time.perf_counter() - began
            f0 = time.perf_counter()
            flushed = await platform.wifi.flush(days=True)
            flush_s = time.perf_counter() - f0
        ours = {"events": accepted, "seconds": elapsed, "events_per_s": accepted / elapsed,
                "final_flush_s": flush_s, "final_flush": flushed, "rejected": len(lines) - accepted}
    finally:
        await platform.stop()
    raw = raw_insert(len(lines), workdir / "raw.sqlite")
    return {"ours": ours, "raw": raw, "ratio": ours["events_per_s"] / raw["events_per_s"], "clients": clients,
            "batch": batch}


def raw_insert(n: int, path: Path) -> dict[str, Any]:
    """The floor: prepared rows into an identically shaped table, one executemany per 500 rows."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, at TEXT, hotspot_id TEXT, zone TEXT, subdistrict_code "
                 "TEXT, kind TEXT, device TEXT, randomised INTEGER, session_time_s INTEGER, in_octets INTEGER, "
                 "out_octets INTEGER, fmt TEXT, received_at TEXT)")
    conn.execute("CREATE INDEX ix_e_at ON e (at)")
    rows = [(f"2026-11-21 10:{i % 60:02d}:00.000000", f"wifi-patong-{i % 200:03d}", "patong", "830202", "interim",
             f"{random.getrandbits(128):032x}", i % 3 == 0, 600, 1000, 2000, "jsonl",
             "2026-11-21 10:00:00.000000") for i in range(n)]
    began = time.perf_counter()
    for i in range(0, n, 500):
        conn.executemany("INSERT INTO e (at, hotspot_id, zone, subdistrict_code, kind, device, randomised, "
                         "session_time_s, in_octets, out_octets, fmt, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                         rows[i:i + 500])
        conn.commit()
    elapsed = time.perf_counter() - began
    conn.close()
    return {"events": n, "seconds": elapsed, "events_per_s": n / elapsed}


# -- 2. the 30-day query --------------------------------------------------------------------------------------
def _median_ms(fn: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


async def query(days: int, per_day: int, workdir: Path) -> dict[str, Any]:
    from citydata.clock import DrivenClock

    first = date(2026, 10, 1)
    clock = DrivenClock(datetime(first.year, first.month, first.day, tzinfo=UTC))
    platform = await start_platform(workdir / "query", clock=clock, wifi_flush_s=0, wifi_raw_retention_days=0)
    try:
        wifi = platform.wifi
        assert wifi is not None
        hotspots = sorted(wifi.registry.by_id)
        rng = random.Random(2)
        events = 0
        began = time.perf_counter()
        for d in range(days):
            day0 = datetime(first.year, first.month, first.day, tzinfo=wifi.pseudo.tz) + timedelta(days=d)
            clock.set(day0.astimezone(UTC) + timedelta(days=1, hours=1))
            lines = [r[1].decode() for r in session_records(rng, hotspots, day0, per_day)]
            for i in range(0, len(lines), 5000):
                res = await wifi.ingest_lines(lines[i:i + 5000], "jsonl", "bench")
                events += res.accepted
                await wifi.flush(days=False)
            await wifi.flush(days=True)
        load_s = time.perf_counter() - began
        path = Path(platform.store.url.split("///", 1)[1])
    finally:
        await platform.stop()
    t1 = datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=days)
    t0 = t1 - timedelta(days=30)
    a, b = t0.strftime("%Y-%m-%d %H:%M:%S"), t1.strftime("%Y-%m-%d %H:%M:%S")
    conn = sqlite3.connect(path)
    rollup_sql = ("SELECT area, hour, devices FROM wifi_footfall_area_hourly WHERE level = 'zone' AND hour >= ? "
                  "AND hour < ? ORDER BY hour, area")
    raw_sql = ("SELECT zone, substr(at, 1, 13) AS h, COUNT(DISTINCT device) FROM wifi_events WHERE at >= ? AND "
               "at < ? GROUP BY zone, h ORDER BY h, zone")
    rollup_ms, rollup_rows = _median_ms(lambda: conn.execute(rollup_sql, (a, b)).fetchall(), 15)
    raw_ms, raw_rows = _median_ms(lambda: conn.execute(raw_sql, (a, b)).fetchall(), 3)
    counts = conn.execute("SELECT (SELECT COUNT(*) FROM wifi_events), (SELECT COUNT(*) FROM wifi_presence), "
                          "(SELECT COUNT(*) FROM wifi_footfall_hourly), (SELECT COUNT(*) FROM "
                          "wifi_footfall_area_hourly)").fetchone()
    conn.close()
    return {"days": days, "sessions_per_day": per_day, "events": events, "load_s": load_s,
            "load_events_per_s": events / load_s, "rollup_ms": rollup_ms, "raw_ms": raw_ms,
            "ratio": raw_ms / rollup_ms, "rollup_rows": len(rollup_rows), "raw_rows": len(raw_rows),
            "stored": {"events": counts[0], "presence": counts[1], "hotspot_hours": counts[2],
                       "area_hours": counts[3]}}


# -- 3. a year of rollups -------------------------------------------------------------------------------------
async def year(workdir: Path) -> dict[str, Any]:
    from citydata.wifi import views
    from citydata.wifi.schema import wifi_footfall_area_daily, wifi_footfall_area_hourly

    platform = await start_platform(workdir / "year", wifi_flush_s=0)
    try:
        wifi = platform.wifi
        assert wifi is not None
        zones = sorted(wifi.registry.zones())
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        rng = random.Random(3)
        rows, drows = [], []
        for h in range(365 * 24):
            for z in zones:
                n = rng.randrange(20, 500)
                rows.append({"level": "zone", "area": z, "hour": t0 + timedelta(hours=h), "hotspots": 10,
                             "devices": n, "randomised_devices": n // 3, "new_devices": n // 2,
                             "returning_devices": n - n // 2, "sessions": n, "dwell_s": n * 900.0})
        for d in range(365):
            for z in zones:
                drows.append({"level": "zone", "area": z, "day": date(2025, 1, 1) + timedelta(days=d), "hotspots": 10,
                              "devices": 5000, "randomised_devices": 1600, "new_devices": 5000,
                              "returning_devices": 0, "sessions": 9000, "dwell_s": 8e6})
        for i in range(0, len(rows), 20_000):
            await platform.store.insert_rows(wifi_footfall_area_hourly, rows[i:i + 20_000])
        await platform.store.insert_rows(wifi_footfall_area_daily, drows)
        t1 = t0 + timedelta(days=365)
        times_h, times_d = [], []
        for _ in range(10):
            t = time.perf_counter()
            res = await views.footfall(wifi, level="zone", area="patong", granularity="hour", start=t0, end=t1,
                                       limit=100_000)
            times_h.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            resd = await views.footfall(wifi, level="zone", area=None, granularity="day", start=t0, end=t1,
                                        limit=100_000)
            times_d.append((time.perf_counter() - t) * 1000)
        return {"area_hour_rows": len(rows), "one_zone_hourly_year_ms": statistics.median(times_h),
                "one_zone_hourly_rows": len(res["items"]), "all_zones_daily_year_ms": statistics.median(times_d),
                "all_zones_daily_rows": len(resd["items"])}
    finally:
        await platform.stop()


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sessions-per-day", type=int, default=12_000)
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.events, args.days, args.sessions_per_day = 15_000, 4, 3000
    with tempfile.TemporaryDirectory(prefix="citydata-bench-") as tmp:
        work = Path(tmp)
        ing = await ingest(args.events, args.clients, args.batch, work)
        print(f"ingest: {ing['ours']['events_per_s']:,.0f} events/s (raw sqlite3 {ing['raw']['events_per_s']:,.0f}, "
              f"ratio {ing['ratio']:.2f}; goal {GOAL_EPS:,.0f})", flush=True)
        q = await query(args.days, args.sessions_per_day, work)
        print(f"query over {q['days']} days ({q['events']:,} events): rollup {q['rollup_ms']:.2f} ms, raw scan "
              f"{q['raw_ms']:.0f} ms, ratio {q['ratio']:.0f}", flush=True)
        y = await year(work)
        print(f"a year: one zone hourly {y['one_zone_hourly_year_ms']:.1f} ms, all zones daily "
              f"{y['all_zones_daily_year_ms']:.1f} ms", flush=True)
    window = min(30, q["days"])
    report = {
        "ingest": ing, "query": q, "year": y, "date": datetime.now(UTC).isoformat(),
        "summary": [
            {"metric": "WiFi events ingested over HTTP: parse → pseudonymise → sessions → stored (events/s)",
             "ours": ing["ours"]["events_per_s"], "baseline": ing["raw"]["events_per_s"],
             "baseline_name": "raw sqlite3 executemany of prepared rows", "ratio": ing["ratio"],
             "goal": f">= {GOAL_EPS:,.0f} events/s",
             "note": f"{ing['ours']['events']:,} RADIUS JSON lines, {ing['batch']}/request, {ing['clients']} clients, "
                     f"in-process ASGI, SQLite, rollup timer 5 s; final flush {ing['ours']['final_flush_s']:.2f} s"},
            {"metric": f"unique devices per zone per hour, {window} days: rollups vs raw scan (ms)",
             "ours": q["rollup_ms"], "baseline": q["raw_ms"],
             "baseline_name": "COUNT(DISTINCT device) over wifi_events by zone and hour", "ratio": q["ratio"],
             "goal": ">= 100 x faster",
             "note": f"{q['events']:,} events over {q['days']} days, 1,000 hotspots; loaded through the service at "
                     f"{q['load_events_per_s']:,.0f} events/s incl. incremental rollups"},
            {"metric": "a year of rollups: one zone hourly (8,760 rows) / all zones daily, via the API query (ms)",
             "ours": y["one_zone_hourly_year_ms"], "baseline": y["all_zones_daily_year_ms"],
             "baseline_name": "all zones daily", "note": f"{y['area_hour_rows']:,} zone-hour rows stored"},
        ]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    asyncio.run(main())
