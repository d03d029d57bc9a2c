"""A leader change with the old leader still running (a process starved of CPU past its lease, on a loaded
machine): the new leader repositions the ``alerts`` consumer after the last acknowledged event and applies
the events again, while the old one works through the batch it had fetched. Each alert episode is stored
once, all cleared, on SQLite and PostgreSQL (the machine's NATS, a stream per test)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from sqlalchemy import func, select

from citydata.alerts.service import AlertService
from citydata.bus.base import Delivery
from citydata.bus.nats import NatsBus
from citydata.clock import DrivenClock
from citydata.events import Event, make_event
from citydata.incidents.schema import alerts
from tests.incidents.support import alert_payload

KEYS = [f"cluster-level:gauge-{i:02d}" for i in range(30)]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


class StarvedAlertService(AlertService):
    """The old leader: the real service, each event taking a while (the process gets little CPU)."""

    applied = 0

    async def _on_event(self, delivery: Delivery) -> None:
        await asyncio.sleep(0.05)
        await super()._on_event(delivery)
        self.applied += 1


@pytest.fixture
async def names(nats_url: str) -> AsyncIterator[dict[str, str]]:
    token = uuid.uuid4().hex[:10]
    yield {"stream": f"T_{token}", "prefix": f"t{token}"}
    nc = await nats.connect(nats_url)
    with contextlib.suppress(Exception):
        await nc.jetstream().delete_stream(f"T_{token}")
    await nc.close()


def episode_events() -> list[Event]:
    """As the rules engine sends them: per key a raise (episode 1) then, after every key's raise, its clear."""
    out = []
    for key in KEYS:
        out.append(make_event("alert.raised", key, T0, alert_payload(key, at=T0, episode=f"v1.1@{T0.isoformat()}",
                                                                     revision=0), source="rules"))
    at = T0 + timedelta(seconds=1)
    for key in KEYS:
        out.append(make_event("alert.cleared", key, at, {"dedup_key": key, "rule_id": "cluster-level",
                                                         "reason": "below", "observed_at": at.isoformat(),
                                                         "episode": f"v1.1@{T0.isoformat()}"}, source="rules"))
    return out


async def settled(store: Any, timeout: float = 30.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        total = await store.scalar(select(func.count()).select_from(alerts))
        active = await store.scalar(select(func.count()).select_from(alerts).where(alerts.c.state != "cleared"))
        if (total >= len(KEYS) and not active) or time.monotonic() > deadline:
            return int(total), int(active)
        await asyncio.sleep(0.2)


async def test_old_and_new_leader_applying_the_same_events_store_each_episode_once(
        nats_url: str, names: dict[str, str], store: Any, clock: DrivenClock) -> None:
    def bus() -> NatsBus:
        return NatsBus(nats_url, stream=names["stream"], prefix=names["prefix"], queue_size=1000, partitions=4,
                       fetch_timeout=0.3, close_grace_s=0.5, ack_wait=30.0)

    old_bus, new_bus = bus(), bus()
    await old_bus.start()
    await new_bus.start()
    old = StarvedAlertService(store, old_bus, clock)
    new = AlertService(store, new_bus, clock)
    try:
        await old_bus.publish_many(episode_events())
        await old.start()
        deadline = time.monotonic() + 20
        while old.applied < 3:        # the old leader has the batch in hand and is a few events in
            assert time.monotonic() < deadline, "the old leader applied nothing"
            await asyncio.sleep(0.02)
        # its lease expired meanwhile: the new leader takes over as ClusterNode._lead does
        await new_bus.resume_at("alerts", "alert.>", after=None)
        await new.start()
        while old.applied < 2 * len(KEYS):   # the old one works through what it had fetched
            assert time.monotonic() < deadline + 20, f"the old leader stalled at {old.applied}"
            await asyncio.sleep(0.05)
        total, active = await settled(store)
        per_key = await store.fetch_all(select(alerts.c.dedup_key, func.count().label("n"))
                                        .group_by(alerts.c.dedup_key).having(func.count() > 1))
        assert (total, active) == (len(KEYS), 0), f"{total} rows, {active} active; stored twice: {len(per_key)}"
        occurrences = await store.fetch_all(select(alerts.c.occurrences).where(alerts.c.occurrences != 1))
        assert not occurrences
    finally:
        await old.stop()
        await new.stop()
        await old_bus.stop()
        await new_bus.stop()
