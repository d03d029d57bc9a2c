#!/usr/bin/env python3
"""Government imports, planning analytics and the CKAN API: throughput against the raw engine in the same run.

1. **Dataset import** (``DatasetService.import_file``: read, infer and parse types, join every row to the
   reference geography by Thai name, one-transaction versioned write) of an N-row CSV, against the raw floor:
   ``csv.reader`` + ``sqlite3.executemany`` of the same rows into a plain table (no typing, no join).
2. **Tourism density over a year of WiFi rollups** (17 sub-districts × 8,760 hours): the ``tourism_density``
   query for 30 and 365 days, against one raw ``sqlite3`` ``GROUP BY area, hour-of-day`` over the same rows.
3. **CKAN ``datastore_search``** (crime statistics, a filter, a sort, 100 rows) through the in-process ASGI
   client, against calling the action function directly (the HTTP + envelope + key/rate-limit overhead).

    .venv/bin/python bench/opendata.py [--rows 100000] [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

SUBDISTRICTS = ("830101", "830102", "830103", "830104", "830105", "830106", "830107", "830108", "830201",
                "830202", "830203", "830301", "830302", "830303", "830304", "830305", "830306")


def write_csv(path: Path, rows: int, names: list[str]) -> None:
    rng = random.Random(1)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["record_no", "tambon", "visitors", "day", "rate"])
        for i in range(rows):
            w.writerow([f"R{i:07d}", rng.choice(names), rng.randint(0, 5000),
                        f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2567", f"{rng.random() * 100:.2f}"])


def raw_import(path: Path, db: Path) -> float:
    t = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE raw (record_no TEXT, tambon TEXT, visitors TEXT, day TEXT, rate TEXT)")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        conn.executemany("INSERT INTO raw VALUES (?, ?, ?, ?, ?)", reader)
    conn.commit()
    conn.close()
    return time.perf_counter() - t


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.days, args.requests = 20_000, 60, 300

    import httpx

    from citydata.app import Platform
    from citydata.config import load_settings
    from citydata.datasets import GeoJoin, ImportOptions
    from citydata.datasets.samples import SAMPLES
    from citydata.opendata.ckan import call
    from citydata.wifi.schema import wifi_footfall_area_hourly

    with tempfile.TemporaryDirectory(prefix="citydata-bench-") as tmp:
        d = Path(tmp)
        settings = load_settings(environ={}, data_dir=d / "data", mqtt_url="none://", wifi_enabled=False,
                                 vision_enabled=False, log_format="text", log_level="WARNING")
        async with Platform(settings) as p:
            assert p.geography is not None and p.analytics is not None and p.opendata is not None
            names = [pl.name_th for pl in p.geography.by_kind("subdistrict") if pl.name_th]
            src = d / "visitors.csv"
            write_csv(src, args.rows, names)
            raw_s = raw_import(src, d / "raw.db")
            t = time.perf_counter()
            report = await p.analytics.datasets.import_file(
                src, "visitors", ImportOptions(types={"visitors": "integer", "day": "date", "rate": "number"},
                                               join=GeoJoin("name", ("tambon",))))
            ours_s = time.perf_counter() - t
            assert report.committed and report.accepted == args.rows, report.rejected[:3]
            imp = {"rows": args.rows, "ours_s": ours_s, "raw_s": raw_s, "ours_rows_per_s": args.rows / ours_s,
                   "raw_rows_per_s": args.rows / raw_s, "ratio": raw_s / ours_s}
            print(f"import: {imp['ours_rows_per_s']:,.0f} rows/s (raw {imp['raw_rows_per_s']:,.0f}), "
                  f"ratio {imp['ratio']:.3f}", flush=True)

            start = datetime(2025, 1, 1, tzinfo=UTC)
            rng = random.Random(2)
            rows = [{"level": "subdistrict", "area": code, "hour": start + timedelta(hours=h), "hotspots": 5,
                     "devices": rng.randint(0, 800), "randomised_devices": 0, "new_devices": 0,
                     "returning_devices": 0, "sessions": 1, "dwell_s": 1.0}
                    for h in range(args.days * 24) for code in SUBDISTRICTS]
            for i in range(0, len(rows), 20_000):
                await p.store.insert_rows(wifi_footfall_area_hourly, rows[i:i + 20_000])
            density: dict[str, Any] = {"rows": len(rows)}
            db_path = str(d / "data" / "citydata.db")
            for days in (30, args.days):
                window = {"start": (start + timedelta(days=args.days - days)).isoformat(),
                          "end": (start + timedelta(days=args.days)).isoformat()}
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    result = await p.analytics.run("tourism_density", window, cache=False)
                    times.append(time.perf_counter() - t)
                raw_times = []
                for _ in range(3):
                    conn = sqlite3.connect(db_path)
                    t = time.perf_counter()
                    conn.execute("SELECT area, (CAST(strftime('%H', hour) AS INTEGER) + 7) % 24, SUM(devices) "
                                 "FROM wifi_footfall_area_hourly WHERE level = 'subdistrict' AND hour >= ? "
                                 "AND hour < ? GROUP BY 1, 2",
                                 (window["start"][:19].replace("T", " "), window["end"][:19].replace("T", " ")),
                                 ).fetchall()
                    raw_times.append(time.perf_counter() - t)
                    conn.close()
                density[f"{days}d"] = {"ours_ms": min(times) * 1000, "raw_ms": min(raw_times) * 1000,
                                       "ratio": min(raw_times) / min(times), "result_rows": len(result.rows)}
                print(f"tourism_density {days} days: {min(times) * 1000:.0f} ms (raw GROUP BY "
                      f"{min(raw_times) * 1000:.0f} ms)", flush=True)

            for sample in SAMPLES:
                await p.analytics.datasets.import_file(sample.path, sample.name, sample.options())
            pkg = await call(p.opendata, "package_show", {"id": "phuket-crime-statistics"}, "http://b")
            params = {"resource_id": pkg["resources"][0]["id"], "filters": {"category": "theft"},
                      "sort": "cases desc", "limit": 100}
            p.opendata.keys.anonymous_rate = 10**9
            await call(p.opendata, "datastore_search", params, "http://b")      # warm the published cache
            t = time.perf_counter()
            for _ in range(args.requests):
                await call(p.opendata, "datastore_search", params, "http://b")
            direct = args.requests / (time.perf_counter() - t)
            _, key = await p.opendata.keys.create("bench", rate_per_min=100_000)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app), base_url="http://b") as c:
                body = json.dumps(params).encode()
                headers = {"X-CKAN-API-Key": key, "content-type": "application/json"}
                t = time.perf_counter()
                for _ in range(args.requests):
                    r = await c.post("/api/3/action/datastore_search", content=body, headers=headers)
                    assert r.status_code == 200, r.text
                http = args.requests / (time.perf_counter() - t)
            ckan = {"requests": args.requests, "http_per_s": http, "direct_per_s": direct, "ratio": http / direct}
            print(f"datastore_search: {http:,.0f} req/s over ASGI, {direct:,.0f} calls/s direct", flush=True)

    report: dict[str, Any] = {
        "import": imp, "density": density, "ckan": ckan, "date": datetime.now(UTC).isoformat(),
        "summary": [
            {"metric": f"dataset import: {args.rows:,}-row CSV typed, Thai-name joined, versioned (rows/s)",
             "ours": imp["ours_rows_per_s"], "baseline": imp["raw_rows_per_s"],
             "baseline_name": "csv.reader + sqlite3 executemany, untyped, no join", "ratio": imp["ratio"],
             "note": "SQLite file, one transaction per version"},
            *[{"metric": f"analytics tourism_density, {k} of {len(SUBDISTRICTS)} sub-district hourly rollups (ms)",
               "ours": v["ours_ms"], "baseline": v["raw_ms"], "baseline_name": "raw sqlite3 GROUP BY area, hour",
               "ratio": v["ratio"], "note": "ours adds typed rows, Python hour-of-day in the display time zone, "
                                            "tracking and arrivals"}
              for k, v in density.items() if isinstance(v, dict)],
            {"metric": "CKAN datastore_search, filter + sort + 100 rows (req/s)", "ours": ckan["http_per_s"],
             "baseline": ckan["direct_per_s"], "baseline_name": "the action function called directly",
             "ratio": ckan["ratio"], "note": "in-process ASGI client, API key, rate limit and usage count"},
        ]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    asyncio.run(main())
