"""Observations per second through the store's public write path, against the raw driver on the same schema.

    .venv/bin/python bench/store_write.py [--rows N] [--json OUT] [--batch 100] [--callers 20] [--pg-url URL]

"ours": many concurrent callers, each taking ``--batch`` rows at a time, calling ``allocate_ids`` then
``insert_rows`` (what the ingest does), until every row is stored; the clock stops when the last caller's write
is acknowledged (committed).
"raw": the same rows in one transaction through the bare driver on a database with the same schema and indexes:
``sqlite3`` ``executemany`` (WAL, synchronous=FULL, like the store), and asyncpg ``copy_records_to_table``.
The raw figure includes turning the row dicts into driver parameters (a raw writer has to do that too).

Each side runs ``--repeat`` times (alternating, fresh database each time) and the median run is reported.
PostgreSQL runs in fresh schemas of the test database, dropped afterwards; it is skipped when unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from citydata.clock import SystemClock
from citydata.config import Settings, load_settings
from citydata.store import create_store, schema

T0 = datetime(2026, 1, 1, tzinfo=UTC)
COLUMNS = ("id", "datastream_id", "phenomenon_time", "result_time", "result_number")


def make_rows(n: int, streams: int = 200) -> list[dict[str, Any]]:
    """Rows as the ingest has them: aware datetimes, a float result; ids are added by the writer under test."""
    out = []
    for i in range(n):
        t = T0 + timedelta(seconds=60 * (i // streams))
        out.append({"datastream_id": 1 + i % streams, "phenomenon_time": t, "result_time": t,
                    "result_number": (i % 977) / 10.0})
    return out


def settings_for(data_dir: Path, **kw: Any) -> Settings:
    return load_settings(environ={}, data_dir=data_dir, log_format="text", **kw)


async def through_store(settings: Settings, rows: list[dict[str, Any]], batch: int,
                        callers: int) -> dict[str, Any]:
    store = create_store(settings, SystemClock())
    await store.start()
    try:
        chunks = [rows[i:i + batch] for i in range(0, len(rows), batch)]
        queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        for c in chunks:
            queue.put_nowait(c)

        async def caller() -> int:
            new = 0
            while not queue.empty():
                part = queue.get_nowait()
                ids = await store.allocate_ids(schema.observations, len(part))
                new += await store.insert_rows(schema.observations,
                                               [{**r, "id": i} for r, i in zip(part, ids, strict=True)])
            return new

        assert store.writer is not None
        before = (store.writer.stats.commits, store.writer.stats.rows)
        started = time.perf_counter()
        stored = sum(await asyncio.gather(*(caller() for _ in range(callers))))
        seconds = time.perf_counter() - started
        commits = store.writer.stats.commits - before[0]
        written = store.writer.stats.rows - before[1]
        assert stored == len(rows), (stored, len(rows))
        return {"seconds": seconds, "rows_per_s": len(rows) / seconds, "commits": commits,
                "rows_per_commit": len(rows) / commits, "jobs_rows_per_commit": written / commits}
    finally:
        await store.stop()


async def migrate_only(settings: Settings) -> None:
    store = create_store(settings, SystemClock())
    await store.start()
    await store.stop()


def sqlite_raw(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    sql = f"INSERT OR IGNORE INTO observations ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    fmt = "%Y-%m-%d %H:%M:%S.%f"  # what SQLAlchemy stores for a DATETIME on SQLite
    started = time.perf_counter()
    params = [(i + 1, r["datastream_id"], r["phenomenon_time"].astimezone(UTC).strftime(fmt),
               r["result_time"].astimezone(UTC).strftime(fmt), r["result_number"]) for i, r in enumerate(rows)]
    con.execute("BEGIN")
    con.executemany(sql, params)
    con.execute("COMMIT")
    seconds = time.perf_counter() - started
    (count,) = con.execute("SELECT count(*) FROM observations").fetchone()
    con.close()
    assert count == len(rows)
    return {"seconds": seconds, "rows_per_s": len(rows) / seconds}


async def pg_raw(url: str, schema_name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    import asyncpg

    con = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        records = [(i + 1, r["datastream_id"], r["phenomenon_time"], r["result_time"], r["result_number"])
                   for i, r in enumerate(rows)]
        async with con.transaction():
            await con.copy_records_to_table("observations", records=records, columns=list(COLUMNS),
                                            schema_name=schema_name)
        seconds = time.perf_counter() - started
        count = await con.fetchval(f'SELECT count(*) FROM "{schema_name}".observations')
    finally:
        await con.close()
    assert count == len(rows)
    return {"seconds": seconds, "rows_per_s": len(rows) / seconds}


def pg_reachable(url: str) -> bool:
    import socket

    hostport = url.split("://", 1)[1].split("/", 1)[0].split("@")[-1]
    host, _, port = hostport.partition(":")
    try:
        with socket.create_connection((host, int(port or 5432)), timeout=1.0):
            return True
    except OSError:
        return False


async def drop_schemas(url: str, names: list[str]) -> None:
    import asyncpg

    con = await asyncpg.connect(url)
    try:
        for name in names:
            await con.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await con.close()


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100, help="rows per caller call")
    parser.add_argument("--callers", type=int, default=50, help="concurrent callers")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median is reported")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here as JSON")
    args = parser.parse_args()
    rows = make_rows(args.rows)
    report: dict[str, Any] = {"rows": args.rows, "batch": args.batch, "callers": args.callers}

    def summary(ours: list[dict[str, Any]], raw: list[dict[str, Any]]) -> dict[str, Any]:
        o = sorted(ours, key=lambda r: r["rows_per_s"])[len(ours) // 2]  # the median run
        r = sorted(raw, key=lambda r: r["rows_per_s"])[len(raw) // 2]
        return {"ours": o, "raw": r, "ratio": o["rows_per_s"] / r["rows_per_s"],
                "ours_runs": [x["rows_per_s"] for x in ours], "raw_runs": [x["rows_per_s"] for x in raw]}

    ours_runs: list[dict[str, Any]] = []
    raw_runs: list[dict[str, Any]] = []
    for n in range(args.repeat):  # alternate raw and ours, each on a fresh database file
        with tempfile.TemporaryDirectory(prefix="citydata-bench-") as tmp:
            ours_dir, raw_dir = Path(tmp) / f"ours{n}", Path(tmp) / f"raw{n}"
            await migrate_only(settings_for(raw_dir))
            raw_runs.append(sqlite_raw(raw_dir / "citydata.db", rows))
            ours_runs.append(await through_store(settings_for(ours_dir), rows, args.batch, args.callers))
    report["sqlite"] = summary(ours_runs, raw_runs)

    if pg_reachable(args.pg_url):
        ours_runs, raw_runs = [], []
        for _ in range(args.repeat):
            tag = uuid.uuid4().hex[:8]
            ours_schema, raw_schema = f"bench_ours_{tag}", f"bench_raw_{tag}"
            try:
                with tempfile.TemporaryDirectory(prefix="citydata-bench-") as tmp:
                    await migrate_only(settings_for(Path(tmp), db_url=args.pg_url, db_schema=raw_schema))
                    raw_runs.append(await pg_raw(args.pg_url, raw_schema, rows))
                    ours_runs.append(await through_store(
                        settings_for(Path(tmp), db_url=args.pg_url, db_schema=ours_schema),
                        rows, args.batch, args.callers))
            finally:
                await drop_schemas(args.pg_url, [ours_schema, raw_schema])
        report["postgresql"] = summary(ours_runs, raw_runs)
    else:
        report["postgresql"] = None

    for name in ("sqlite", "postgresql"):
        r = report[name]
        if r is None:
            print(f"{name:10s}  skipped (not reachable)")
            continue
        print(f"{name:10s}  ours {r['ours']['rows_per_s']:>10,.0f} obs/s   raw {r['raw']['rows_per_s']:>10,.0f} obs/s"
              f"   ratio {r['ratio']:.2f}   rows/commit {r['ours']['rows_per_commit']:.0f}"
              f" ({r['ours']['commits']} commits)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    asyncio.run(main())
