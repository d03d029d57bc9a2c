"""Cluster membership and leases in a JetStream key-value bucket.

One bucket ``{stream}_cluster`` (file storage, history 1, ``max_age = lease_s``: an entry that is not
rewritten within ``lease_s`` disappears). Keys:

* ``node.<id>``: each node's heartbeat (its role and URL), rewritten every ``lease_s / 3``. The live nodes are
  the keys present.
* ``part.<k>``: the lease of partition ``k``, value the owner's id. Taken with ``create`` (fails while another
  node holds it), renewed with ``update(last=revision)`` (fails once it expired or was taken), released with
  ``delete(last=revision)``.
* ``leader``: the leader lease, the same way; the leader runs what must run once cluster-wide (timers, the
  global rules engine, the IOC consumers).

Two tasks: one renews (heartbeat and every lease held, every ``lease_s / 3``, nothing slow in between); the
other, at the same pace, decides what to hold: a worker node computes the partitions it should own from the
live workers (``citydata.cluster.partition.owned_by``, rendezvous hashing), releases those it should no
longer own (its work stops and checkpoints first, then the lease is deleted so the new owner need not wait
for the expiry), and tries to take the missing ones. A killed node's leases expire after ``lease_s`` and the
others take them. A node that cannot renew for ``0.6 × lease_s`` (NATS unreachable, a long pause) stops the
work of its leases by itself before they can expire, so two nodes never work one partition at once unless a
process is frozen for longer than that and then resumes; such a process finds its leases lost at its next
renewal and abandons the work without a checkpoint, and the new owner has already repositioned the durable
consumer, which cuts the old member off (the residual window is described in docs/scale.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import nats.js.errors
import orjson
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from citydata.cluster.partition import owned_by

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
LEADER = "leader"


def safe_id(node_id: str) -> str:
    """A node id usable as a key token."""
    return _UNSAFE.sub("_", node_id)[:100] or "node"


@dataclass
class MembershipStats:
    rounds: int = 0
    acquired: int = 0
    released: int = 0
    lost: int = 0
    failed_rounds: int = 0
    leader_terms: int = 0
    last_round_s: float = 0.0
    events: list[str] = field(default_factory=list)   # the last few ownership changes, for /api/v1/cluster


class Membership:
    """This node's heartbeat, its partition leases and (for workers) the leader lease."""

    def __init__(self, kv_factory: Callable[[str, float], Awaitable[KeyValue]], bucket: str, node_id: str, *,
                 partitions: int, lease_s: float, worker: bool, info: dict[str, Any],
                 on_acquire: Callable[[int], Awaitable[None]], on_release: Callable[[int], Awaitable[None]],
                 on_leader: Callable[[str], Awaitable[None]],
                 on_lost: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.kv_factory, self.bucket = kv_factory, bucket
        self.node_id = safe_id(node_id)
        self.partitions, self.lease_s, self.worker, self.info = partitions, lease_s, worker, info
        self.on_acquire, self.on_release, self.on_leader = on_acquire, on_release, on_leader
        self.on_lost = on_lost or on_release
        self.owned: dict[int, int] = {}       # partition -> lease revision
        self.terms: dict[int, int] = {}       # partition -> fencing token of this node's term (fencing_token)
        self.leader_rev: int | None = None
        self.leader_term: int | None = None
        self.epoch = 0                        # the bucket's creation time (s): orders terms across a NATS reset
        self.live: dict[str, dict[str, Any]] = {}
        self.stats = MembershipStats()
        self._kv: KeyValue | None = None
        self._last_ok = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def period_s(self) -> float:
        return self.lease_s / 3

    @property
    def healthy(self) -> bool:
        """The last successful round is recent enough for the leases to be ours."""
        return time.monotonic() - self._last_ok < 0.6 * self.lease_s

    @property
    def is_leader(self) -> bool:
        return self.leader_rev is not None

    def _note(self, text: str) -> None:
        log.info("cluster: %s", text)
        self.stats.events = [*self.stats.events[-19:], text]

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._open()
        await self.renew()
        await self.round()
        self._tasks = [asyncio.create_task(self._loop(self.renew), name="cluster-renew"),
                       asyncio.create_task(self._loop(self.round), name="cluster-membership")]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await asyncio.gather(*(self._release(k) for k in sorted(self.owned)))
        if self.leader_rev is not None:
            rev, self.leader_rev = self.leader_rev, None
            await self._guard(self.on_leader("resign"))
            await self._delete(LEADER, rev)
        if self._kv is not None:
            with contextlib.suppress(Exception):
                await self._kv.delete(f"node.{self.node_id}")

    async def _open(self) -> None:
        self._kv = await self.kv_factory(self.bucket, self.lease_s)
        self.epoch = await bucket_epoch(self._kv)

    async def _loop(self, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            await step()

    # -- renewal (its own task, so slow work never delays it) --------------------------------------------------
    async def renew(self) -> None:
        """Heartbeat and renew every lease held. A lease found lost, or leases not renewed for 0.6 × lease_s,
        stop their work at once without a checkpoint (``on_lost``)."""
        kv = self._kv
        assert kv is not None
        try:
            await kv.put(f"node.{self.node_id}", orjson.dumps({**self.info, "id": self.node_id,
                                                              "worker": self.worker}))
            for k, rev in sorted(self.owned.items()):
                try:
                    new_rev = await kv.update(f"part.{k}", self.node_id.encode(), last=rev)
                except nats.js.errors.KeyWrongLastSequenceError:
                    if self.owned.get(k) == rev:   # (not released meanwhile)
                        del self.owned[k]
                        self.terms.pop(k, None)
                        self.stats.lost += 1
                        self._note(f"partition {k}: lease lost; work stopped")
                        await self._guard(self.on_lost(k))
                    continue
                if self.owned.get(k) == rev:
                    self.owned[k] = new_rev
            if self.leader_rev is not None:
                rev = self.leader_rev
                try:
                    new_rev = await kv.update(LEADER, self.node_id.encode(), last=rev)
                except nats.js.errors.KeyWrongLastSequenceError:
                    if self.leader_rev == rev:
                        self.leader_rev = None
                        self._note("leader lease lost")
                        await self._guard(self.on_leader("lost"))
                else:
                    if self.leader_rev == rev:
                        self.leader_rev = new_rev
            self._last_ok = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.stats.failed_rounds += 1
            log.warning("cluster lease renewal failed (%s: %s)", type(err).__name__, err)
            with contextlib.suppress(Exception):   # the bucket may be gone (NATS lost its state): recreate it
                await self._open()
            if time.monotonic() - self._last_ok > 0.6 * self.lease_s:
                await self._fence()

    async def _fence(self) -> None:
        """We could not renew in time: stop our work before anyone else may take it."""
        lost, self.owned, self.terms = sorted(self.owned), {}, {}
        for k in lost:
            self._note(f"partition {k}: lease not renewed in time, work stopped")
            self.stats.lost += 1
        await asyncio.gather(*(self._guard(self.on_lost(k)) for k in lost))
        if self.leader_rev is not None:
            self.leader_rev = None
            self._note("leader lease not renewed in time; leader work stopped")
            await self._guard(self.on_leader("lost"))

    # -- membership round: what to hold, hand-overs, takeovers -------------------------------------------------
    async def round(self) -> None:
        started = time.monotonic()
        self.stats.rounds += 1
        try:
            await self._round()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.stats.failed_rounds += 1
            log.warning("cluster round failed (%s: %s)", type(err).__name__, err)
        self.stats.last_round_s = time.monotonic() - started

    async def _round(self) -> None:
        kv = self._kv
        assert kv is not None
        if not self.healthy:
            return    # our leases may be gone: take nothing until renewals work again
        self.live = await self._live_nodes()
        # re-read each round: another node may have made the bucket again after NATS lost its state, and
        # terms taken with the old epoch would be refused for ever
        self.epoch = await bucket_epoch(kv)
        workers = {n for n, info in self.live.items() if info.get("worker")}
        desired = owned_by(self.node_id, self.partitions, workers) if self.worker else set()
        await asyncio.gather(*(self._release(k) for k in sorted(self.owned) if k not in desired))
        await self._take_leader(kv)
        taken: list[int] = []
        for k in sorted(desired - set(self.owned)):
            try:
                rev = await kv.create(f"part.{k}", self.node_id.encode())
            except nats.js.errors.KeyWrongLastSequenceError:
                continue    # still held (its owner is releasing it, or is dead and the lease not yet expired)
            self.owned[k] = rev
            self.terms[k] = fencing_token(self.epoch, rev)
            self.stats.acquired += 1
            self._note(f"partition {k}: taken")
            taken.append(k)
        results = await asyncio.gather(*(self.on_acquire(k) for k in taken), return_exceptions=True)
        for k, result in zip(taken, results, strict=True):
            if isinstance(result, BaseException):
                log.error("starting the work of partition %d failed (%r); releasing it", k, result)
                await self._release(k)

    async def _take_leader(self, kv: KeyValue) -> None:
        if not self.worker or self.leader_rev is not None:
            return
        try:
            rev = await kv.create(LEADER, self.node_id.encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            return
        self.leader_rev, self.leader_term = rev, fencing_token(self.epoch, rev)
        self.stats.leader_terms += 1
        self._note("leader lease taken")
        try:
            await self.on_leader("lead")
        except Exception:
            log.exception("starting the leader's work failed; giving the lease back")
            self.leader_rev = None
            await self._guard(self.on_leader("resign"))
            await self._delete(LEADER, rev)

    async def _live_nodes(self) -> dict[str, dict[str, Any]]:
        kv = self._kv
        assert kv is not None
        try:
            keys = await kv.keys()     # (no server-side filter: NATS 2.9 has no multi-filter consumers)
        except nats.js.errors.NoKeysError:
            return {}
        live: dict[str, dict[str, Any]] = {}
        for key in keys:
            if not key.startswith("node."):
                continue
            with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                entry = await kv.get(key)
                if entry.value:
                    live[key.removeprefix("node.")] = orjson.loads(entry.value)
        return live

    async def _release(self, k: int) -> None:
        rev = self.owned.pop(k, None)
        await self._guard(self.on_release(k))
        self.terms.pop(k, None)
        self.stats.released += 1
        self._note(f"partition {k}: released")
        if rev is not None:
            await self._delete(f"part.{k}", rev)

    async def _delete(self, key: str, rev: int) -> None:
        if self._kv is None:
            return
        with contextlib.suppress(Exception):   # expired or taken meanwhile: nothing to give back
            await self._kv.delete(key, last=rev)

    @staticmethod
    async def _guard(work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            log.exception("cluster callback failed")

    # -- introspection ---------------------------------------------------------------------------------------
    async def owners(self) -> dict[int, str]:
        """Partition → current lease holder, as the bucket says."""
        out: dict[int, str] = {}
        if self._kv is None:
            return out
        for k in range(self.partitions):
            with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                entry = await self._kv.get(f"part.{k}")
                if entry.value:
                    out[k] = entry.value.decode()
        return out


def fencing_token(epoch: int, revision: int) -> int:
    """The fencing token of a term that began with the lease written at ``revision`` (``citydata.store.fencing``).

    Revisions are the sequence numbers of the bucket's stream, so a later takeover always has a higher one; the
    bucket's creation time in the high bits keeps tokens growing when NATS lost its state and the bucket was
    created again (its sequence restarts at 1)."""
    return (epoch << 32) + revision


async def bucket_epoch(kv: KeyValue) -> int:
    """The creation time of the bucket's stream, in whole seconds since 1970."""
    created = (await kv.status()).stream_info.created
    if isinstance(created, str):    # (nats-py parses it; older versions gave the RFC 3339 text)
        created = datetime.fromisoformat(created.replace("Z", "+00:00"))
    assert isinstance(created, datetime), created
    return int(created.timestamp())


def kv_config(bucket: str, lease_s: float) -> KeyValueConfig:
    return KeyValueConfig(bucket=bucket, history=1, ttl=lease_s, storage=StorageType.FILE,
                          description="citydata cluster membership and leases")
