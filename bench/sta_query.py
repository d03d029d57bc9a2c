"""SensorThings reads on a big table, against hand-written SQL and a trivial GET measured in the same run.

    .venv/bin/python bench/sta_query.py [--quick] [--json OUT] [--rows 10000000] [--streams 100]
                                        [--clients 16] [--seconds 8] [--profile]

``--profile`` adds a py-spy recording of the server during an extra run of each query (never while measuring).

Set-up: a fresh ``python -m citydata serve`` (SQLite) gets ``--streams`` Datastreams through the API and one
Observation each (so FeaturesOfInterest exist); it is stopped, ``--rows`` observations are added by raw
``executemany`` into its file (60 s apart per stream, results 0..40), and it is started again.

Each query runs through HTTP (wrk, ``--clients`` connections, a different Datastream every request, cycling
over all of them) and as hand-written SQL for the same answer through the same driver (``sqlite3``, one
connection, ``fetchall``, cycling over the same Datastreams) in the benchmark process. Goal: the API within 2x
of the SQL (ratio >= 0.5). The "SQL+HTTP floor" column is what a server doing exactly that SQL behind a trivial
GET would reach (1 / (1/sql + 1/trivial)), to tell HTTP cost from query cost.

``GET Datastreams(id)/Observations?$top=100`` is also compared with ``GET /hello`` of a trivial FastAPI app under
the same uvicorn settings, in its own process. Goal: >= 0.1x. ``--quick``: 1M rows, shorter runs.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SQLITE_TIME,
    Profiler,
    Server,
    Trivial,
    count_rows,
    create_streams,
    generated_fois,
    lua_get,
    make_token,
    prefill,
    print_profile,
    print_table,
    verdict,
    write_json,
    wrk,
)

T_SEED = datetime(2024, 12, 31, tzinfo=UTC)
T_PREFILL = datetime(2025, 1, 1, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def path(p: str, params: dict[str, str]) -> str:
    return f"/v1.1/{p}?" + urlencode(params, quote_via=quote, safe="$(),;=/:'")


def queries(ids: list[int], window: tuple[datetime, datetime]) -> list[dict[str, Any]]:
    x, y = window
    xs, ys = x.strftime(SQLITE_TIME), y.strftime(SQLITE_TIME)
    return [
        {"name": "latest value", "goal": 0.5,
         "paths": [path(f"Datastreams({i})/Observations", {"$orderby": "phenomenonTime desc", "$top": "1"})
                   for i in ids],
         "sql": "SELECT * FROM observations WHERE datastream_id = ? ORDER BY phenomenon_time DESC LIMIT 1",
         "params": [(i,) for i in ids]},
        {"name": "time window $top=100", "goal": 0.5,
         "paths": [path(f"Datastreams({i})/Observations",
                        {"$filter": f"phenomenonTime ge {iso(x)} and phenomenonTime lt {iso(y)}",
                         "$orderby": "phenomenonTime", "$top": "100"}) for i in ids],
         "sql": "SELECT * FROM observations WHERE datastream_id = ? AND phenomenon_time >= ? AND "
                "phenomenon_time < ? ORDER BY phenomenon_time LIMIT 100",
         "params": [(i, xs, ys) for i in ids]},
        {"name": "result gt 25 $top=100", "goal": 0.5,
         "paths": [path(f"Datastreams({i})/Observations", {"$filter": "result gt 25", "$top": "100"})
                   for i in ids],
         "sql": "SELECT * FROM observations WHERE datastream_id = ? AND result_number > 25 ORDER BY id LIMIT 100",
         "params": [(i,) for i in ids]},
        {"name": "Datastreams $expand latest", "goal": 0.5,
         "paths": [path("Datastreams", {"$top": "100",
                                        "$expand": "Observations($orderby=phenomenonTime desc;$top=1)"})],
         "sql": "SELECT d.*, o.* FROM sta_datastreams d LEFT JOIN observations o ON o.id = (SELECT id FROM "
                "observations WHERE datastream_id = d.id ORDER BY phenomenon_time DESC LIMIT 1) "
                "ORDER BY d.id LIMIT 100",
         "params": [()]},
        {"name": "Observations $top=100", "goal": 0.5,
         "paths": [path(f"Datastreams({i})/Observations", {"$top": "100"}) for i in ids],
         "sql": "SELECT * FROM observations WHERE datastream_id = ? ORDER BY id LIMIT 100",
         "params": [(i,) for i in ids]},
    ]


def run_sql(db: Path, sql: str, params: list[tuple[Any, ...]], seconds: float) -> dict[str, Any]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.execute("PRAGMA cache_size=-65536")   # what the platform's connections use
    for p in params[:50]:
        con.execute(sql, p).fetchall()   # warm
    n, rows = 0, 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for p in params:
            rows += len(con.execute(sql, p).fetchall())
            n += 1
    elapsed = time.perf_counter() - started
    con.close()
    return {"qps": n / elapsed, "queries": n, "rows_per_query": rows / max(n, 1)}


def check_same(base: str, q: dict[str, Any], db: Path) -> dict[str, Any]:
    """The API's answer for the first Datastream has as many values as the SQL's (and the same ids)."""
    r = httpx.get(base + q["paths"][0], timeout=60)
    r.raise_for_status()
    body = r.json()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    rows = con.execute(q["sql"], q["params"][0]).fetchall()
    con.close()
    if q["name"].startswith("Datastreams"):
        api_ids = [v["Observations"][0]["@iot.id"] if v["Observations"] else None for v in body["value"]]
        sql_ids = [_obs_id(row) for row in rows]
    else:
        api_ids = [v["@iot.id"] for v in body["value"]]
        sql_ids = [row["id"] for row in rows]
    return {"api_values": len(api_ids), "sql_rows": len(sql_ids), "same": api_ids == sql_ids}


def _obs_id(row: sqlite3.Row) -> int | None:
    # the joined observation's id is the first "id" after the datastream's columns
    keys = row.keys()
    second = [i for i, k in enumerate(keys) if k == "id"]
    return row[second[1]] if len(second) > 1 else None


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rows", type=int, default=None, help="observations (default 10M, quick 1M)")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=None, help="per query and side (default 8, quick 3)")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during each query")
    args = parser.parse_args()
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    tmp = tempfile.TemporaryDirectory(prefix="citydata-sta-query-")
    data = Path(tmp.name)
    db = data / "citydata.db"
    report: dict[str, Any] = {"rows": rows, "streams": args.streams, "clients": args.clients, "seconds": seconds}

    token = make_token(data)
    with Server(data) as srv:
        ids = create_streams(srv.base, token, args.streams)
        seed = [{"Datastream": {"@iot.id": i}, "components": ["phenomenonTime", "result"],
                 "dataArray": [[iso(T_SEED), 0.0]]} for i in ids]
        httpx.post(f"{srv.base}/v1.1/CreateObservations", json=seed, headers={"Authorization": f"Bearer {token}"},
                   timeout=60).raise_for_status()
    fois = generated_fois(db, ids)
    fill_s = prefill(db, ids, rows - count_rows(db), T_PREFILL, fois=fois)
    report["prefill"] = {"seconds": fill_s, "rows_total": count_rows(db)}
    steps = rows // len(ids)
    mid = T_PREFILL + timedelta(seconds=60 * (steps // 2))
    qs = queries(ids, (mid, mid + timedelta(hours=2)))

    results: list[dict[str, Any]] = []
    with Trivial() as triv:
        wrk(f"{triv.base}/hello", lua_get(["/hello"]), connections=args.clients, seconds=1)
        trivial = wrk(f"{triv.base}/hello", lua_get(["/hello"]), connections=args.clients, seconds=seconds)
    report["trivial_get"] = trivial
    with Server(data) as srv:
        assert srv.proc is not None
        for q in qs:
            same = check_same(srv.base, q, db)
            lua = lua_get(q["paths"])
            wrk(srv.base + q["paths"][0], lua, connections=args.clients, seconds=1)   # warm-up
            api = wrk(srv.base + q["paths"][0], lua, connections=args.clients, seconds=seconds)
            with Profiler(srv.proc.pid, data / f"q{len(results)}.raw", args.profile) as prof:
                if args.profile:   # a separate run: py-spy slows the server it samples
                    wrk(srv.base + q["paths"][0], lua, connections=args.clients, seconds=seconds)
            sql = run_sql(db, q["sql"], q["params"], seconds / 2)
            floor = 1 / (1 / sql["qps"] + 1 / trivial["rps"])
            results.append({"name": q["name"], "api": api, "sql": sql, "check": same,
                            "ratio": api["rps"] / sql["qps"], "ratio_floor": api["rps"] / floor,
                            "floor_rps": floor, "example": q["paths"][0], "sql_text": q["sql"],
                            "profile": prof.summary()})
    top100 = next(r for r in results if r["name"] == "Observations $top=100")
    report["queries"] = results
    report["top100_vs_trivial"] = top100["api"]["rps"] / trivial["rps"]

    table: list[tuple[str, ...]] = []
    for r in results:
        table.append((r["name"], f"{r['api']['rps']:,.0f}", f"{r['sql']['qps']:,.0f}", f"{r['ratio']:.3f}",
                      f"{r['floor_rps']:,.0f}", f"{r['ratio_floor']:.2f}", f"{r['api']['p50_ms']}",
                      f"{r['check']['api_values']}/{r['check']['sql_rows']}{'' if r['check']['same'] else ' DIFF'}",
                      verdict(r["ratio"], 0.5)))
    print_table(f"SensorThings queries on {report['prefill']['rows_total']:,} observations, {args.streams} "
                f"Datastreams (SQLite; API req/s with {args.clients} connections vs SQL queries/s, one thread)",
                table, ("query", "API req/s", "SQL q/s", "API/SQL", "SQL+HTTP floor", "API/floor", "p50 ms",
                        "values api/sql", "goal (API/SQL)"))
    ratio = report["top100_vs_trivial"]
    print(f"\n  GET Datastreams(id)/Observations?$top=100: {top100['api']['rps']:,.0f} req/s vs trivial GET "
          f"{trivial['rps']:,.0f} req/s = {ratio:.3f} ({verdict(ratio, 0.1)})")
    print(f"  prefill: {rows:,} rows in {fill_s:.1f} s")
    for r in results:
        print_profile(r["name"], r["profile"], 12)
    write_json(args.json, report)
    tmp.cleanup()
    return report

if __name__ == "__main__":
    main()
