"""SensorThings ingest over HTTP against baselines measured in the same run, on the same machine.

    .venv/bin/python bench/sta_ingest.py [--quick] [--json OUT] [--clients 64] [--seconds 10]
                                         [--prefill 10000000] [--profile]

The server is ``python -m citydata serve`` in its own process (SQLite, embedded MQTT, log level WARNING), on a
fresh data directory, with ``--streams`` Datastreams created through the API.

(a) single ``POST /v1.1/Observations`` (Datastream linked by id, a different stream and time every request)
    from ``--clients`` concurrent connections (wrk), against ``POST /echo`` of a trivial FastAPI app (parse the
    JSON body, answer 201 with a small JSON) under the same uvicorn settings, also in its own process.
    Goal: >= 0.25x.
(b) ``POST /v1.1/CreateObservations`` of ``--array-size`` observations each (one Datastream per request),
    ``--array-clients`` concurrent httpx clients, bodies serialised beforehand; observations/s against a raw
    ``sqlite3`` ``executemany`` of as many rows (datetime to text conversion included, synchronous=FULL like
    the store) in one transaction into the same file and table, server stopped. Goals: >= 0.3x raw, and
    >= 20x the observations/s of (a).
(c) MQTT QoS 1 ingest: not measured yet (the platform has no SensorThings MQTT ingest); see ``mqtt_ingest``.
(d) (b)'s rate again after ``--prefill`` observations were added by raw ``executemany`` into the server's
    file (server stopped), against (b)'s rate on the near-empty table. Goal: >= 0.7.

Rows per commit under load come from ``/metrics`` (``citydata_internal_total`` store_rows / store_commits,
deltas over each phase). Goal: >= 50. ``--quick`` shortens every phase and prefills 1M instead of 10M.
``--profile`` adds a py-spy recording of the server (py-spy from PATH or /tmp/peer-venv) during an extra run of
(a) and of (b) after the measured ones (py-spy slows the process it samples, so it never runs while measuring).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SQLITE_TIME,
    Profiler,
    Server,
    Trivial,
    count_rows,
    create_streams,
    generated_fois,
    internal_counters,
    make_token,
    prefill,
    print_profile,
    print_table,
    rows_per_commit,
    verdict,
    write_json,
    wrk,
)

T_SEED = datetime(2024, 12, 31, tzinfo=UTC)   # one observation per stream, so FeaturesOfInterest exist
T_PREFILL = datetime(2025, 1, 1, tzinfo=UTC)  # raw prefill, 60 s apart per stream
T_SINGLE = datetime(2025, 6, 1, tzinfo=UTC)   # (a)
T_ARRAYS = datetime(2025, 7, 1, tzinfo=UTC)   # (b); (d) uses T_ARRAYS + 30 days, raw T_ARRAYS + 60 days


def lua_post_observation(token: str, stream_ids: list[int], start: datetime) -> str:
    ids = ",".join(str(i) for i in stream_ids)
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local ids = {{{ids}}}
local base = {int(start.timestamp())}
local i = 0
request = function()
  i = i + 1
  local body = string.format('{{"result":%d.25,"phenomenonTime":"%s","Datastream":{{"@iot.id":%d}}}}',
    i % 40, os.date("!%Y-%m-%dT%H:%M:%SZ", base + i), ids[(i % #ids) + 1])
  return wrk.format(nil, "/v1.1/Observations", nil, body)
end
"""


LUA_TRIVIAL_POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer cd_not_checked"
local i = 0
request = function()
  i = i + 1
  local body = string.format('{"result":%d.25,"phenomenonTime":"%s","Datastream":{"@iot.id":%d}}',
    i % 40, os.date("!%Y-%m-%dT%H:%M:%SZ", 1748736000 + i), (i % 100) + 1)
  return wrk.format(nil, "/echo", nil, body)
end
"""


def array_bodies(stream_ids: list[int], posts: int, size: int, start: datetime) -> list[bytes]:
    """``posts`` CreateObservations bodies of ``size`` rows, one Datastream each, rotating over the streams."""
    out = []
    k = len(stream_ids)
    for j in range(posts):
        base = start + timedelta(seconds=size * (j // k))
        rows = [[(base + timedelta(seconds=r)).strftime("%Y-%m-%dT%H:%M:%SZ"), ((j * size + r) % 4000) / 100.0]
                for r in range(size)]
        out.append(orjson.dumps([{"Datastream": {"@iot.id": stream_ids[j % k]},
                                  "components": ["phenomenonTime", "result"], "dataArray": rows}]))
    return out


async def post_arrays(base: str, token: str, bodies: list[bytes], clients: int) -> dict[str, Any]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            r = await client.post("/v1.1/CreateObservations", content=body, headers=headers)
            if r.status_code != 201 or b'"error"' in r.content:
                failures.append(f"{r.status_code}: {r.text[:200]}")

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} data-array POSTs failed, first: {failures[0]}")
    return {"seconds": seconds, "posts": len(bodies), "posts_per_s": len(bodies) / seconds}


def measure_arrays(srv: Server, token: str, ids: list[int], posts: int, size: int, clients: int,
                   start: datetime, profile: Path | None) -> dict[str, Any]:
    bodies = array_bodies(ids, posts, size, start)
    before = internal_counters(srv.base)
    assert srv.proc is not None
    with Profiler(srv.proc.pid, profile or Path("/dev/null"), profile is not None) as prof:
        res = asyncio.run(post_arrays(srv.base, token, bodies, clients))
    res["obs_per_s"] = posts * size / res["seconds"]
    res.update(rows_per_commit(before, internal_counters(srv.base)))
    res["profile"] = prof.summary()
    return res


def raw_insert(db_path: Path, rows: list[tuple[int, datetime, float, int | None]]) -> dict[str, Any]:
    """The ceiling: the same kind of rows, one transaction, bare sqlite3 (WAL, synchronous=FULL)."""
    con = sqlite3.connect(db_path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    (next_id,) = con.execute("SELECT coalesce(max(id), 0) + 1 FROM observations").fetchone()
    sql = "INSERT INTO observations (id, datastream_id, phenomenon_time, result_number, foi_id) VALUES (?,?,?,?,?)"
    started = time.perf_counter()
    params = [(next_id + i, sid, t.astimezone(UTC).strftime(SQLITE_TIME), v, foi)
              for i, (sid, t, v, foi) in enumerate(rows)]
    con.execute("BEGIN")
    con.executemany(sql, params)
    con.execute("COMMIT")
    seconds = time.perf_counter() - started
    con.close()
    return {"seconds": seconds, "rows": len(rows), "obs_per_s": len(rows) / seconds}


def mqtt_ingest(*_: Any) -> dict[str, Any]:
    """(c) PLACEHOLDER, NOT CALLED: 4 concurrent paho-mqtt QoS 1 publishers on
    ``v1.1/Datastreams(<id>)/Observations``, stored-then-acknowledged rate (count rows in the DB), against a
    bare paho QoS 1 subscriber on the same broker; on the embedded broker and on Mosquitto at 127.0.0.1:1883
    (server with CITYDATA_MQTT_URL=mqtt://127.0.0.1:1883 and a unique CITYDATA_MQTT_CLIENT_ID). Goal >= 0.5x.
    To be written once the platform handles SensorThings MQTT publishes (src/citydata/sensorthings/mqtt.py)."""
    raise NotImplementedError("SensorThings MQTT ingest is not in the platform yet")


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short phases, 1M prefill")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--clients", type=int, default=64, help="(a) concurrent connections")
    parser.add_argument("--seconds", type=float, default=None, help="(a) seconds per side (default 10, quick 5)")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--array-size", type=int, default=1000)
    parser.add_argument("--array-posts", type=int, default=None, help="(b) POSTs (default 300, quick 100)")
    parser.add_argument("--array-clients", type=int, default=4)
    parser.add_argument("--prefill", type=int, default=None, help="(d) rows (default 10M, quick 1M)")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during (a) and (b)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data directory here")
    args = parser.parse_args()
    seconds = args.seconds or (5.0 if args.quick else 10.0)
    posts = args.array_posts or (100 if args.quick else 300)
    target = args.prefill or (1_000_000 if args.quick else 10_000_000)
    report: dict[str, Any] = {"clients": args.clients, "seconds": seconds, "streams": args.streams,
                              "array_size": args.array_size, "array_posts": posts,
                              "array_clients": args.array_clients, "prefill_target": target}
    tmp = tempfile.TemporaryDirectory(prefix="citydata-sta-ingest-")
    data = args.keep or Path(tmp.name)
    db = data / "citydata.db"
    prof_dir = data if args.profile else None

    token = make_token(data)
    with Server(data) as srv:
        ids = create_streams(srv.base, token, args.streams)
        # one observation per stream first: the FeatureOfInterest is generated from the Thing's Location once
        seed = [{"Datastream": {"@iot.id": i}, "components": ["phenomenonTime", "result"],
                 "dataArray": [[T_SEED.isoformat(), 0.0]]} for i in ids]
        httpx.post(f"{srv.base}/v1.1/CreateObservations", json=seed, headers={"Authorization": f"Bearer {token}"},
                   timeout=60).raise_for_status()

        # (a) single POSTs against the trivial app
        with Trivial() as triv:
            wrk(f"{triv.base}/echo", LUA_TRIVIAL_POST, connections=args.clients, seconds=2)
            trivial = wrk(f"{triv.base}/echo", LUA_TRIVIAL_POST, connections=args.clients, seconds=seconds)
        lua = lua_post_observation(token, ids, T_SINGLE)
        wrk(f"{srv.base}/v1.1/Observations", lua_post_observation(token, ids, T_SINGLE - timedelta(days=20)),
            connections=args.clients, seconds=2)   # warm-up, other times
        before = internal_counters(srv.base)
        single = wrk(f"{srv.base}/v1.1/Observations", lua, connections=args.clients, seconds=seconds)
        single.update(rows_per_commit(before, internal_counters(srv.base)))
        single["profile"] = {}
        if prof_dir is not None:   # a separate run: py-spy slows the server it samples
            assert srv.proc is not None
            with Profiler(srv.proc.pid, prof_dir / "single.raw", True) as prof:
                wrk(f"{srv.base}/v1.1/Observations", lua_post_observation(token, ids, T_SINGLE + timedelta(days=10)),
                    connections=args.clients, seconds=seconds)
            single["profile"] = prof.summary()
        report["a"] = {"ours": single, "trivial": trivial, "ratio": single["rps"] / trivial["rps"]}

        # (b) data arrays on the near-empty table
        arrays = measure_arrays(srv, token, ids, posts, args.array_size, args.array_clients, T_ARRAYS, None)
        if prof_dir is not None:
            arrays["profile"] = measure_arrays(srv, token, ids, max(10, posts // 3), args.array_size,
                                               args.array_clients, T_ARRAYS + timedelta(days=90),
                                               prof_dir / "arrays.raw")["profile"]
    fois = generated_fois(db, ids)
    raw_rows = [(sid, t, v, fois.get(sid)) for sid, t, v, _ in
                _rows(ids, posts * args.array_size, T_ARRAYS + timedelta(days=60))]
    raw = raw_insert(db, raw_rows)
    report["b"] = {"ours": arrays, "raw": raw, "ratio_raw": arrays["obs_per_s"] / raw["obs_per_s"],
                   "ratio_single": arrays["obs_per_s"] / single["rps"]}

    # (d) the same after the prefill
    have = count_rows(db)
    fill = max(0, target - have)
    fill_s = prefill(db, ids, fill, T_PREFILL, fois=fois)
    report["prefill"] = {"rows_added": fill, "seconds": fill_s, "rows_total": count_rows(db)}
    with Server(data) as srv:
        report["prefill"]["server_startup_s"] = srv.startup_s
        arrays_full = measure_arrays(srv, token, ids, posts, args.array_size, args.array_clients,
                                     T_ARRAYS + timedelta(days=30), None)
    report["d"] = {"empty": arrays["obs_per_s"], "full": arrays_full["obs_per_s"], "full_run": arrays_full,
                   "ratio": arrays_full["obs_per_s"] / arrays["obs_per_s"], "rows_stored": report["prefill"]}
    report["rows_per_commit"] = {"a": single["rows_per_commit"], "b": arrays["rows_per_commit"],
                                 "d": arrays_full["rows_per_commit"]}

    a, b, d = report["a"], report["b"], report["d"]
    print_table("SensorThings ingest (SQLite, one server process, 2 cores)", [
        ("(a) POST /Observations", f"{single['rps']:,.0f} req/s", f"trivial POST {trivial['rps']:,.0f} req/s",
         f"{a['ratio']:.3f}", verdict(a["ratio"], 0.25)),
        ("(b) CreateObservations x" + str(args.array_size), f"{arrays['obs_per_s']:,.0f} obs/s",
         f"raw executemany {raw['obs_per_s']:,.0f} obs/s", f"{b['ratio_raw']:.3f}", verdict(b["ratio_raw"], 0.3)),
        ("(b) vs (a)", f"{arrays['obs_per_s']:,.0f} obs/s", f"(a) {single['rps']:,.0f} obs/s",
         f"{b['ratio_single']:.1f}", verdict(b["ratio_single"], 20)),
        ("(c) MQTT QoS 1", "not measured", "platform has no STA MQTT ingest yet", "-", "-"),
        (f"(d) (b) with {report['prefill']['rows_total']:,} stored", f"{arrays_full['obs_per_s']:,.0f} obs/s",
         f"near-empty {arrays['obs_per_s']:,.0f} obs/s", f"{d['ratio']:.3f}", verdict(d["ratio"], 0.7)),
        ("rows/commit (a)", f"{single['rows_per_commit']:.1f}", f"{single['commits']:.0f} commits", "-",
         verdict(single["rows_per_commit"] / 50, 1.0).replace(">= 1", ">= 50")),
        ("rows/commit (b)", f"{arrays['rows_per_commit']:.1f}", f"{arrays['commits']:.0f} commits", "-",
         verdict(arrays["rows_per_commit"] / 50, 1.0).replace(">= 1", ">= 50")),
    ], ("measure", "ours", "baseline", "ratio", "goal"))
    print(f"\n  (a) latency p50/p99 ours {single['p50_ms']}/{single['p99_ms']} ms, trivial {trivial['p50_ms']}/"
          f"{trivial['p99_ms']} ms; non-2xx ours {single['non_2xx']}, trivial {trivial['non_2xx']}")
    print(f"  prefill: {fill:,} rows in {fill_s:.1f} s (raw executemany, server stopped); server start after it "
          f"{report['prefill']['server_startup_s']:.1f} s")
    print_profile("(a) single POSTs", single["profile"])
    print_profile("(b) data arrays", arrays["profile"])
    write_json(args.json, report)
    tmp.cleanup()
    return report


def _rows(ids: list[int], n: int, start: datetime) -> list[tuple[int, datetime, float, int | None]]:
    k = len(ids)
    return [(ids[i % k], start + timedelta(seconds=i // k), ((i * 7919) % 4000) / 100.0, None) for i in range(n)]


if __name__ == "__main__":
    main()
