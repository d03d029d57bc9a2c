"""Events per second from publish to a consumer group's handler, on every bus, and NATS against raw nats-py.

    .venv/bin/python bench/bus_throughput.py [--events N] [--batch 500] [--single 500] [--json OUT]
                                             [--nats-url URL]

Each row publishes ``--events`` events (``publish_many`` in batches of ``--batch``) while one member of one
consumer group handles them; the clock runs from the first publish to the last handled event (the handler only
counts). Buses:

* ``memory``: the in-process bus without a journal;
* ``memory+sqlite``: the in-process bus journaled in a fresh SQLite store (every event committed before it is
  dispatched; offsets written behind), and the same with ``sync_offsets=True`` (each acknowledgement waits for
  its commit) on a tenth of the events;
* ``nats``: ``NatsBus`` on JetStream, and ``raw``: bare nats-py on the same server: ``publish_async`` of the
  same, already serialised event bytes with the same ``Nats-Msg-Id`` header, and one durable pull consumer
  fetching 256 at a time and acking each message. Our figure includes turning events into bytes and back.

``--single`` more events are published one ``publish`` call at a time (the latency-bound path) on each bus.
NATS runs on a fresh stream that is deleted afterwards; it is skipped when the server is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from citydata.bus.base import Bus, Delivery
from citydata.bus.memory import MemoryBus
from citydata.clock import SystemClock
from citydata.config import load_settings
from citydata.events import Event
from citydata.store import create_store
from citydata.store.journal import StoreJournal

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_events(n: int) -> list[Event]:
    return [Event(kind="observation.received", key=f"ds-{i % 200}", time=T0 + timedelta(seconds=i),
                  data={"datastream_id": i % 200, "phenomenon_time": (T0 + timedelta(seconds=i)).isoformat(),
                        "result": (i % 977) / 10.0})
            for i in range(n)]


def reachable(url: str) -> bool:
    host, _, port = url.split("://", 1)[1].split("/", 1)[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


async def run_bus(bus: Bus, events: list[Event], batch: int, *, single: bool = False) -> dict[str, Any]:
    """Publish ``events`` and wait until one consumer group member has handled every one."""
    done = asyncio.Event()
    count = 0

    async def handler(_: Delivery) -> None:
        nonlocal count
        count += 1
        if count == len(events):
            done.set()

    member = await bus.consume(f"bench-{uuid.uuid4().hex[:6]}", "observation.>", handler, start="new")
    started = time.perf_counter()
    if single:
        for event in events:
            await bus.publish(event)
    else:
        for i in range(0, len(events), batch):
            await bus.publish_many(events[i:i + batch])
    published = time.perf_counter() - started
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - started
    await member.close()
    return {"events": len(events), "seconds": round(elapsed, 4), "events_per_s": len(events) / elapsed,
            "publish_seconds": round(published, 4)}


async def memory(events: list[Event], batch: int, single: list[Event]) -> dict[str, Any]:
    bus = MemoryBus(queue_size=10_000)
    await bus.start()
    try:
        return {"batched": await run_bus(bus, events, batch),
                "single": await run_bus(bus, single, batch, single=True)}
    finally:
        await bus.stop()


async def journaled(events: list[Event], batch: int, single: list[Event], tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, evs, sync, one_by_one in (("batched", events, False, False),
                                         ("single", single, False, True),
                                         ("batched_sync_offsets", events[:max(1, len(events) // 10)], True,
                                          False)):
        settings = load_settings(environ={}, data_dir=tmp / label, log_format="text")
        store = create_store(settings, SystemClock())
        await store.start()
        journal = StoreJournal(store, sync_offsets=sync)
        bus = MemoryBus(queue_size=10_000, journal=journal)
        await bus.start()
        try:
            out[label] = await run_bus(bus, evs, batch, single=one_by_one)
            assert store.writer is not None
            out[label]["writer_commits"] = store.writer.stats.commits
        finally:
            await bus.stop()
            await journal.flush()
            await store.stop()
    return out


async def nats_ours(url: str, events: list[Event], batch: int, single: list[Event]) -> dict[str, Any]:
    from citydata.bus.nats import NatsBus

    tag = uuid.uuid4().hex[:8]
    bus = NatsBus(url, stream=f"BENCH_{tag}", prefix=f"bench{tag}", queue_size=10_000)
    await bus.start()
    try:
        return {"batched": await run_bus(bus, events, batch),
                "single": await run_bus(bus, single, batch, single=True)}
    finally:
        await bus.stop()
        await delete_stream(url, f"BENCH_{tag}")


async def nats_raw(url: str, events: list[Event], batch: int) -> dict[str, Any]:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

    tag = uuid.uuid4().hex[:8]
    stream, prefix = f"BENCHRAW_{tag}", f"benchraw{tag}"
    payloads = [(f"{prefix}.{e.kind}", e.to_bytes(), e.id) for e in events]
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.>"], storage=StorageType.FILE,
                                         duplicate_window=120.0))
        await js.add_consumer(stream, ConsumerConfig(durable_name="raw", filter_subject=f"{prefix}.>",
                                                     ack_policy=AckPolicy.EXPLICIT,
                                                     deliver_policy=DeliverPolicy.ALL, max_ack_pending=10_000))
        psub = await js.pull_subscribe_bind(consumer="raw", stream=stream)

        async def consume() -> None:
            got = 0
            while got < len(payloads):
                try:
                    msgs = await psub.fetch(256, timeout=1.0)
                except TimeoutError:
                    continue
                for msg in msgs:
                    got += 1
                    await msg.ack()

        started = time.perf_counter()
        consumer = asyncio.create_task(consume())
        for i in range(0, len(payloads), batch):
            futures = [await js.publish_async(subject, data, headers={"Nats-Msg-Id": msg_id})
                       for subject, data, msg_id in payloads[i:i + batch]]
            await asyncio.gather(*futures)
        published = time.perf_counter() - started
        await asyncio.wait_for(consumer, timeout=600)
        elapsed = time.perf_counter() - started
        return {"events": len(events), "seconds": round(elapsed, 4), "events_per_s": len(events) / elapsed,
                "publish_seconds": round(published, 4)}
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def delete_stream(url: str, stream: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500, help="events per publish_many call")
    parser.add_argument("--single", type=int, default=500, help="events published one call at a time")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here as JSON")
    args = parser.parse_args()
    events, single = make_events(args.events), make_events(args.single)
    report: dict[str, Any] = {"events": args.events, "batch": args.batch, "single": args.single}

    report["memory"] = await memory(events, args.batch, single)
    with tempfile.TemporaryDirectory(prefix="citydata-bench-") as tmp:
        report["memory+sqlite"] = await journaled(events, args.batch, single, Path(tmp))
    if reachable(args.nats_url):
        ours = await nats_ours(args.nats_url, events, args.batch, single)
        raw = await nats_raw(args.nats_url, events, args.batch)
        ours["raw"] = raw
        ours["ratio"] = ours["batched"]["events_per_s"] / raw["events_per_s"]
        report["nats"] = ours
    else:
        report["nats"] = None

    rows: list[tuple[str, str, dict[str, Any]]] = []
    for name in ("memory", "memory+sqlite", "nats"):
        figures = report[name]
        if figures is None:
            print(f"{name:14s} skipped (not reachable)")
            continue
        rows += [(name, mode, figures[mode]) for mode in ("batched", "single", "batched_sync_offsets", "raw")
                 if mode in figures]
    print(f"{'bus':14s} {'mode':22s} {'events':>8s} {'seconds':>9s} {'events/s':>11s}")
    for name, mode, f in rows:
        label = "raw nats-py" if mode == "raw" else mode
        print(f"{name:14s} {label:22s} {f['events']:>8d} {f['seconds']:>9.3f} {f['events_per_s']:>11,.0f}")
    if report["nats"] is not None:
        print(f"nats: ours / raw = {report['nats']['ratio']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    asyncio.run(main())

