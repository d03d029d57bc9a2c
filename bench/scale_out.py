"""Scale-out: rules throughput of a CityData cluster with 1, 2 and 3 nodes on this machine.

For each node count, a fresh cluster: a private ``nats-server -js`` (own port and store directory), a fresh
PostgreSQL schema on the machine's server, ``N`` ``citydata serve --role all`` nodes (``bench`` partitions:
16), one key-local threshold rule (``group_by: key``: worked by the partition engines). Then ``--events``
events over ``--keys`` keys are published to NATS as fast as the publisher can (pipelined), about one in ten
crossing the threshold (an alert raised and cleared per crossing). Throughput = events / (time from the first
publish until every partition consumer has acknowledged everything); the engines acknowledge only what their
checkpoint (a PostgreSQL commit) covers, so this is committed rules throughput.

Baseline in the same run: a bare nats-py pull consumer on the same kind of private server draining the same
events with explicit acks (the transport's ceiling on this machine, no rules, no database).

Honesty: every node, NATS, PostgreSQL and the publisher share this machine's cores (``os.cpu_count()``; the
load average is recorded), so adding nodes here adds contention, not hardware. docs/scale.md extrapolates
per-node figures on paper.

    .venv/bin/python bench/scale_out.py [--quick] [--nodes 1 2 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, free_port, print_table, write_json
from citydata.bus.nats import consumer_name
from citydata.cluster.local import LocalCluster
from citydata.config import Settings

PG_URL = os.environ.get("CITYDATA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PARTITIONS = 16
RULE = """
id: bench-level
name: Scale-out bench level
source: {events: bench.level}
group_by: key
condition:
  threshold: {above: 50, clear_below: 10, field: level}
alert: {kind: bench.level_high, severity: minor, category: Other, urgency: expected, certainty: observed,
        message: "level {value} at {subject}"}
"""


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def events(n: int, keys: int) -> list[Any]:
    from citydata.events import Event

    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    return [Event(kind="bench.level", key=f"ds-{i % keys}", time=t0 + timedelta(seconds=i // keys),
                  data={"level": 100 if (i // keys) % 10 == 0 else 0}) for i in range(n)]


class PrivateNats:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(["nats-server", "-js", "-p", str(self.port), "-sd", str(root / "js")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        self.url = f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def publish(url: str, evs: list[Any]) -> float:
    from citydata.bus.nats import NatsBus

    bus = NatsBus(url, stream="CITYDATA", prefix="citydata", queue_size=1000, partitions=PARTITIONS)
    await bus.start()
    started = time.perf_counter()
    try:
        for i in range(0, len(evs), 2000):
            await bus.publish_many(evs[i:i + 2000])
        return time.perf_counter() - started
    finally:
        await bus.stop()


async def drained(url: str, total: int, timeout: float) -> float:
    """Seconds until every rules partition consumer acknowledged all of the ``total`` events."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            pending = 0
            for k in range(PARTITIONS):
                info = await js.consumer_info("CITYDATA", consumer_name(f"rules.p{k}"))
                pending += (info.num_pending or 0) + (info.num_ack_pending or 0)
            if pending == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{pending} events still pending after {timeout}s")
    finally:
        await nc.close()


async def drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def raw_baseline(url: str, evs: list[Any]) -> dict[str, Any]:
    """Bare nats-py: publish the same events pipelined, one pull consumer fetches and acks them all."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="RAW", subjects=["raw.>"]))
    await js.add_consumer("RAW", ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.EXPLICIT,
                                                max_ack_pending=10_000))
    payloads = [e.to_bytes() for e in evs]
    started = time.perf_counter()
    for i in range(0, len(payloads), 2000):
        futs = [await js.publish_async(f"raw.p.{j % PARTITIONS}", p) for j, p in enumerate(payloads[i:i + 2000])]
        await asyncio.gather(*futs)
    psub = await js.pull_subscribe_bind("raw", "RAW")
    got = 0
    while got < len(payloads):
        for msg in await psub.fetch(256, timeout=5):
            await msg.ack()
            got += 1
    elapsed = time.perf_counter() - started
    await nc.close()
    return {"events": got, "seconds": round(elapsed, 3), "events_per_s": round(got / elapsed, 1)}


def run_cluster(nodes: int, evs: list[Any], root: Path, timeout: float) -> dict[str, Any]:
    server = PrivateNats(root)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    off = {f"CITYDATA_{n.upper()}": "false" for n in ("vision_enabled", "wifi_enabled") if n in Settings.model_fields}
    cluster = LocalCluster.create(root / "data", bus_url=server.url, db_url=PG_URL, db_schema=schema,
                                  partitions=PARTITIONS, lease_s=3.0, **off)
    try:
        t = time.perf_counter()
        for i in range(nodes):
            cluster.start(f"n{i + 1}", timeout=180)
        start_s = time.perf_counter() - t
        deadline = time.monotonic() + 60     # until the partitions are spread over every node
        while time.monotonic() < deadline:
            views = [cluster.cluster_view(n) for n in cluster.nodes]
            if all(" partitions -" not in v for v in views):
                break
            time.sleep(0.5)
        rule = root / "rule.yaml"
        rule.write_text(RULE)
        done = subprocess.run([sys.executable, "-m", "citydata", "rules", "load", str(rule)], env=cluster.env,
                              cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode:
            raise RuntimeError(done.stderr)
        asyncio.run(drained(server.url, 0, 60))   # the rules.changed copies are consumed
        load_before = loadavg()
        t = time.perf_counter()
        publish_s = asyncio.run(publish(server.url, evs))
        drain_s = asyncio.run(drained(server.url, len(evs), timeout))
        total_s = time.perf_counter() - t
        return {"nodes": nodes, "events": len(evs), "publish_s": round(publish_s, 3), "total_s": round(total_s, 3),
                "events_per_s": round(len(evs) / total_s, 1), "start_s": round(start_s, 1),
                "drain_after_publish_s": round(drain_s, 3), "load_before": load_before, "load_after": loadavg(),
                "views": [cluster.cluster_view(n) for n in cluster.nodes]}
    finally:
        cluster.stop_all()
        server.stop()
        asyncio.run(drop_schema(schema))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--events", type=int, help="events per run (default 5,000 quick, 30,000 full)")
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if shutil.which("nats-server") is None:
        raise SystemExit("nats-server is not on PATH")
    n_events = args.events or (5_000 if args.quick else 30_000)
    evs = events(n_events, args.keys)
    report: dict[str, Any] = {"quick": args.quick, "cores": os.cpu_count(), "partitions": PARTITIONS,
                              "load_start": loadavg(), "runs": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="citydata-scale-") as tmp:
        root = Path(tmp)
        base_dir = root / "raw"
        base_dir.mkdir()
        server = PrivateNats(base_dir)
        try:
            report["raw"] = asyncio.run(raw_baseline(server.url, evs))
        finally:
            server.stop()
        for n in args.nodes:
            run_dir = root / f"n{n}"
            run_dir.mkdir()
            report["runs"].append(run_cluster(n, evs, run_dir, timeout=600))
    raw = report["raw"]["events_per_s"]
    one = next((r["events_per_s"] for r in report["runs"] if r["nodes"] == 1), None)
    summary = []
    for r in report["runs"]:
        summary.append({"metric": f"scale-out: rules throughput, {r['nodes']} node(s) (events/s)",
                        "ours": r["events_per_s"], "baseline": raw,
                        "baseline_name": "bare nats-py publish + pull/ack of the same events",
                        "ratio": round(r["events_per_s"] / raw, 3),
                        "goal": "context",
                        "note": f"{r['events']} events, {PARTITIONS} partitions, committed to PostgreSQL; "
                                f"{round(r['events_per_s'] / one, 2) if one else '-'} x 1 node; load "
                                f"{r['load_before']} -> {r['load_after']} on {os.cpu_count()} shared cores"})
    report["summary"] = summary
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print_table("Scale-out", [(s["metric"], str(s["ours"]), str(s["baseline"]), str(s["ratio"]), s["note"])
                              for s in summary], ("metric", "ours", "raw", "ratio", "note"))
    write_json(args.json, report)


if __name__ == "__main__":
    main()
