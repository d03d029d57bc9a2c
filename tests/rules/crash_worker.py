"""A rules engine process for the kill -9 test: store (SQLite in DATA_DIR), journaled in-process bus, the
rules engine, and a publisher of a deterministic observation sequence that continues where the journal ends.

    python tests/rules/crash_worker.py DATA_DIR TOTAL
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from citydata.bus.memory import MemoryBus
from citydata.clock import DrivenClock
from citydata.config import load_settings
from citydata.events import Event, make_event
from citydata.rules import EngineOptions, RulesService
from citydata.store import create_store
from citydata.store.journal import StoreJournal
from citydata.store.schema import events as events_table

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STREAMS = 5
RULES = [
    {"id": "high", "name": "high", "source": {"events": "observation.received"}, "group_by": "key",
     "renotify": "365d", "condition": {"threshold": {"above": 20, "clear_below": 5}},
     "alert": {"kind": "env.test", "severity": "minor", "category": "Env", "message": "{subject} {value}"}},
    {"id": "wet", "name": "wet", "source": {"events": "observation.received"}, "group_by": "key",
     "renotify": "365d",
     "condition": {"aggregate": {"function": "sum", "window": "30m", "above": 100, "clear_below": 40}},
     "alert": {"kind": "env.test", "severity": "minor", "category": "Env", "message": "{subject} {value}"}},
]


def sequence(total: int) -> list[Event]:
    out = []
    for i in range(total):
        ds = i % STREAMS
        t = T0 + timedelta(minutes=i // STREAMS)
        value = 30.0 if ((i // STREAMS) // (60 + 13 * ds)) % 3 == 0 else 2.0
        out.append(make_event("observation.received", f"ds{ds}", t, {
            "datastream_id": 1000 + ds, "phenomenon_time": t.isoformat(), "result": value}))
    return out


async def main(data_dir: Path, total: int) -> None:
    settings = load_settings(environ={}, data_dir=data_dir, log_format="text", log_level="WARNING")
    clock = DrivenClock()                     # frozen: no timer ticks, so the outcome is deterministic
    store = create_store(settings, clock)
    await store.start()
    bus = MemoryBus(journal=StoreJournal(store))
    await bus.start()
    service = RulesService(store, bus, clock, journal=bus.journal,  # type: ignore[arg-type]
                           options=EngineOptions(checkpoint_every=500))
    if not await service.rules.list():
        await service.load([("worker", r) for r in RULES])
    await service.start(pack=None)
    t = events_table
    done = int(await store.scalar(select(func.count()).select_from(t)
                                  .where(t.c.kind == "observation.received")) or 0)
    events = sequence(total)
    print(f"START {done}", flush=True)
    for i in range(done, total, 10):
        await bus.publish_many(events[i:i + 10])
        await asyncio.sleep(0.002)
    engine = service.engine
    assert engine is not None
    last = await bus.journal.last_seq()  # type: ignore[union-attr]
    while engine.seq < last:
        await asyncio.sleep(0.01)
    await service.stop()
    await bus.stop()
    await store.stop()
    print("DONE", flush=True)


def run(argv: list[str]) -> None:
    asyncio.run(main(Path(argv[1]), int(argv[2])))


if __name__ == "__main__":
    run(sys.argv)


def expected(total: int) -> tuple[list[tuple[str, str, Any]], dict[tuple[str, str], Any]]:
    """The alert transitions of the same sequence through an engine that never crashes, and its final
    windows and hysteresis state per (rule, instance)."""
    from citydata.rules import RulesEngine

    engine = RulesEngine(None, None, DrivenClock())  # type: ignore[arg-type]
    engine.set_rules([engine.compile(r, 1) for r in RULES])
    for seq, event in enumerate(sequence(total), 1):
        engine.ingest(event, seq, None)
    transitions = [(e.kind, e.key, e.data["observed_at"]) for e in engine.take_output()]
    leaves = {(rule_id, key): inst.leaves for rule_id, comp in engine.rules.items()
              for key, inst in comp.instances.items()}
    return transitions, leaves
