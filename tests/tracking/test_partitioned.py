"""Tracking in multi-node mode, in one process: a platform on the machine's NATS (a stream per test, 4
partitions) is a one-node cluster; the traveller's partition is taken away without a clean stop (as when its
node dies) and taken again, and the new owner rebuilds the geofence and overdue state from the store, applies
no ping twice and raises each exit and overdue once."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from sqlalchemy import select

from citydata.clock import DrivenClock
from citydata.cluster.partition import partition_of
from citydata.events import Event
from citydata.tracking.geofence import INSIDE, OUTSIDE
from citydata.tracking.schema import tracking_travellers
from tests.conftest import make_settings
from tests.tracking.conftest import OLD_TOWN, START, arrive_and_enrol, ping

PARTITIONS = 4
PHANG_NGA = (98.525, 8.450)
LIMIT_S = 2 * 60                   # report interval 60 s, no grace


@pytest.fixture
async def names(nats_url: str) -> AsyncIterator[dict[str, str]]:
    token = secrets.token_hex(4)
    yield {"stream": f"TRK_{token}", "prefix": f"trk{token}"}
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for drop in (js.delete_stream(f"TRK_{token}"), js.delete_key_value(f"TRK_{token}_cluster")):
            with contextlib.suppress(Exception):   # not created when the test failed early
                await drop
    finally:
        await nc.close()


async def stream_kinds(url: str, prefix: str, key: str) -> list[tuple[str, str]]:
    """(kind, id) of the traveller's tracking events as the stream stored them, in order."""
    nc = await nats.connect(url)
    try:
        sub = await nc.jetstream().subscribe(f"{prefix}.p.*.tracking.>", ordered_consumer=True)
        out: list[tuple[str, str]] = []
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except TimeoutError:
                break
            event = Event.from_bytes(msg.data)
            if event.key == key and event.kind != "tracking.pings":
                out.append((event.kind, event.id))
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def until(cond: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_partition_takeover_rebuilds_state_and_raises_once(tmp_path: Path, nats_url: str,
                                                                  names: dict[str, str]) -> None:
    from citydata.api.routes import tracking as routes
    from citydata.app import Platform

    clock = DrivenClock(START + timedelta(minutes=5))
    settings = make_settings(tmp_path, mqtt_url="none://", bus_url=nats_url, bus_stream=names["stream"],
                             bus_subject_prefix=names["prefix"], bus_partitions=PARTITIONS, cluster_lease_s=3.0,
                             tracking_dwell_s=0, tracking_report_interval_s=60, tracking_overdue_grace_s=0,
                             tracking_overdue_check_s=3600.0, tracking_max_speed_kmh=100000.0,
                             vision_enabled=False, wifi_enabled=False)
    async with Platform(settings, clock=clock) as p:
        node = p.cluster
        assert node is not None and p.tracking is not None and p.tracking.shared
        assert p.app is not None
        p.app.include_router(routes.router)
        transport = httpx.ASGITransport(app=p.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://citydata.test") as client:
            tid, token = await arrive_and_enrol(p, client)
            k = partition_of(tid, PARTITIONS)
            await until(lambda: k in node.tracking and tid in node.tracking[k].travellers)
            row = await p.store.fetch_one(select(tracking_travellers).where(tracking_travellers.c.traveller_id == tid))
            assert row is not None and (row["bus_partitions"], row["bus_partition"]) == (PARTITIONS, k)
            auth = {"Authorization": f"Bearer {token}"}

            async def send(minutes: int, where: tuple[float, float]) -> None:
                body = ping(START + timedelta(minutes=minutes), *where)
                r = await client.post("/api/v1/tracking/pings", json=body, headers=auth)
                assert r.status_code == 202, r.text

            await send(1, OLD_TOWN)
            await send(2, PHANG_NGA)
            home = p.tracking.home.id
            part = node.tracking[k]
            await until(lambda: part.travellers[tid].fences.states[home].state == OUTSIDE
                        and part.committed == part.applied)
            # the attention list of the node (from the store) shows the exit
            r = await client.get("/api/v1/tracking/attention", headers={"Authorization": f"Bearer {await admin(p)}"})
            assert [(i["traveller_id"], i["reasons"]) for i in r.json()["items"]] == [(tid, ["outside"])]

            # the partition is lost (no stop, no commit) and taken again: the state comes back from the store
            await node._lost(k)
            await node._acquire(k)
            part = node.tracking[k]
            rt = part.travellers[tid]
            assert rt.fences.states[home].state == OUTSIDE
            assert rt.last_fix is not None and (rt.last_fix.lon, rt.last_fix.lat) == PHANG_NGA
            assert part.committed > 0 and part.applied == part.committed

            await send(2, PHANG_NGA)         # the same fix again: a duplicate, no second exit
            await send(3, OLD_TOWN)          # back: one return
            await until(lambda: part.travellers[tid].fences.states[home].state == INSIDE
                        and part.committed == part.applied)

            # silent for longer than the limit: overdue once, also when the partition is lost before its commit
            clock.advance(LIMIT_S + 1)
            async with part._lock:
                raised = await part.tick()
            assert [e.kind for e in raised] == ["tracking.overdue"]
            await node._lost(k)              # lost before the timer's commit: the new owner raises it again ...
            await node._acquire(k)
            part = node.tracking[k]
            async with part._lock:
                again = await part.tick()
                await part._commit()
            assert [e.id for e in again] == [e.id for e in raised]   # ... with the same id: stored once
            async with part._lock:
                assert await part.tick() == []

            kinds = await stream_kinds(nats_url, names["prefix"], tid)
            assert [kind for kind, _ in kinds] == ["tracking.arrived", "tracking.zone_left", "tracking.zone_entered",
                                                   "tracking.overdue"]
            assert len({i for _, i in kinds}) == len(kinds)


async def admin(p: Any) -> str:
    from tests.conftest import token_for

    return await token_for(p, "admin")
