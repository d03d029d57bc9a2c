"""The rules service and engine on a real store (SQLite and PostgreSQL) and the journaled in-process bus:
validation with paths, unknown Datastreams refused, versions, the Phuket pack, alerts end to end, restart
without a second alert, and a deleted rule clearing its alert."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from citydata.bus.memory import MemoryBus
from citydata.clock import DrivenClock
from citydata.events import Event, make_event
from citydata.rules import RuleInvalid, RulesService
from citydata.store.journal import StoreJournal
from citydata.store.schema import events as events_table
from tests.rules.helpers import geography
from tests.rules.setup_streams import create_streams

CUSTOM = {"id": "rain-gauge-1-high", "name": "Rain gauge 1 reading high", "source": {"datastreams": [1]},
          "condition": {"threshold": {"above": 20, "clear_below": 5}},
          "alert": {"kind": "env.test", "severity": "minor", "category": "Met", "message": "{value} mm"}}


async def _platform(store: Any, clock: DrivenClock) -> tuple[MemoryBus, RulesService]:
    bus = MemoryBus(journal=StoreJournal(store))
    await bus.start()
    service = RulesService(store, bus, clock, geography=geography(), journal=bus.journal)  # type: ignore[arg-type]
    await service.start(pack="phuket")
    return bus, service


async def _alert_events(store: Any, kind: str = "alert.raised") -> list[Event]:
    rows = await store.fetch_all(select(events_table).where(events_table.c.kind == kind)
                                 .order_by(events_table.c.seq))
    return [Event(kind=r["kind"], key=r["key"], time=r["time"], data=r["data"], id=r["id"]) for r in rows]


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_validation_versions_pack_and_alerts_across_restart(store: Any, clock: DrivenClock) -> None:
    await create_streams(store)
    bus, service = await _platform(store, clock)
    try:
        listed = {r["id"] for r in await service.list()}
        assert {"flash-flood-risk", "do-low-beaches", "sensor-silent", "cctv-watchlist-hit"} <= listed
        assert await service.ensure_pack("phuket") == 0                           # idempotent

        with pytest.raises(RuleInvalid) as err:
            await service.validate({**CUSTOM, "source": {"datastreams": [1, 999]}})
        assert err.value.path == "source.datastreams" and "999" in err.value.message
        with pytest.raises(RuleInvalid) as err:
            await service.validate({**CUSTOM, "condition": {"all": [
                {"threshold": {"above": 1}}, {"kind": "aggregate", "function": "sum", "window": "soon",
                                              "above": 3}]}})
        assert err.value.path == "condition.all[1].window"
        assert str(err.value) == "condition.all[1].window: must be a duration like 30m"

        created = await service.create(CUSTOM, by="tester")
        assert created["version"] == 1
        changed, outcome = await service.replace(CUSTOM["id"], {**CUSTOM, "name": "Gauge 1 high"}, by="tester")
        assert (changed["version"], outcome) == (2, "updated")
        _, outcome = await service.replace(CUSTOM["id"], {**CUSTOM, "name": "Gauge 1 high"})
        assert outcome == "unchanged"
        assert [v["version"] for v in await service.versions(CUSTOM["id"])] == [1, 2]

        t0 = clock.now()
        obs = [make_event("observation.received", str(ds), t0 + timedelta(minutes=m),
                          {"datastream_id": ds, "phenomenon_time": (t0 + timedelta(minutes=m)).isoformat(),
                           "result": v})
               for m, ds, v in [(0, 1, 12.0), (0, 2, 1.0), (10, 1, 14.0), (10, 2, 1.2), (20, 1, 25.0),
                                (20, 2, 1.5)]]
        await bus.publish_many(obs)

        async def raised() -> bool:
            keys = {e.key for e in await _alert_events(store)}
            return {"flash-flood-risk:subdistrict:830202", "rain-gauge-1-high:1"} <= keys
        await _until(raised)
        flood = next(e for e in await _alert_events(store) if e.key.startswith("flash-flood"))
        assert flood.data["zone_id"] == "subdistrict:830202"
        assert "Pa Tong" in flood.data["message"] and flood.data["rule_version"] == 1
        assert len(await _alert_events(store, "cap.draft_requested")) == 1
    finally:
        await service.stop()
        await bus.stop()

    before = len(await _alert_events(store))
    bus, service = await _platform(store, clock)
    try:
        assert service.engine is not None
        assert "rain-gauge-1-high:1" in service.engine.active()                  # restored
        await bus.publish(make_event("observation.received", "1", t0 + timedelta(minutes=21), {
            "datastream_id": 1, "phenomenon_time": (t0 + timedelta(minutes=21)).isoformat(), "result": 22.0}))
        await service.delete(CUSTOM["id"])

        async def cleared() -> bool:
            return any(e.key == "rain-gauge-1-high:1" for e in await _alert_events(store, "alert.cleared"))
        await _until(cleared)
        assert len(await _alert_events(store)) == before                           # no second raise
        versions = await service.versions(CUSTOM["id"])
        assert versions[-1]["op"] == "deleted" and versions[-1]["version"] == 3
    finally:
        await service.stop()
        await bus.stop()
    from citydata.rules.schema import rule_outbox

    assert await store.scalar(select(func.count()).select_from(rule_outbox)) == 0   # all published, removed
