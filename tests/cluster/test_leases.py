"""Membership and leases on a JetStream key-value bucket (the machine's NATS, a bucket per test): nodes
share the partitions, one leader; a node that stops renewing (killed) loses its leases after ``lease_s`` and
the others take them; a node that joins gets its share, handed over by the old owners."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

from citydata.bus.nats import NatsBus
from citydata.cluster.leases import Membership


class Recorder:
    def __init__(self) -> None:
        self.held: set[int] = set()
        self.leading = False
        self.log: list[str] = []

    async def acquire(self, k: int) -> None:
        assert k not in self.held
        self.held.add(k)
        self.log.append(f"+{k}")

    async def release(self, k: int) -> None:
        self.held.discard(k)
        self.log.append(f"-{k}")

    async def leader(self, state: str) -> None:
        self.leading = state == "lead"


async def until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


async def test_share_takeover_and_join(nats_url: str) -> None:
    token = uuid.uuid4().hex[:8]
    bus = NatsBus(nats_url, stream=f"T_{token}", prefix=f"t{token}", queue_size=10, partitions=8)
    await bus.start()
    bucket = f"T_{token}_cluster"
    nodes: dict[str, tuple[Membership, Recorder]] = {}

    async def join(name: str) -> tuple[Membership, Recorder]:
        rec = Recorder()
        m = Membership(bus.key_value, bucket, name, partitions=8, lease_s=1.5, worker=True, info={},
                       on_acquire=rec.acquire, on_release=rec.release, on_leader=rec.leader)
        await m.start()
        nodes[name] = (m, rec)
        return m, rec

    def shared(names: list[str]) -> bool:
        held = [k for n in names for k in nodes[n][1].held]
        return sorted(held) == list(range(8)) and all(nodes[n][1].held for n in names) \
            and sum(nodes[n][1].leading for n in names) == 1

    try:
        await join("a")
        await join("b")
        await until(lambda: shared(["a", "b"]))
        assert nodes["a"][1].leading        # the first node took the leader lease

        # "a" is killed: it stops renewing without releasing anything
        ma, _ = nodes["a"]
        a_terms = dict(ma.terms)
        for task in ma._tasks:
            task.cancel()
        killed_at = time.monotonic()
        await until(lambda: nodes["b"][1].held == set(range(8)) and nodes["b"][1].leading)
        assert time.monotonic() - killed_at > 1.0    # only after the lease expired
        # each takeover's fencing token is above the dead owner's (its checkpoints would now be refused)
        mb = nodes["b"][0]
        assert a_terms and all(mb.terms[k] > t for k, t in a_terms.items())
        assert mb.leader_term is not None and ma.leader_term is not None and mb.leader_term > ma.leader_term

        await join("c")
        await until(lambda: shared(["b", "c"]))
        rec_b = nodes["b"][1]
        assert any(e.startswith("-") for e in rec_b.log)    # b handed partitions over to c
        owners = await nodes["b"][0].owners()
        assert sorted(owners) == list(range(8))
        assert all(owners[k] == ("b" if k in rec_b.held else "c") for k in range(8))
    finally:
        for name in ("c", "b"):
            if name in nodes:
                await nodes[name][0].stop()
        js = bus._jetstream()
        for stream in (f"KV_{bucket}", f"T_{token}"):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        await bus.stop()


async def test_terms_keep_growing_when_nats_lost_the_bucket(nats_url: str) -> None:
    """NATS lost its state and another node made the bucket again: its sequence restarts at 1, so the fencing
    tokens of the terms taken after it must carry the new bucket's epoch, or every claim would be refused."""
    token = uuid.uuid4().hex[:8]
    bus = NatsBus(nats_url, stream=f"T_{token}", prefix=f"t{token}", queue_size=10, partitions=2)
    await bus.start()
    bucket = f"T_{token}_cluster"
    rec = Recorder()
    m = Membership(bus.key_value, bucket, "a", partitions=2, lease_s=1.5, worker=True, info={},
                   on_acquire=rec.acquire, on_release=rec.release, on_leader=rec.leader)
    try:
        await m.start()
        await until(lambda: rec.held == {0, 1})
        before = dict(m.terms)
        await asyncio.sleep(1.1)                       # (the epoch is in whole seconds)
        js = bus._jetstream()
        await js.delete_key_value(bucket)
        await bus.key_value(bucket, 1.5)               # made again, empty, by "another node"
        await until(lambda: rec.held == {0, 1} and all(m.terms.get(k, 0) > t for k, t in before.items()))
        assert all(t >> 32 == m.epoch for t in m.terms.values())
    finally:
        await m.stop()
        js = bus._jetstream()
        for stream in (f"KV_{bucket}", f"T_{token}"):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        await bus.stop()
