"""The NATS bus in multi-node mode (partitioned subjects) on the machine's NATS, a stream per test: events land
in their key's partition, a partition consumer sees only its keys in order, fan-out kinds reach every
partition, live subscribers (and broadcasts) see every partition, and ``resume_at`` hands a killed member's
events to the next one in order instead of after ``ack_wait``."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import nats
import pytest

from citydata.bus.base import Delivery, register_fanout_kind
from citydata.bus.nats import NatsBus, consumer_name
from citydata.cluster.partition import partition_of
from citydata.events import Event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
N = 4
register_fanout_kind("test.control")


def ev(key: str, n: int, kind: str = "obs.received") -> Event:
    return Event(kind=kind, key=key, time=T0 + timedelta(seconds=n), data={"n": n})


async def until(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


@pytest.fixture
async def names(nats_url: str) -> AsyncIterator[dict[str, str]]:
    token = uuid.uuid4().hex[:10]
    yield {"stream": f"T_{token}", "prefix": f"t{token}"}
    nc = await nats.connect(nats_url)
    with contextlib.suppress(Exception):
        await nc.jetstream().delete_stream(f"T_{token}")
    await nc.close()


def make(url: str, names: dict[str, str], ack_wait: float = 30.0) -> NatsBus:
    return NatsBus(url, stream=names["stream"], prefix=names["prefix"], queue_size=1000, partitions=N,
                   fetch_timeout=0.3, close_grace_s=0.5, ack_wait=ack_wait)


async def test_partition_consumers_fanout_and_live(nats_url: str, names: dict[str, str]) -> None:
    bus = make(nats_url, names)
    await bus.start()
    try:
        keys = [f"k{i}" for i in range(20)]
        got: dict[int, list[tuple[str, int]]] = {k: [] for k in range(N)}
        live: list[str] = []

        def handler(k: int) -> object:
            async def h(d: Delivery) -> None:
                got[k].append((d.event.key, d.event.data["n"]))
            return h

        sub = await bus.subscribe("obs.>", lambda d: _append(live, d))
        for k in range(N):
            await bus.consume("g", "obs.>", handler(k), partition=k)   # type: ignore[arg-type]
        control: list[int] = []
        for k in range(N):
            async def on_control(d: Delivery, k: int = k) -> None:
                control.append(k)
            await bus.consume("c", "test.>", on_control, partition=k)
        await bus.publish_many([ev(key, n) for n in range(5) for key in keys])
        await bus.publish(ev("any", 0, kind="test.control"))
        await bus.broadcast([ev("b1", 0, kind="obs.changed")])
        await until(lambda: sum(len(v) for v in got.values()) == 100 and sorted(control) == list(range(N))
                    and len(live) == 101)
        for k, items in got.items():
            assert all(partition_of(key, N) == k for key, _ in items)
            for key in {key for key, _ in items}:
                assert [n for kk, n in items if kk == key] == list(range(5))   # per-key order
        assert "b1" in live            # a broadcast reaches live subscribers on a partitioned bus
        with pytest.raises(ValueError, match="out of range"):
            await bus.consume("g", "obs.>", handler(0), partition=N)   # type: ignore[arg-type]
        await sub.close()
    finally:
        await bus.stop()


async def _append(live: list[str], d: Delivery) -> None:
    live.append(d.event.key)


async def test_resume_at_hands_a_dead_members_events_over_in_order(nats_url: str, names: dict[str, str]) -> None:
    bus = make(nats_url, names, ack_wait=30.0)
    await bus.start()
    try:
        key = next(f"k{i}" for i in range(100) if partition_of(f"k{i}", N) == 1)
        await bus.ensure_group("rules", ">", partition=1)
        seqs = await bus.publish_many([ev(key, n) for n in range(6)])
        # a member that dies holding events: it fetched all six and acknowledged only the first two
        nc = await nats.connect(nats_url)
        psub = await nc.jetstream().pull_subscribe_bind(consumer_name("rules.p1"), names["stream"])
        msgs = await psub.fetch(6, timeout=2)
        for msg in msgs[:2]:
            await msg.ack()
        await nc.close()           # killed: no nak, the server would wait ack_wait (30 s) to redeliver
        await bus.publish_many([ev(key, n) for n in range(6, 9)])

        await bus.resume_at("rules", ">", after=seqs[1], partition=1)   # the checkpoint covers events 0 and 1
        got: list[int] = []

        async def h(d: Delivery) -> None:
            got.append(d.event.data["n"])

        started = time.monotonic()
        await bus.consume("rules", ">", h, partition=1)
        await until(lambda: len(got) == 7, timeout=10)
        assert got == list(range(2, 9)) and time.monotonic() - started < 10   # in order, not after ack_wait
        # nothing in hand beyond the position: resume_at leaves the consumer alone
        await bus.resume_at("rules", ">", after=None, partition=1)
    finally:
        await bus.stop()
