"""An alert episode is stored once, whatever the bus does: a raise redelivered after its clear (past ack_wait or
JetStream's duplicate window), the same transition decided by two engines, a stale clear, an older update, two
consumers (an old and a new leader) storing the same episode at once; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from citydata.alerts.events import AlertCleared, AlertRaised
from citydata.alerts.service import AlertService
from citydata.clock import DrivenClock
from citydata.errors import Conflict
from citydata.incidents.schema import alerts
from citydata.store import create_store
from tests.incidents.support import alert_payload

KEY = "heavy-rain:1"


def raised(episode: str, revision: int = 0, evidence: str = "obs-1") -> AlertRaised:
    return AlertRaised.model_validate(alert_payload(KEY, evidence_id=evidence, episode=episode, revision=revision))


def cleared(episode: str | None) -> AlertCleared:
    return AlertCleared.model_validate({"dedup_key": KEY, "rule_id": "heavy-rain", "reason": "below",
                                        "observed_at": "2026-11-21T03:00:00+00:00", "episode": episode})


async def rows(p: Any) -> list[dict[str, Any]]:
    found = await p.store.fetch_all(select(alerts).where(alerts.c.dedup_key == KEY).order_by(alerts.c.id))
    return [dict(r) for r in found]


async def test_an_episode_is_stored_once_and_redeliveries_change_nothing(backend_ioc: Any) -> None:
    service: AlertService = backend_ioc.ioc.alerts
    assert (await service.raise_alert(raised("v1.1@a"), event_id="r1"))[0] == "opened"
    assert (await service.raise_alert(raised("v1.1@a", 1, "obs-2"), event_id="u1"))[0] == "updated"
    assert (await service.raise_alert(raised("v1.1@a", 1, "obs-2"), event_id="u1-other"))[0] == "unchanged"
    assert (await service.raise_alert(raised("v1.1@a", 0), event_id="r1"))[0] == "unchanged"   # older revision
    assert await service.clear_by_key(cleared("v1.1@a")) is not None

    # the raise again after its clear: redelivered (same id) or decided again by another engine (another id)
    assert (await service.raise_alert(raised("v1.1@a"), event_id="r1"))[0] == "unchanged"
    assert (await service.raise_alert(raised("v1.1@a"), event_id="r1-other"))[0] == "unchanged"
    stored = await rows(backend_ioc)
    assert [(r["state"], r["occurrences"], r["revision"]) for r in stored] == [("cleared", 2, 1)]

    # the next episode is a new alert (nothing lost); the first episode's clear, redelivered, leaves it open
    change, second = await service.raise_alert(raised("v1.2@b"), event_id="r2")
    assert change == "opened" and second["id"] != stored[0]["id"]
    assert await service.clear_by_key(cleared("v1.1@a")) is None
    assert [(r["episode"], r["state"]) for r in await rows(backend_ioc)] == [("v1.1@a", "cleared"),
                                                                             ("v1.2@b", "open")]
    # a clear that names no episode (an older producer) still clears the active alert
    assert await service.clear_by_key(cleared(None)) is not None


async def test_the_store_refuses_a_second_row_of_an_episode(backend_ioc: Any) -> None:
    service: AlertService = backend_ioc.ioc.alerts
    await service.raise_alert(raised("v1.1@a"), event_id="r1")
    row = (await rows(backend_ioc))[0]
    copy = {k: v for k, v in row.items() if k != "id"}

    async def insert(conn: Any) -> None:
        await conn.execute(alerts.insert().values(**copy))

    with pytest.raises(Conflict):
        await backend_ioc.store.write(insert)


async def test_two_consumers_storing_one_episode_at_once_store_it_once(backend_ioc: Any, backend_settings: Any,
                                                                       clock: DrivenClock) -> None:
    """The old leader's consumer (still running after its lease expired) and the new leader's, each with its
    own store connection, open the same episodes at the same time: the unique index lets one row in."""
    other_store = create_store(backend_settings, clock)
    await other_store.start()
    try:
        mine = backend_ioc.ioc.alerts
        other = AlertService(other_store, backend_ioc.bus, clock)
        episodes = [f"v1.{i}@t" for i in range(1, 21)]
        for ep in episodes:
            results = await asyncio.gather(mine.raise_alert(raised(ep), event_id=f"{ep}-a"),
                                           other.raise_alert(raised(ep), event_id=f"{ep}-b"))
            assert sorted(r[0] for r in results) == ["opened", "unchanged"], results
            assert await mine.clear_by_key(cleared(ep)) is not None
        count = await backend_ioc.store.scalar(select(func.count()).select_from(alerts)
                                               .where(alerts.c.dedup_key == KEY))
        assert count == len(episodes)
    finally:
        await other_store.stop()


async def test_a_raise_without_an_episode_redelivered_after_its_clear_opens_nothing(backend_ioc: Any) -> None:
    """A producer that names no episode (a tourist's report, tracking): the last raise applied, redelivered
    after the clear (JetStream past ack_wait), is recognised by its event id."""
    service: AlertService = backend_ioc.ioc.alerts
    plain = AlertRaised.model_validate(alert_payload(KEY))
    assert (await service.raise_alert(plain, event_id="p1"))[0] == "opened"
    assert await service.clear_by_key(cleared(None)) is not None
    assert (await service.raise_alert(plain, event_id="p1"))[0] == "unchanged"
    assert [r["state"] for r in await rows(backend_ioc)] == ["cleared"]
    assert (await service.raise_alert(plain, event_id="p2"))[0] == "opened"    # a new raise: a new alert
