"""``batch_ack``: a consumer gets what is waiting as batches, the last delivery of each marked, and a batch is
acknowledged only after the handler returned for its last delivery; when that last one fails for good, the
batch's other deliveries come back (their effect may not be committed). Every bus kind."""

from __future__ import annotations

from typing import Any

import pytest

from citydata.bus.base import Delivery
from tests.bus.test_bus import DURABLE, BusEnv, ev, settle, until
from tests.bus.test_bus import env as env  # the fixture, for this module's tests

N = 10


def batches(deliveries: list[Delivery]) -> list[list[Delivery]]:
    """The deliveries split where ``last_in_batch`` marks a batch's end."""
    out: list[list[Delivery]] = [[]]
    for d in deliveries:
        out[-1].append(d)
        if d.last_in_batch:
            out.append([])
    return [b for b in out if b]


async def test_waiting_events_come_as_batches_acknowledged_after_the_last(env: BusEnv) -> None:
    bus = await env.open()
    await bus.ensure_group("g", "obs.>", start="all")
    seen: list[Delivery] = []

    async def handler(d: Delivery) -> None:
        seen.append(d)

    if env.kind == "memory":   # no journal: the group must exist before the events
        consumer = await bus.consume("g", "obs.>", handler, start="all", batch_ack=True)
        await bus.publish_many([ev(n=n, key=f"k{n}") for n in range(N)])
    else:
        await bus.publish_many([ev(n=n, key=f"k{n}") for n in range(N)])
        consumer = await bus.consume("g", "obs.>", handler, start="all", batch_ack=True)
    await until(lambda: len(seen) >= N, what="every event")
    assert sorted(d.event.data["n"] for d in seen) == list(range(N))
    assert seen[-1].last_in_batch
    assert any(len(b) > 1 for b in batches(seen)), "the waiting events should come in batches"
    await consumer.close()
    if env.kind in DURABLE:    # everything was acknowledged: a new member of the group gets nothing
        bus = await env.restart(bus)
        again: list[Delivery] = []

        async def record(d: Delivery) -> None:
            again.append(d)

        await bus.consume("g", "obs.>", record, start="all", batch_ack=True)
        await settle(1.0)
        assert again == []


async def test_a_last_delivery_that_fails_for_good_brings_its_batch_back(env: BusEnv) -> None:
    bus = await env.open()
    await bus.ensure_group("g", "obs.>", start="all")
    seen: list[Delivery] = []
    poison = N - 1

    async def handler(d: Delivery) -> None:
        seen.append(d)
        if d.last_in_batch and d.event.data["n"] == poison:
            raise RuntimeError("cannot commit this batch")

    events = [ev(n=n, key=f"k{n}") for n in range(N)]
    if env.kind == "memory":
        consumer = await bus.consume("g", "obs.>", handler, start="all", max_attempts=2, batch_ack=True)
        await bus.publish_many(events)
    else:
        await bus.publish_many(events)
        consumer = await bus.consume("g", "obs.>", handler, start="all", max_attempts=2, batch_ack=True)
    await until(lambda: bus.stats.dead_lettered >= 1, timeout=20, what="the poison event dead-lettered")

    def handled_after_the_failure() -> bool:
        failed_batch = next(b for b in batches(seen) if b[-1].event.data["n"] == poison)
        later = seen[seen.index(failed_batch[-1]) + 1:]
        return all(any(x.event.id == d.event.id and x.attempt > d.attempt for x in later)
                   for d in failed_batch[:-1])

    await until(handled_after_the_failure, timeout=20, what="the failed batch's other events again")
    first_failed = next(b for b in batches(seen) if b[-1].event.data["n"] == poison)
    assert len(first_failed) > 1, "the poison event should have ended a batch of several"
    await settle(0.5)
    assert bus.stats.dead_lettered == 1
    assert {d.event.data["n"] for d in seen} == set(range(N))
    await consumer.close()
    if env.kind in DURABLE:    # the rest was acknowledged once handled again, and the poison one settled
        bus = await env.restart(bus)
        again: list[Any] = []

        async def record(d: Delivery) -> None:
            again.append(d.event.data["n"])

        await bus.consume("g", "obs.>", record, start="all", batch_ack=True)
        await settle(1.0)
        assert again == []


@pytest.mark.parametrize("batch_ack", [False, True])
async def test_memory_bus_marks_batches_only_with_batch_ack(batch_ack: bool) -> None:
    from citydata.bus.memory import MemoryBus

    bus = MemoryBus()
    await bus.start()
    seen: list[Delivery] = []

    async def handler(d: Delivery) -> None:
        seen.append(d)

    try:
        await bus.consume("g", "obs.>", handler, batch_ack=batch_ack)
        await bus.publish_many([ev(n=n, key=f"k{n}") for n in range(N)])
        await until(lambda: len(seen) == N, what="every event")
        assert all(d.last_in_batch for d in seen) is (not batch_ack)
    finally:
        await bus.stop()
