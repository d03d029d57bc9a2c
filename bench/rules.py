"""Events per second through the rules engine (the Phuket pack plus 1,000 threshold rules) against the bare
throughput of the same bus in the same run.

    .venv/bin/python bench/rules.py [--events 50000] [--rules 1000] [--batch 500] [--json OUT]

Both rows use the in-process bus journaled in a fresh SQLite store (the platform's default), publishing
``--events`` ``observation.received`` events over 1,200 Datastreams with ``publish_many`` in batches:

* ``bare``: one consumer-group member that only counts (the bus's own cost: journal commit, dispatch, ack);
* ``engine``: the rules engine as that member: catalogue lookup, rule matching, windows, hysteresis, alerts
  (committed to its outbox and published back on the bus), checkpoints every 5,000 events.

The clock runs from the first publish until the consumer has handled the last event. Datastreams: 1,000 rain
gauges, water-level sensors and DO probes spread over Phuket's sub-districts (so the pack's zone rules see
them), each with one threshold rule, and 200 more streams that only the pack sees. About 1 % of the values
cross their threshold, so alerts are raised and cleared during the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from citydata.bus.base import Delivery
from citydata.bus.memory import MemoryBus
from citydata.clock import SystemClock
from citydata.config import load_settings
from citydata.events import Event
from citydata.geo import Geography, read_reference_city
from citydata.rules import EngineOptions, RulesEngine, StreamInfo, pack_documents
from citydata.rules.catalogue import zone_of
from citydata.rules.store import RuleStore
from citydata.store import create_store
from citydata.store.journal import StoreJournal

PROPS = [("precipitation", "rain_gauge", "mm"), ("water_level", "water_level", "m"),
         ("dissolved_oxygen", "dissolved_oxygen", "mg/L")]
STREAMS = 1200


def streams(geo: Geography) -> list[StreamInfo]:
    out = []
    for i in range(STREAMS):
        prop, kind, unit = PROPS[i % 3]
        lon, lat = 98.28 + (i % 40) * 0.004, 7.80 + (i // 40) * 0.01
        zone = zone_of(geo, lon, lat)
        out.append(StreamInfo(i + 1, prop, unit, i + 1, {"device_id": f"dev-{i}", "kind": kind}, f"dev-{i}", kind,
                              lon, lat, zone.id if zone else None, zone.name_en if zone else None,
                              zone.name_th if zone else None))
    return out


def events(n: int) -> list[Event]:
    """Observations every 10 s per stream, ending about now (so the silence rule sees live sensors)."""
    t0 = datetime.now(UTC) - timedelta(seconds=10 * (n // STREAMS + 1))
    out = []
    for i in range(n):
        sid = i % STREAMS + 1
        t = t0 + timedelta(seconds=10 * (i // STREAMS))
        value = ((i * 7919) % 1000) / 10.0        # 0 .. 99.9; above 99 in 1 % of the events
        out.append(Event(kind="observation.received", key=str(sid), time=t,
                         data={"datastream_id": sid, "phenomenon_time": t.isoformat(), "result": value}))
    return out


def threshold_rules(count: int) -> list[dict[str, Any]]:
    return [{"id": f"bench-threshold-{i + 1}", "name": f"Stream {i + 1} high",
             "source": {"datastreams": [i + 1]}, "condition": {"threshold": {"above": 99.0, "clear_below": 50}},
             "alert": {"kind": "env.threshold", "severity": "minor", "category": "Env",
                       "message": "{subject}: {value}"}} for i in range(count)]


async def _store(tmp: Path, label: str) -> Any:
    settings = load_settings(environ={}, data_dir=tmp / label, log_format="text", log_level="WARNING")
    store = create_store(settings, SystemClock())
    await store.start()
    return store


async def bare(tmp: Path, evs: list[Event], batch: int) -> dict[str, Any]:
    store = await _store(tmp, "bare")
    bus = MemoryBus(journal=StoreJournal(store))
    await bus.start()
    done, count = asyncio.Event(), 0

    async def handler(_: Delivery) -> None:
        nonlocal count
        count += 1
        if count == len(evs):
            done.set()

    member = await bus.consume(f"bare-{uuid.uuid4().hex[:6]}", ">", handler, start="new")
    started = time.perf_counter()
    for i in range(0, len(evs), batch):
        await bus.publish_many(evs[i:i + batch])
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - started
    await member.close()
    await bus.stop()
    await store.stop()
    return {"events": len(evs), "seconds": round(elapsed, 3), "events_per_s": len(evs) / elapsed}


async def engine_run(tmp: Path, evs: list[Event], batch: int, rules: int, geo: Geography) -> dict[str, Any]:
    store = await _store(tmp, "engine")
    bus = MemoryBus(journal=StoreJournal(store))
    await bus.start()
    rule_store = RuleStore(store)
    docs = pack_documents("phuket") + threshold_rules(rules)
    await asyncio.gather(*[rule_store.save(d, by="bench", origin="bench") for d in docs])
    engine = RulesEngine(store, bus, SystemClock(), geography=geo, journal=bus.journal,  # type: ignore[arg-type]
                         options=EngineOptions(tick_s=1.0))
    for info in streams(geo):
        engine.catalogue.put(info)
    await engine.start()
    assert len(engine.rules) == len(docs)
    journal = bus.journal
    assert journal is not None
    started = time.perf_counter()
    for i in range(0, len(evs), batch):
        await bus.publish_many(evs[i:i + batch])
    last = await journal.last_seq()
    while engine.seq < last:
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - started
    figures = engine.describe()
    await engine.stop()
    await bus.stop()
    await store.stop()
    return {"events": len(evs), "seconds": round(elapsed, 3), "events_per_s": len(evs) / elapsed,
            "rules": len(docs), "raised": figures["raised"], "cleared": figures["cleared"],
            "updated": figures["updated"], "checkpoints": figures["checkpoints"], "instances": figures["instances"]}


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rules", type=int, default=1000, help="threshold rules besides the Phuket pack")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    geo = Geography.from_places(read_reference_city("phuket"))
    evs = events(args.events)
    with tempfile.TemporaryDirectory(prefix="citydata-bench-rules-") as tmp:
        base = await bare(Path(tmp), evs, args.batch)
        ours = await engine_run(Path(tmp), evs, args.batch, args.rules, geo)
    ratio = ours["events_per_s"] / base["events_per_s"]
    report = {"events": args.events, "batch": args.batch, "bare": base, "engine": ours, "ratio": ratio,
              "summary": [{"metric": f"rules engine, Phuket pack + {args.rules} threshold rules (events/s)",
                           "ours": round(ours["events_per_s"], 1), "baseline": round(base["events_per_s"], 1),
                           "baseline_name": "bare journaled in-process bus, counting consumer, same run",
                           "ratio": round(ratio, 3), "goal": ">= 0.5",
                           "note": f"{ours['rules']} rules, {ours['raised']} raised / {ours['cleared']} cleared, "
                                   f"{ours['checkpoints']} checkpoints"}]}
    print(f"{'row':8s} {'events':>8s} {'seconds':>9s} {'events/s':>11s}")
    for name, f in (("bare", base), ("engine", ours)):
        print(f"{name:8s} {f['events']:>8d} {f['seconds']:>9.3f} {f['events_per_s']:>11,.0f}")
    print(f"engine / bare = {ratio:.2f} (goal >= 0.5); alerts raised {ours['raised']}, cleared {ours['cleared']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    asyncio.run(main())
