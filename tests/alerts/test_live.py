"""The SSE live hub: role filtering, Last-Event-ID resume from the bounded buffer, heartbeats, and a slow
client cut off instead of blocking the others."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from citydata.alerts.live import LiveHub
from citydata.auth import Principal, Role
from citydata.bus.memory import MemoryBus
from citydata.events import make_event

OPERATOR = Principal("op", Role.OPERATOR, "user")
HEALTH = Principal("h", Role.HEALTH, "user", agency="health")
TOURIST_POLICE = Principal("tp", Role.TOURIST_POLICE, "user", agency="tourist_police")
ANALYST = Principal("an", Role.ANALYST, "user")
ALL = frozenset({"alert", "incident", "observation"})


def _alert(kind: str, i: int = 1) -> dict[str, Any]:
    return {"change": "opened", "alert": {"id": i, "kind": kind}}


def _incident(agencies: list[str], i: int = 1) -> dict[str, Any]:
    return {"change": "dispatched", "incident": {"id": i, "agencies": agencies}}


async def _collect(hub: LiveHub, who: Principal, n_frames: int, **kw: Any) -> list[bytes]:
    out: list[bytes] = []
    gen = hub.stream(who, events=kw.pop("events", ALL), last_event_id=kw.pop("last_event_id", None),
                     heartbeat_s=kw.pop("heartbeat_s", 5.0), max_s=kw.pop("max_s", 2.0))
    async for frame in gen:
        out.append(frame)
        if len(out) >= n_frames:
            await gen.aclose()
            break
    return out


async def test_each_client_gets_what_its_role_allows() -> None:
    hub = LiveHub(MemoryBus())
    tasks = {who.subject: asyncio.create_task(_collect(hub, who, 10, max_s=0.3))
             for who in (OPERATOR, HEALTH, TOURIST_POLICE, ANALYST)}
    await asyncio.sleep(0.05)
    hub.publish("alert", _alert("env.flood_risk", 1))
    hub.publish("alert", _alert("tracking.left_zone", 2))
    hub.publish("incident", _incident(["tourist_police"], 3))
    hub.publish("observation", {"id": 4, "datastream_id": 1, "result": 1.0})
    got = {name: b"".join(await t) for name, t in tasks.items()}
    names = {k: [line[7:] for line in v.decode().splitlines() if line.startswith("event: ")] for k, v in got.items()}
    assert names["op"] == ["alert", "alert", "incident", "observation"]
    assert names["h"] == ["alert", "observation"]          # no tracking alert, not its agency's incident
    assert names["tp"] == ["alert", "alert", "incident", "observation"]
    assert names["an"] == ["observation"]                   # analysts do not read alerts
    assert b"retry: 3000" in got["op"]


async def test_resume_after_last_event_id_and_heartbeats() -> None:
    hub = LiveHub(MemoryBus(), buffer=10)
    ids = [hub.publish("alert", _alert("env.x", i)).id for i in range(15)]
    frames = b"".join(await _collect(hub, OPERATOR, 100, last_event_id=ids[9], max_s=0.2))
    replayed = [line[4:] for line in frames.decode().splitlines() if line.startswith("id: ")]
    assert replayed == ids[10:]
    assert b"".join(await _collect(hub, OPERATOR, 100, last_event_id="otherboot-3", max_s=0.1)).count(b"id:") == 0
    frames = b"".join(await _collect(hub, OPERATOR, 3, heartbeat_s=0.05, max_s=1.0))
    assert frames.count(b": heartbeat") == 2


async def test_a_slow_client_is_cut_off_and_the_others_keep_going() -> None:
    hub = LiveHub(MemoryBus(), client_queue=8)
    slow = hub.stream(OPERATOR, events=ALL, last_event_id=None, heartbeat_s=5.0)
    assert (await slow.__anext__()).startswith(b"retry:")      # connected, then never reads again
    fast = asyncio.create_task(_collect(hub, OPERATOR, 31, max_s=2.0))
    await asyncio.sleep(0.05)
    for i in range(30):
        hub.publish("alert", _alert("env.x", i))
        await asyncio.sleep(0.002)                            # the fast client keeps up with this pace
    assert hub.cut_off == 1
    assert len(await fast) == 31
    rest = [frame async for frame in slow]
    assert len(rest) < 30                                     # it ended instead of blocking the hub


async def test_bus_events_become_sse_events() -> None:
    bus = MemoryBus()
    await bus.start()
    hub = LiveHub(bus)
    await hub.start()
    try:
        task = asyncio.create_task(_collect(hub, OPERATOR, 3, max_s=2.0))
        await asyncio.sleep(0.05)
        now = datetime.now(UTC)
        await bus.broadcast([
            make_event("sta.changed", "Observation:9", now, {"entity": "Observation", "id": 9, "op": "created",
                                                             "json": {"result": 2.5, "phenomenonTime": "t"},
                                                             "links": {"Datastream": 3}}),
            make_event("incident.changed", "5", now, _incident([], 5))])
        frames = b"".join(await task)
        assert b"event: observation" in frames and b'"datastream_id":3' in frames
        assert b"event: incident" in frames
    finally:
        await hub.stop()
        await bus.stop()
