"""A consumer of the in-process bus never dies silently.

Before the supervisor, a failure that escaped the delivery loop ended the consumer's task: a ``CancelledError``
raised by the handler (it awaited something another task cancelled) finished the task as "cancelled", which
asyncio never logs, and any other escaping error only as "Task exception was never retrieved" at garbage
collection. The member stayed in its group, so its queue filled up and then every publisher waited for ever.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from citydata.bus.base import Delivery
from citydata.bus.memory import MemoryBus
from tests.bus.test_bus import ev, until


async def test_a_cancelled_error_from_the_handler_is_a_failed_delivery_not_a_dead_consumer() -> None:
    bus = MemoryBus(queue_size=4)
    await bus.start()
    got: list[tuple[int, int]] = []
    tripped = False

    async def handler(d: Delivery) -> None:
        nonlocal tripped
        if d.event.data["n"] == 3 and not tripped:
            tripped = True
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            fut.cancel()          # e.g. a store query whose future another task cancelled
            await fut
        got.append((d.event.data["n"], d.attempt))

    member = await bus.consume("rules", "obs.>", handler)
    try:
        # 20 events through a queue of 4: the publisher is held back (backpressure) while the consumer works
        await asyncio.wait_for(bus.publish_many([ev(n=i) for i in range(20)]), 10)
        await until(lambda: len(got) == 20, what="all 20 events handled")
        assert [n for n, _ in got] == list(range(20))
        assert (3, 2) in got                  # the failed delivery came again, as attempt 2
        assert bus.stats.redelivered == 1 and bus.stats.dead_lettered == 0
        assert not member.task.done()         # type: ignore[attr-defined]
        assert "consumer:rules#0" in bus.queue_depths()
    finally:
        await asyncio.wait_for(bus.stop(), 10)
    assert bus.queue_depths() == {}           # the gauge goes only when the consumer is closed


class Fatal(BaseException):
    """Something that escapes ``except Exception`` (the consumer loop's own failure)."""


async def test_a_failure_escaping_the_loop_is_logged_counted_and_the_consumer_restarted(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = MemoryBus(queue_size=4)
    await bus.start()
    got: list[tuple[int, int]] = []
    tripped = False

    async def handler(d: Delivery) -> None:
        nonlocal tripped
        if d.event.data["n"] == 5 and not tripped:
            tripped = True
            raise Fatal("boom")
        got.append((d.event.data["n"], d.attempt))

    await bus.consume("rules", "obs.>", handler)
    try:
        with caplog.at_level(logging.ERROR, logger="citydata.bus.memory"):
            await asyncio.wait_for(bus.publish_many([ev(n=i) for i in range(30)]), 10)
            await until(lambda: len(got) == 30, what="all 30 events handled after the restart")
        assert [n for n, _ in got] == list(range(30))
        assert (5, 2) in got                  # the event in hand is handed to the restarted loop
        assert bus.stats.consumer_failures == 1
        failed = [r for r in caplog.records if "consumer rules#0 failed" in r.getMessage()]
        assert len(failed) == 1 and failed[0].exc_info is not None      # with its traceback
        assert failed[0].exc_info[0] is Fatal
        await bus.publish(ev(n=30))             # and it goes on consuming
        await until(lambda: len(got) == 31, what="an event after the restart")
    finally:
        await asyncio.wait_for(bus.stop(), 10)


async def test_close_still_ends_a_consumer_blocked_in_its_handler() -> None:
    bus = MemoryBus(queue_size=2)
    await bus.start()
    forever = asyncio.Event()

    async def handler(d: Delivery) -> None:
        await forever.wait()

    member = await bus.consume("rules", "obs.>", handler)
    await bus.publish(ev(n=0))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(member.close(), 5)
    assert member.task.done() and bus.stats.consumer_failures == 0      # type: ignore[attr-defined]
    assert bus.queue_depths() == {}
    await bus.stop()
