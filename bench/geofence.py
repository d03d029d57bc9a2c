#!/usr/bin/env python3
"""Tourist tracking benchmark: the full ping path with 300,000 active travellers, and the geofence check alone.

1. **Geofence check alone** (same run, same polygons, same points): ``FenceSet.classify`` (the buffered Phuket
   province with the accuracy-circle rule, plus operator zones in an STRtree) against Shapely's raw vectorised
   ``contains_xy`` on the prepared polygons, one call per polygon. Points are tourist-like: scattered around
   the beaches, the Old Town and the airport, a few over the Sarasin bridge and at sea. Goal: ≥ 0.5 of raw.
2. **Full path**: a platform (SQLite file, in-process bus with its journal, no MQTT) with 300,000 active
   travellers, each with its own device token (the rows are bulk-loaded, as a real enrolment would have left
   them). Concurrent clients post ``POST /api/v1/tracking/pings`` through the in-process ASGI transport
   (HTTP semantics, no sockets), each request one traveller's batch; each report is authenticated, checked,
   run through the geofence, stored, and its transitions published. Goal: ≥ 10 × Phuket peak
   (300,000 travellers ÷ 1,800 s ≈ 167 reports/s).

    .venv/bin/python bench/geofence.py [--travellers 300000] [--reports 30000] [--batch 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import string
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

PLACES = [(98.2913, 7.8875, 0.30), (98.2933, 7.8478, 0.15), (98.3001, 7.8187, 0.12), (98.3880, 7.8840, 0.15),
          (98.3218, 7.7721, 0.08), (98.2806, 7.9754, 0.06), (98.30655, 8.10846, 0.06), (98.3613, 7.8281, 0.04),
          (98.4013, 7.8557, 0.02), (98.2974, 8.2018, 0.01), (98.2800, 8.3000, 0.01)]
PEAK = 300_000 / 1800


def tourist_points(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = np.array([w for *_, w in PLACES])
    which = rng.choice(len(PLACES), size=n, p=weights / weights.sum())
    centre = np.array([(x, y) for x, y, _ in PLACES])[which]
    spread = rng.normal(0, 0.012, size=(n, 2))          # ~1.3 km around each place
    acc = rng.choice([5.0, 10.0, 20.0, 50.0, 150.0, 1200.0], size=n, p=[.2, .3, .25, .15, .08, .02])
    return centre[:, 0] + spread[:, 0], centre[:, 1] + spread[:, 1], acc


def geofence_alone(n: int, repeat: int) -> dict[str, Any]:
    from citydata.geo import read_reference_city
    from citydata.geo.index import Geography
    from citydata.tracking.geofence import Fence, FenceSet

    geo = Geography(read_reference_city("phuket"))
    ph = geo.require("province:83")
    home = Fence(ph.id, ph.name_en, ph.geometry, 1500.0, home=True)
    zones = [Fence(f"zone:{p.code}", p.name_en, shapely.Point(p.lon, p.lat).buffer(0.005))
             for p in geo.by_kind("beach") + geo.by_kind("pier")]
    zones += [Fence(f"zone:{s.code}", s.name_en, s.geometry) for s in geo.by_kind("subdistrict")]
    fences = FenceSet(home, zones)
    x, y, acc = tourist_points(n)
    polys = [home.test] + [z.test for z in zones]
    ours, raw = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        for g in polys:
            shapely.contains_xy(g, x, y)
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        home_obs, _pairs = fences.classify(x, y, acc)
        ours.append(time.perf_counter() - t)
    o, r = statistics.median(ours), statistics.median(raw)
    return {"points": n, "polygons": len(polys), "ours_s": o, "raw_s": r, "ours_per_s": n / o, "raw_per_s": n / r,
            "ratio": r / o, "outside": int((home_obs == 0).sum()), "ambiguous": int((home_obs == -1).sum()),
            "ours_runs": ours, "raw_runs": raw}


async def bulk_travellers(platform: Any, n: int, arrived: datetime) -> list[tuple[str, str]]:
    """n active, enrolled travellers (rows as enrolment leaves them); returns (traveller_id, token)."""
    from citydata.store.schema import api_tokens
    from citydata.tracking.privacy import new_traveller_id
    from citydata.tracking.schema import tracking_travellers

    alphabet = string.ascii_letters + string.digits
    reported = platform.clock.now()
    out: list[tuple[str, str]] = []
    chunk = 20_000
    for start in range(0, n, chunk):
        tokens, travellers = [], []
        for _ in range(min(chunk, n - start)):
            tid = new_traveller_id()
            token_id = "".join(secrets.choice(alphabet) for _ in range(12))
            secret = secrets.token_urlsafe(32)
            tokens.append({"id": token_id, "name": "tourist app", "role": "device", "agency": None,
                           "device_id": None, "secret_hash": platform.tokens.hash_secret(secret),
                           "created_at": arrived, "created_by": "bench", "expires_at": None, "last_used_at": None,
                           "revoked_at": None})
            travellers.append({"traveller_id": tid, "status": "active", "checkpoint": "HKT", "arrived_at": arrived,
                               "hotel_id": None, "screening": {"health": "pass"}, "screening_failed": False,
                               "consent": {"tracking": True}, "device_token_id": token_id, "created_at": arrived,
                               # reporting normally: the last report within the last 25 minutes
                               "last_report_at": reported - timedelta(seconds=random.uniform(0, 1500))})
            out.append((tid, f"cd_{token_id}_{secret}"))
        await platform.store.insert_rows(api_tokens, tokens)
        await platform.store.insert_rows(tracking_travellers, travellers)
    return out


async def full_path(travellers: int, reports: int, batches: list[int], clients: int, workdir: Path,
                    **overrides: Any) -> list[dict[str, Any]]:
    """One platform with ``travellers`` enrolled travellers; one run of ``reports`` reports per batch size."""
    import httpx
    from sqlalchemy import text

    from citydata.api.routes import tracking as routes
    from citydata.app import Platform
    from citydata.config import load_settings
    from citydata.tracking import start_tracking

    settings = load_settings(environ={}, data_dir=workdir / "data", mqtt_url="none://", log_level="WARNING",
                             http_port=0, **overrides)
    platform = Platform(settings)
    results = []
    async with platform:
        now = platform.clock.now()
        t_load = time.perf_counter()
        people = await bulk_travellers(platform, travellers, now - timedelta(hours=6))
        service = await start_tracking(platform)
        load_s = time.perf_counter() - t_load
        assert platform.app is not None
        platform.app.include_router(routes.router)
        x, y, acc = tourist_points(travellers, seed=2)
        rng = random.Random(3)
        reported: dict[int, int] = {}
        clock_base = now - timedelta(minutes=50)
        for batch in batches:
            requests = reports // batch
            sent, accepted = [0], [0]
            errors: dict[int, int] = {}
            published_before = platform.bus.stats.published
            commits_before = platform.store.writer.stats.commits if platform.store.writer else 0
            misses_before = platform.tokens.cache_misses

            async def client(batch: int = batch, requests: int = requests, sent: list[int] = sent,
                             accepted: list[int] = accepted, errors: dict[int, int] = errors) -> None:
                transport = httpx.ASGITransport(app=platform.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                    while sent[0] < requests:
                        sent[0] += 1
                        who = rng.randrange(len(people))
                        _tid, token = people[who]
                        n = reported[who] = reported.get(who, -1) + 1
                        # each traveller stays around its own place, walking a little between reports
                        pings = [{"t": (clock_base + timedelta(minutes=n, seconds=j)).isoformat(),
                                  "lat": float(y[who]) + j * 1e-5, "lon": float(x[who]) + (n % 7) * 1e-4,
                                  "accuracy_m": float(acc[who]), "battery": 80, "source": "gps"}
                                 for j in range(batch)]
                        r = await http.post("/api/v1/tracking/pings", json={"pings": pings},
                                            headers={"Authorization": f"Bearer {token}"})
                        if r.status_code == 202:
                            accepted[0] += r.json()["accepted"]
                        else:
                            errors[r.status_code] = errors.get(r.status_code, 0) + 1

            t0 = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            elapsed = time.perf_counter() - t0
            await service.flush()
            results.append({
                "travellers": travellers, "requests": requests, "batch": batch, "clients": clients,
                "reports": requests * batch, "accepted": accepted[0], "errors": errors, "elapsed_s": elapsed,
                "reports_per_s": requests * batch / elapsed, "requests_per_s": requests / elapsed,
                "events_published": platform.bus.stats.published - published_before,
                "store_commits": (platform.store.writer.stats.commits if platform.store.writer else 0) - commits_before,
                "token_cache_misses": platform.tokens.cache_misses - misses_before, "load_s": load_s})
            print(f"full path, batch {batch}: {results[-1]['reports_per_s']:,.0f} reports/s "
                  f"({results[-1]['requests_per_s']:,.0f} requests/s, errors {errors})", flush=True)
        stored = await platform.store.scalar(text("SELECT count(*) FROM tracking_pings"))
        results[-1]["stored_total"] = stored
        await service.stop()
    return results


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--travellers", type=int, default=300_000)
    parser.add_argument("--reports", type=int, default=30_000)
    parser.add_argument("--batches", default="10,1", help="pings per request (one traveller's batch), comma list; "
                                                          "the first is the headline")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--points", type=int, default=300_000, help="points for the geofence-alone part")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="30,000 travellers, 5,000 reports")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.travellers, args.reports, args.points = 30_000, 5_000, 100_000
    alone = geofence_alone(args.points, args.repeat)
    print(f"geofence alone: ours {alone['ours_per_s']:,.0f} pts/s, raw contains_xy ({alone['polygons']} polygons) "
          f"{alone['raw_per_s']:,.0f} pts/s, ratio {alone['ratio']:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="citydata-bench-") as tmp:
        runs = await full_path(args.travellers, args.reports, [int(b) for b in args.batches.split(",")],
                               args.clients, Path(tmp))

    report = {
        "geofence_alone": alone, "full_path": runs, "date": datetime.now(UTC).isoformat(),
        "summary": [
            {"metric": f"tracking: full ping path, HTTP batch of {r['batch']} → stored → geofence → events "
                       "(reports/s)",
             "ours": r["reports_per_s"], "baseline": PEAK,
             "baseline_name": "Phuket peak: 300,000 travellers reporting every 1,800 s",
             "ratio": r["reports_per_s"] / PEAK, "goal": 10.0,
             "note": f"{r['travellers']:,} active travellers, {r['batch']} ping(s)/request "
                     f"({r['requests_per_s']:,.0f} requests/s), {r['clients']} concurrent clients, in-process "
                     "ASGI client in the same process, SQLite"} for r in runs] + [
            {"metric": "tracking: geofence check alone (points/s)", "ours": alone["ours_per_s"],
             "baseline": alone["raw_per_s"],
             "baseline_name": f"shapely.contains_xy on the same {alone['polygons']} prepared polygons",
             "ratio": alone["ratio"], "goal": 0.5,
             "note": "ours adds the 1.5 km tolerance, the accuracy circle and an STRtree for the zones"},
        ]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    asyncio.run(main())
