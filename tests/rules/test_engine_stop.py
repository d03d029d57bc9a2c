"""Stopping the engine ends its tasks even when an alert is signalled at the moment of the cancel.

The checkpointer paces state-only checkpoints by waiting for the next alert at most ``min_checkpoint_s``. With
``asyncio.wait_for`` (Python 3.11) a cancel that arrived just as that wait completed was lost: the task went
on, and ``stop()`` waited for it for ever (tests/faults/test_backpressure.py hung in its platform stop with
the checkpointer alive at ``_wake.wait()``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from citydata.bus.base import Delivery
from citydata.bus.memory import MemoryBus
from citydata.clock import DrivenClock
from citydata.events import make_event
from citydata.rules import EngineOptions, RulesEngine
from citydata.store import create_store
from citydata.store.journal import StoreJournal
from tests.conftest import make_settings
from tests.rules.helpers import geography


async def test_a_cancel_racing_an_alert_signal_still_stops_the_checkpointer(tmp_path: Path) -> None:
    clock = DrivenClock()
    store = create_store(make_settings(tmp_path), clock)
    await store.start()
    bus = MemoryBus(journal=StoreJournal(store))
    await bus.start()
    engine = RulesEngine(store, bus, clock, geography=geography(), journal=bus.journal,
                         options=EngineOptions(min_checkpoint_s=60.0))
    try:
        await engine.start(consume=False)
        checkpointer = engine._tasks[0]
        assert checkpointer.get_name() == "rules-checkpoint"
        # one event moves the position: the checkpointer writes a checkpoint, then paces (waits for an alert)
        before = engine.stats.checkpoints
        await engine.handle(Delivery(make_event("gauge.reading", "g1", clock.now(), {}), 1, 1, "rules"))
        engine._wake.set()
        for _ in range(500):
            if engine.stats.checkpoints > before:
                break
            await asyncio.sleep(0.01)
        assert engine.stats.checkpoints > before, "no checkpoint written"
        await asyncio.sleep(0.05)   # now in the pacing wait
        # an alert is signalled, its wait completes, and in that instant the task is cancelled (as stop() does)
        engine._alert_waiting.set()
        await asyncio.sleep(0)
        checkpointer.cancel()
        done, _ = await asyncio.wait({checkpointer}, timeout=5)
        assert checkpointer in done, "the checkpointer ignored its cancel (stop() would wait for it for ever)"
        assert checkpointer.cancelled()
    finally:
        await asyncio.wait_for(engine.stop(), 30)
        await bus.stop()
        await store.stop()
