"""The bus interface.

Two ways to receive:

* ``subscribe(pattern, handler)``: live fan-out to every subscriber (SSE, MQTT out). A subscriber that cannot
  keep up is cut off and counted (``slow_subscriber_drops``), never silently starved.
* ``consume(group, pattern, handler)``: a named, durable consumer group. Each event is handled by one member
  of the group; the handler's successful return acknowledges it, an exception makes it redelivered. A group
  resumes where it stopped after a restart (where the implementation is durable: JetStream, or the in-process
  bus with a journal). Members of one group get per-key order: events with the same key go to the same member.
* ``consume(..., partition=k)``: on a partitioned bus (``partitions > 0``: NATS in multi-node mode) the member
  receives only partition ``k`` of the group (events whose key hashes to ``k``, ``citydata.cluster.partition``);
  one member per (group, partition), chosen by the cluster's partition leases, keeps per-key order across nodes.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from citydata.events import Event

Handler = Callable[["Delivery"], Awaitable[None]]
StartAt = Literal["new", "all"]
_FANOUT: set[str] = set()


def register_fanout_kind(kind: str) -> None:
    """Declare a control kind that every partition must see (a partitioned bus publishes one copy into each
    partition): e.g. ``rules.changed``, which every partition's rules engine applies at its position."""
    _FANOUT.add(kind)


def fanout_kinds() -> frozenset[str]:
    return frozenset(_FANOUT)


@dataclass(slots=True)
class Delivery:
    """An event as a consumer receives it."""

    event: Event
    seq: int
    attempt: int = 1
    group: str | None = None
    # False while more events of the same fetched batch follow: a handler that acknowledges only what it has
    # committed (the rules engine on NATS, consuming with ``batch_ack=True``) waits for its commit on the last
    # event of a batch, and the bus acknowledges the batch's events after that handler returns.
    last_in_batch: bool = True

    @property
    def redelivered(self) -> bool:
        return self.attempt > 1


@dataclass
class BusStats:
    published: int = 0
    delivered: int = 0
    redelivered: int = 0
    dead_lettered: int = 0
    slow_subscriber_drops: int = 0
    consumer_failures: int = 0          # consumer tasks that failed and were restarted (in-process bus)
    queue_depths: dict[str, int] = field(default_factory=dict)


class Subscription(abc.ABC):
    @abc.abstractmethod
    async def close(self) -> None: ...


class Consumer(abc.ABC):
    """A member of a durable consumer group."""

    name: str

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def pending(self) -> int:
        """Events published but not yet acknowledged by this group (as far as this member knows)."""


class Bus(abc.ABC):
    """Publish typed events; subscribe live; consume durably in named groups."""

    stats: BusStats
    partitions: int = 0     # > 0: events are spread over that many key partitions (see ``consume``)

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, event: Event) -> int:
        """Publish one event; returns its sequence number. Waits (backpressure) when consumers are full."""

    async def publish_many(self, events: Sequence[Event]) -> list[int]:
        return [await self.publish(e) for e in events]

    @abc.abstractmethod
    async def broadcast(self, events: Sequence[Event]) -> None:
        """Live-only notifications (e.g. "this entity changed"): delivered to live subscribers on every node,
        never journaled and never given to consumer groups. For state that is already durable elsewhere."""

    @abc.abstractmethod
    async def subscribe(self, pattern: str, handler: Handler, *, queue_size: int = 1000) -> Subscription:
        """Live fan-out of events whose kind matches ``pattern`` (``*`` one token, ``>`` the rest)."""

    @abc.abstractmethod
    async def consume(self, group: str, pattern: str, handler: Handler, *, start: StartAt = "all",
                      max_attempts: int = 5, partition: int | None = None, batch_ack: bool = False) -> Consumer:
        """Join the durable consumer group ``group``. After ``max_attempts`` failures an event is
        dead-lettered (counted, and kept where the implementation can keep it) so one poison event never
        blocks the group. ``partition``: only that key partition (partitioned buses only). ``batch_ack``:
        acknowledge a fetched batch together once the handler returned for its last event
        (``Delivery.last_in_batch``) instead of each event at once (where the bus fetches in batches)."""

    async def ensure_group(self, group: str, pattern: str, *, start: StartAt = "new",
                           partition: int | None = None) -> None:
        """Create the durable group's position now, without consuming, so events published from now on wait
        for it even before any member joins (a no-op where groups are not durable server-side)."""
        return None

    async def resume_at(self, group: str, pattern: str, *, after: int | None,
                        partition: int | None = None) -> None:
        """Make the group deliver again, in order, every event after sequence ``after`` (a consumer's own
        checkpoint; None: after the last event the group acknowledged in order), dropping whatever an earlier
        member had in hand. A consumer that restores a checkpoint calls it before ``consume``: otherwise the
        events a killed member held come back only after the acknowledgement wait, behind newer ones, and
        per-key order would break. No-op where the bus replays from the consumer's position anyway (the
        in-process bus with its journal)."""
        return None

    @abc.abstractmethod
    async def healthy(self) -> bool: ...

    def describe(self) -> str:
        return type(self).__name__
