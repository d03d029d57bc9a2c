"""One suite for every bus: in-process (no journal), in-process with the store journal on SQLite and on
PostgreSQL, and NATS JetStream. Each test runs against real parts: a real store, a real NATS server (a unique
stream and subject prefix per test, deleted afterwards)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from citydata.bus.base import Bus, Delivery
from citydata.bus.memory import MemoryBus
from citydata.clock import DrivenClock
from citydata.config import Settings, load_settings
from citydata.events import Event
from citydata.store import create_store, schema
from citydata.store.engine import Store
from citydata.store.journal import StoreJournal

ALL = ["memory", "sqlite", "postgresql", "nats"]
DURABLE = ["sqlite", "postgresql", "nats"]
IN_PROCESS = ["memory", "sqlite", "postgresql"]
JOURNALED = ["sqlite", "postgresql"]
T0 = datetime(2026, 11, 21, 2, 30, tzinfo=UTC)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(environ={}, data_dir=tmp_path / "data", log_format="text", **overrides)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ev(kind: str = "obs.received", key: str = "k1", n: int = 0, **data: Any) -> Event:
    return Event(kind=kind, key=key, time=T0 + timedelta(seconds=n), data={"n": n, **data})


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def settle(seconds: float = 0.3) -> None:
    """Give a bus time to deliver anything it should not (to show it did not)."""
    await asyncio.sleep(seconds)


class BusEnv:
    """Builds buses of one kind over one durable backing (store or stream) that outlives each bus."""

    def __init__(self, kind: str, tmp_path: Path, clock: DrivenClock, request: pytest.FixtureRequest) -> None:
        self.kind, self.tmp_path, self.clock, self.request = kind, tmp_path, clock, request
        self.durable = kind in DURABLE
        self.buses: list[Bus] = []
        self.store: Store | None = None
        self.journal: StoreJournal | None = None
        self.settings: Settings | None = None
        token = uuid.uuid4().hex[:10]
        self.stream, self.prefix = f"T_{token}", f"t{token}"
        self.nats_url: str | None = None
        if kind == "postgresql":
            self.settings = make_settings(tmp_path, db_url=request.getfixturevalue("pg_url"),
                                          db_schema=request.getfixturevalue("pg_schema"))
        elif kind == "sqlite":
            self.settings = make_settings(tmp_path)
        elif kind == "nats":
            self.nats_url = request.getfixturevalue("nats_url")

    async def open(self, queue_size: int = 1000) -> Bus:
        """A new, started bus on this environment's backing (a new store and journal for the journaled kinds)."""
        bus: Bus
        if self.kind == "memory":
            bus = MemoryBus(queue_size=queue_size)
        elif self.kind == "nats":
            from citydata.bus.nats import NatsBus

            assert self.nats_url is not None
            bus = NatsBus(self.nats_url, stream=self.stream, prefix=self.prefix, queue_size=queue_size,
                          fetch_timeout=0.5, close_grace_s=0.5)
        else:
            assert self.settings is not None
            if self.store is None:
                self.store = create_store(self.settings, self.clock)
                await self.store.start()
                self.journal = StoreJournal(self.store)
            bus = MemoryBus(queue_size=queue_size, journal=self.journal)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def restart(self, bus: Bus) -> Bus:
        """Stop ``bus`` as a process would on shutdown (store included), then open a new one."""
        await self.stop(bus)
        if self.store is not None:
            assert self.journal is not None
            await self.journal.flush()
            await self.store.stop()
            self.store = self.journal = None
        return await self.open()

    async def stop(self, bus: Bus) -> None:
        await bus.stop()
        if bus in self.buses:
            self.buses.remove(bus)

    async def close(self) -> None:
        for bus in self.buses:
            with contextlib.suppress(Exception):
                await bus.stop()
        if self.store is not None:
            assert self.journal is not None
            with contextlib.suppress(Exception):
                await self.journal.flush()
            await self.store.stop()
        if self.kind == "nats":
            import nats

            assert self.nats_url is not None
            nc = await nats.connect(self.nats_url)
            try:
                with contextlib.suppress(Exception):
                    await nc.jetstream().delete_stream(self.stream)
            finally:
                await nc.close()


@pytest.fixture(params=ALL)
async def env(request: pytest.FixtureRequest, tmp_path: Path, clock: DrivenClock) -> AsyncIterator[BusEnv]:
    e = BusEnv(request.param, tmp_path, clock, request)
    try:
        yield e
    finally:
        await e.close()


def collector(store: list[Delivery], *, delay: float = 0.0) -> Callable[[Delivery], Awaitable[None]]:
    async def handler(d: Delivery) -> None:
        if delay:
            await asyncio.sleep(delay)
        store.append(d)

    return handler


# -- publish and consume ------------------------------------------------------------------------------------
async def test_publish_consume_round_trip(env: BusEnv) -> None:
    bus = await env.open()
    got: list[Delivery] = []
    await bus.consume("store-writer", "obs.>", collector(got))
    first = await bus.publish(ev(n=0))
    events = [ev(n=i, key=f"k{i % 3}") for i in range(1, 6)]
    rest = await bus.publish_many(events)
    await bus.publish(ev("device.heartbeat", n=99))  # not matched by the pattern
    await until(lambda: len(got) >= 6, what="6 deliveries")
    await settle(0.2)
    assert len(got) == 6
    seqs = [first, *rest]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    assert [d.seq for d in got] == seqs  # one member: stream order, with the published seqs
    assert [d.event.data["n"] for d in got] == [0, 1, 2, 3, 4, 5]
    assert got[3].event == events[2]
    assert {d.group for d in got} == {"store-writer"} and {d.attempt for d in got} == {1}
    assert bus.stats.published == 7 and bus.stats.delivered == 6
    assert await bus.healthy()


async def test_live_subscribe_patterns(env: BusEnv) -> None:
    bus = await env.open()
    one: list[Delivery] = []
    rest: list[Delivery] = []
    every: list[Delivery] = []
    exact: list[Delivery] = []
    await bus.subscribe("alert.*", collector(one))
    await bus.subscribe("alert.>", collector(rest))
    await bus.subscribe(">", collector(every))
    await bus.subscribe("alert.raised", collector(exact))
    kinds = ["alert.raised", "alert.raised.flood", "alert.cleared", "obs.received"]
    for i, kind in enumerate(kinds):
        await bus.publish(ev(kind, n=i))
    await until(lambda: len(every) == 4 and len(rest) == 3 and len(one) == 2 and len(exact) == 1,
                what="live deliveries")
    await settle(0.2)
    assert [d.event.kind for d in one] == ["alert.raised", "alert.cleared"]
    assert [d.event.kind for d in rest] == ["alert.raised", "alert.raised.flood", "alert.cleared"]
    assert [d.event.kind for d in every] == kinds
    assert [d.event.kind for d in exact] == ["alert.raised"]


async def test_two_groups_each_get_every_event(env: BusEnv) -> None:
    bus = await env.open()
    rules: list[Delivery] = []
    writer: list[Delivery] = []
    await bus.consume("rules", "obs.*", collector(rules))
    await bus.consume("writer", "obs.*", collector(writer))
    await bus.publish_many([ev(n=i, key=f"k{i % 4}") for i in range(20)])
    await until(lambda: len(rules) == 20 and len(writer) == 20, what="both groups")
    await settle(0.2)
    assert [d.event.data["n"] for d in rules] == list(range(20))
    assert [d.event.data["n"] for d in writer] == list(range(20))
    assert {d.group for d in rules} == {"rules"} and {d.group for d in writer} == {"writer"}


async def test_members_of_one_group_split_the_work(env: BusEnv) -> None:
    bus = await env.open()
    a: list[Delivery] = []
    b: list[Delivery] = []
    await bus.consume("geofence", "tracking.>", collector(a, delay=0.01))
    await bus.consume("geofence", "tracking.>", collector(b, delay=0.01))
    for i in range(40):
        await bus.publish(ev("tracking.ping", key=f"traveller-{i}", n=i))
        await asyncio.sleep(0.003)
    await until(lambda: len(a) + len(b) >= 40, what="40 deliveries")
    await settle(0.3)
    ids = [d.event.id for d in a + b]
    assert len(ids) == 40 and len(set(ids)) == 40  # every event once, none twice
    assert a and b  # both members worked
    if env.kind != "nats":  # the in-process bus keeps per-key order by routing a key to one member
        assert not ({d.event.key for d in a} & {d.event.key for d in b})


async def test_start_new_skips_the_past(env: BusEnv) -> None:
    bus = await env.open()
    await bus.publish_many([ev(n=i) for i in range(3)])
    got: list[Delivery] = []
    await bus.consume("late", "obs.>", collector(got), start="new")
    await settle(0.2)
    await bus.publish(ev(n=3))
    await until(lambda: len(got) >= 1, what="the new event")
    await settle(0.2)
    assert [d.event.data["n"] for d in got] == [3]
    everything: list[Delivery] = []
    await bus.consume("replay", "obs.>", collector(everything), start="all")
    if env.durable:  # a durable bus can replay what was published before the group existed
        await until(lambda: len(everything) == 4, what="replay from the start")
        assert [d.event.data["n"] for d in everything] == [0, 1, 2, 3]


# -- failures -----------------------------------------------------------------------------------------------
async def test_handler_exception_is_redelivered_then_succeeds(env: BusEnv) -> None:
    bus = await env.open()
    attempts: list[int] = []
    done: list[Delivery] = []

    async def flaky(d: Delivery) -> None:
        if d.event.data["n"] == 1:
            attempts.append(d.attempt)
            if d.attempt < 3:
                raise RuntimeError("database busy")
        done.append(d)

    await bus.consume("flaky", "obs.>", flaky, max_attempts=5)
    await bus.publish_many([ev(n=i) for i in range(4)])
    await until(lambda: len(done) == 4, what="4 handled")
    await settle(0.2)
    assert attempts == [1, 2, 3]
    assert sorted(d.event.data["n"] for d in done) == [0, 1, 2, 3]
    retried = next(d for d in done if d.event.data["n"] == 1)
    assert retried.redelivered and retried.attempt == 3
    assert bus.stats.redelivered == 2 and bus.stats.dead_lettered == 0
    assert bus.stats.delivered == 4


async def test_poison_event_is_dead_lettered_and_the_group_goes_on(env: BusEnv) -> None:
    bus = await env.open()
    poison_attempts: list[int] = []
    done: list[int] = []

    async def handler(d: Delivery) -> None:
        if d.event.data.get("poison"):
            poison_attempts.append(d.attempt)
            raise ValueError("cannot parse payload")
        done.append(d.event.data["n"])

    await bus.consume("rules", "obs.>", handler, max_attempts=3)
    poison = ev(n=1, poison=True)
    await bus.publish_many([ev(n=0), poison, ev(n=2)])
    await until(lambda: bus.stats.dead_lettered == 1 and len(done) == 2, what="dead letter")
    await bus.publish(ev(n=3))  # later events still flow
    await until(lambda: len(done) == 3, what="event after the poison")
    await settle(0.3)
    assert poison_attempts == [1, 2, 3]
    assert sorted(done) == [0, 2, 3]
    assert bus.stats.dead_lettered == 1
    if env.store is not None:
        rows = await env.store.fetch_all(select(schema.dead_letters))
        assert len(rows) == 1
        row = rows[0]
        assert (row["source"], row["channel"]) == ("bus", "rules")
        assert poison.id in row["payload"] and "cannot parse payload" in row["reason"]
    if env.kind == "nats":
        import nats

        assert env.nats_url is not None
        nc = await nats.connect(env.nats_url)
        try:
            raw = await nc.jetstream().get_last_msg(env.stream, f"{env.prefix}.deadletter.rules")
        finally:
            await nc.close()
        assert Event.from_bytes(raw.data) == poison
        assert raw.headers is not None and "cannot parse payload" in raw.headers["Citydata-Reason"]


@pytest.mark.parametrize("env", IN_PROCESS, indirect=True)
async def test_backpressure_makes_publish_wait_and_drops_nothing(env: BusEnv) -> None:
    bus = await env.open(queue_size=2)
    gate = asyncio.Event()
    got: list[int] = []

    async def slow(d: Delivery) -> None:
        await gate.wait()
        got.append(d.event.data["n"])

    await bus.consume("slow", "obs.>", slow)
    publisher = asyncio.create_task(bus.publish_many([ev(n=i) for i in range(10)]))
    await settle(0.3)
    assert not publisher.done()  # the queue (2) and the handler (1) are full: the publisher waits
    assert got == []
    gate.set()
    seqs = await asyncio.wait_for(publisher, 10)
    await until(lambda: len(got) == 10, what="all 10")
    assert got == list(range(10)) and len(seqs) == 10
    assert bus.stats.slow_subscriber_drops == 0


async def test_slow_live_subscriber_is_cut_off_and_counted(env: BusEnv) -> None:
    bus = await env.open()
    gate = asyncio.Event()
    slow_got: list[int] = []
    fast_got: list[int] = []

    async def slow(d: Delivery) -> None:
        await gate.wait()
        slow_got.append(d.event.data["n"])

    await bus.subscribe("obs.>", slow, queue_size=2)
    await bus.subscribe("obs.>", collector_n(fast_got))
    for i in range(10):
        await bus.publish(ev(n=i))
    await until(lambda: bus.stats.slow_subscriber_drops == 1 and len(fast_got) == 10, what="cut off")
    gate.set()
    await settle(0.3)
    assert bus.stats.slow_subscriber_drops == 1
    assert fast_got == list(range(10))  # the others are not affected
    assert len(slow_got) <= 3 and slow_got == list(range(len(slow_got)))
    await bus.publish(ev(n=10))  # the cut-off subscriber gets nothing more; publishing goes on
    await until(lambda: len(fast_got) == 11, what="after the cut")
    await settle(0.2)
    assert len(slow_got) <= 3


def collector_n(store: list[int]) -> Callable[[Delivery], Awaitable[None]]:
    async def handler(d: Delivery) -> None:
        store.append(d.event.data["n"])

    return handler


# -- durability ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", DURABLE, indirect=True)
async def test_group_resumes_after_restart(env: BusEnv) -> None:
    bus = await env.open()
    got: list[Delivery] = []
    member = await bus.consume("writer", "obs.>", collector(got))
    first = [ev(n=i) for i in range(5)]
    await bus.publish_many(first)
    await until(lambda: len(got) == 5, what="first five")
    await member.close()
    # Published while the group has no member: kept for it.
    unconsumed = [ev(n=i) for i in range(5, 8)]
    await bus.publish_many(unconsumed)
    # One in flight when the process stops: not acknowledged, so it comes again.
    gate = asyncio.Event()
    blocked: list[Delivery] = []

    async def stuck(d: Delivery) -> None:
        blocked.append(d)
        await gate.wait()

    await bus.consume("other", "obs.>", stuck)
    await until(lambda: len(blocked) == 1, what="a handler in flight")

    bus = await env.restart(bus)
    late = [ev(n=i) for i in range(8, 10)]
    await bus.publish_many(late)
    again: list[Delivery] = []
    await bus.consume("writer", "obs.>", collector(again))
    other: list[Delivery] = []
    await bus.consume("other", "obs.>", collector(other))
    await until(lambda: len(again) == 5 and len(other) == 10, what="resumed groups")
    await settle(0.3)
    assert [d.event.id for d in again] == [e.id for e in unconsumed + late]  # no acked one, no lost one
    assert [d.event.data["n"] for d in other] == list(range(10))  # the in-flight one came again
    assert Counter(d.event.id for d in other).most_common(1)[0][1] == 1
    assert min(d.seq for d in again) > max(d.seq for d in got)


@pytest.mark.parametrize("env", JOURNALED, indirect=True)
async def test_journal_appends_in_order_and_trims_what_every_group_acked(env: BusEnv) -> None:
    await env.open()
    journal = env.journal
    assert journal is not None and env.store is not None
    events = [ev(n=i, key=f"k{i % 2}") for i in range(30)]
    seqs = await journal.append(events[:10])
    seqs += await journal.append(events[10:])
    assert seqs == sorted(seqs) and len(set(seqs)) == 30
    assert await journal.last_seq() == seqs[-1]
    read = await journal.read_after(seqs[4], 3)
    assert [(s, e) for s, e in read] == list(zip(seqs[5:8], events[5:8], strict=True))
    assert await journal.trim() == 0  # no group yet: nothing known to be acknowledged by all
    await journal.set_offset("a", seqs[19])
    await journal.set_offset("b", seqs[9])
    assert await journal.get_offset("b") == seqs[9]
    await journal.flush()
    assert await journal.get_offset("missing") is None
    journal.trim_chunk = 4  # several chunks
    assert await journal.trim() == 10  # min offset: b
    assert [s for s, _ in await journal.read_after(0, 100)] == seqs[10:]
    await journal.set_offset("a", seqs[29])  # everything acked: the newest event is still kept
    await journal.set_offset("b", seqs[29])
    assert await journal.trim(keep_after=seqs[14]) == 5
    assert await journal.trim() == 14
    assert [s for s, _ in await journal.read_after(0, 100)] == [seqs[29]]
    more = await journal.append([ev(n=30)])
    assert more[0] > seqs[29]  # a seq is never reused after a trim
    rows = await env.store.fetch_all(select(schema.bus_offsets).order_by(schema.bus_offsets.c.group_name))
    assert [(r["group_name"], r["seq"]) for r in rows] == [("a", seqs[29]), ("b", seqs[29])]


# -- NATS specifics -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["nats"], indirect=True)
async def test_nats_publish_is_deduplicated_by_event_id(env: BusEnv) -> None:
    bus = await env.open()
    event = ev(n=1)
    first = await bus.publish(event)
    again = await bus.publish(event)  # a retried publish: same id
    batch = await bus.publish_many([ev(n=2), event, ev(n=3)])
    assert again == first and batch[1] == first
    got: list[Delivery] = []
    await bus.consume("dedup", "obs.>", collector(got))
    await until(lambda: len(got) == 3, what="3 distinct events")
    await settle(0.3)
    assert [d.event.data["n"] for d in got] == [1, 2, 3]
    import nats

    assert env.nats_url is not None
    nc = await nats.connect(env.nats_url)
    try:
        info = await nc.jetstream().stream_info(env.stream)
    finally:
        await nc.close()
    assert info.state.messages == 3


@pytest.mark.parametrize("env", ["nats"], indirect=True)
async def test_nats_unreachable_is_unavailable(env: BusEnv) -> None:
    from citydata.bus.nats import NatsBus
    from citydata.errors import Unavailable

    bus = NatsBus(f"nats://127.0.0.1:{free_port()}", stream=env.stream, prefix=env.prefix, queue_size=10,
                  connect_timeout=1.0)
    with pytest.raises(Unavailable):
        await bus.start()
    assert not await bus.healthy()
    with pytest.raises(Unavailable):
        await bus.publish(ev())


@pytest.mark.parametrize("env", ["nats"], indirect=True)
async def test_nats_reconnects_and_publish_retries_through_an_outage(env: BusEnv, tmp_path: Path) -> None:
    """A private nats-server (the shared one is never touched) is stopped and started again under a bus."""
    import shutil
    import subprocess

    from citydata.bus.nats import NatsBus

    binary = shutil.which("nats-server")
    if binary is None:
        pytest.skip("nats-server binary not installed")
    port = free_port()
    url = f"nats://127.0.0.1:{port}"

    async def start_server() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path / "js")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
            await asyncio.sleep(0.05)
        proc.kill()
        raise AssertionError("private nats-server did not start")

    server = await start_server()
    bus = NatsBus(url, stream=env.stream, prefix=env.prefix, queue_size=100, fetch_timeout=0.5,
                  close_grace_s=0.5, publish_timeout=20.0)
    try:
        await bus.start()
        got: list[Delivery] = []
        await bus.consume("writer", "obs.>", collector(got))
        await bus.publish_many([ev(n=i) for i in range(5)])
        await until(lambda: len(got) == 5, what="before the outage")

        server.terminate()
        server.wait(10)
        await until(lambda: not bus._nc or not bus._nc.is_connected, what="disconnect")
        assert not await bus.healthy()
        during = asyncio.create_task(bus.publish_many([ev(n=i) for i in range(5, 10)]))
        await asyncio.sleep(0.5)
        assert not during.done()  # waiting for an acknowledgement, not failing and not dropping
        server = await start_server()
        seqs = await asyncio.wait_for(during, 25)
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        await until(lambda: len(got) == 10, timeout=20, what="after the outage")
        await settle(0.5)
        assert [d.event.data["n"] for d in got] == list(range(10))  # nothing lost, nothing twice
        assert bus.reconnects >= 1 and await bus.healthy()
    finally:
        await bus.stop()
        server.terminate()
        server.wait(10)
