"""The in-process bus: asyncio, bounded queues, backpressure, never a silent drop.

With a ``BusJournal`` (the store provides one) every published event is appended to a durable log before it
is dispatched, and each consumer group's acknowledged position is saved, so a restarted process resumes each
group where it stopped. Without one it is a pure in-memory bus (tests, tools).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import zlib
from collections.abc import Sequence
from typing import Protocol

from citydata.bus.base import Bus, BusStats, Consumer, Delivery, Handler, StartAt, Subscription
from citydata.events import Event, kind_matches

log = logging.getLogger(__name__)


class BusJournal(Protocol):
    """Durable storage for the in-process bus."""

    async def append(self, events: Sequence[Event]) -> list[int]: ...

    async def read_after(self, seq: int, limit: int) -> list[tuple[int, Event]]: ...

    async def last_seq(self) -> int: ...

    async def get_offset(self, group: str) -> int | None: ...

    async def set_offset(self, group: str, seq: int) -> None: ...

    async def dead_letter(self, group: str, delivery: Delivery, reason: str) -> None: ...

    async def flush(self) -> None:
        """Wait until every saved offset is committed."""
        ...


DEAD, FAILED = object(), object()      # outcomes of _Member._deliver besides the delivery handled


def _again(d: Delivery) -> Delivery:
    """The same delivery, one attempt more (its place in the batch kept)."""
    return Delivery(d.event, d.seq, d.attempt + 1, d.group, last_in_batch=d.last_in_batch)


def partition_of(key: str, partitions: int) -> int:
    """Stable partition of a key (the same on every node and every run)."""
    return zlib.crc32(key.encode()) % partitions if partitions > 1 else 0


class _Subscriber(Subscription):
    def __init__(self, bus: MemoryBus, pattern: str, handler: Handler, queue_size: int) -> None:
        self.bus, self.pattern, self.handler = bus, pattern, handler
        self.queue: asyncio.Queue[Delivery | None] = asyncio.Queue(queue_size)
        self.task = asyncio.create_task(self._run(), name=f"bus-sub-{pattern}")
        self.closed = False

    async def _run(self) -> None:
        while True:
            delivery = await self.queue.get()
            if delivery is None:
                return
            try:
                await self.handler(delivery)
            except Exception:
                log.exception("live subscriber %s failed on %s", self.pattern, delivery.event.kind)

    def offer(self, delivery: Delivery) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(delivery)
        except asyncio.QueueFull:
            # A live subscriber that cannot keep up is cut off, loudly: it must reconnect and re-read state.
            self.bus.stats.slow_subscriber_drops += 1
            log.warning("live subscriber %s too slow; disconnected", self.pattern)
            self.closed = True
            self.bus._subscribers.discard(self)
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bus._subscribers.discard(self)
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class _Member(Consumer):
    """One consumer of a group: a task that applies its queue in order.

    With ``batch_ack`` the member takes what its queue holds (up to ``BATCH_MAX``) as one batch, marks the last
    delivery ``last_in_batch`` and acknowledges the batch only after the handler returned for that last one, so
    a handler may commit once per batch (the alerts service, the rules engine). When the handler fails on the
    last delivery, the whole batch is handed again (one attempt more each), as JetStream does with its nak: the
    handler may drop what it collected when its commit fails. When that last one is dead-lettered, the others
    are handed again as a batch of their own. Other deliveries are retried on their own, so a poison one is
    dead-lettered without holding the batch.

    The task is supervised: a failure that escapes the delivery loop (a ``CancelledError`` raised by the
    handler while nobody cancelled the consumer, an error of the journal while dead-lettering, ...) is logged
    with its traceback, counted (``BusStats.consumer_failures``) and the loop restarted after a short backoff,
    with the deliveries it had in hand handed to it again (at-least-once). Only ``close()`` (or a cancel of its
    task from outside, as when the event loop shuts down: logged) ends a consumer."""

    BATCH_MAX = 500

    def __init__(self, group: _Group, handler: Handler, index: int, batch_ack: bool = False) -> None:
        self.group, self.handler, self.batch_ack = group, handler, batch_ack
        self.name = f"{group.name}#{index}"
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue(group.bus.queue_size)
        self._in_hand: list[Delivery] = []     # taken, not settled yet
        self._settled: list[int] = []          # handled or dead-lettered, not acknowledged to the group yet
        self._closing = False
        self._failures = 0          # consecutive failures (reset by a batch handled to the end)
        self.task = self._start()

    def _start(self) -> asyncio.Task[None]:
        task = asyncio.create_task(self._run(), name=f"bus-consumer-{self.name}")
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if self._closing:
            return
        if task.cancelled():   # cancelled from outside, not by close() (the event loop shutting down): no restart
            log.warning("consumer %s cancelled without close(); it consumes no more", self.name)
            return
        bus = self.group.bus
        bus.stats.consumer_failures += 1
        self._failures += 1
        err = task.exception()
        delay = min(0.05 * 2 ** min(self._failures, 6), 2.0)
        log.error("consumer %s failed (%r) with event %s in hand; restarting it in %.2f s (failure %d)",
                  self.name, err, self._in_hand[0].event.id if self._in_hand else None, delay,
                  bus.stats.consumer_failures, exc_info=err)
        self.task = asyncio.create_task(self._restart(delay), name=f"bus-consumer-{self.name}")
        self.task.add_done_callback(self._on_done)

    async def _restart(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._run()

    async def _take(self) -> list[Delivery]:
        while self._settled:           # settled before a failed loop could acknowledge them
            await self.group.acked(self._settled[0])
            self._settled.pop(0)
        if self._in_hand:      # what a failed loop had in hand: again, one attempt more
            return [_again(d) for d in self._in_hand]
        batch = [await self.queue.get()]
        self.queue.task_done()            # the queue counts waiting deliveries; those in hand are ours
        while self.batch_ack and len(batch) < self.BATCH_MAX and not self.queue.empty():
            batch.append(self.queue.get_nowait())
            self.queue.task_done()
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._take()
            while batch:
                self._in_hand = list(batch)
                batch = await self._handle_batch(batch)
            self._in_hand = []
            self._settled.sort()
            while self._settled:       # (a failure here: the restarted loop acknowledges the rest first)
                await self.group.acked(self._settled[0])
                self._settled.pop(0)
            self._failures = 0

    async def _handle_batch(self, batch: list[Delivery]) -> list[Delivery]:
        """Hand a batch to the handler; what is to be handed again (empty: the batch is settled)."""
        handled: list[Delivery] = []
        for i, delivery in enumerate(batch):
            last = i == len(batch) - 1
            delivery.last_in_batch = last
            # a batch's last delivery is not retried alone: the handler may have dropped what it collected
            outcome = await self._deliver(delivery, retry=not (self.batch_ack and last and i > 0))
            if isinstance(outcome, Delivery):
                handled.append(outcome)
            elif outcome is DEAD:
                self._settled.append(delivery.seq)
                self._in_hand = [d for d in self._in_hand if d.seq != delivery.seq]
            else:                        # FAILED: the whole batch again, one attempt more
                self.group.bus.stats.redelivered += 1
                await asyncio.sleep(min(0.05 * 2 ** delivery.attempt, 2.0))
                return [_again(d) for d in [*handled, delivery]]
        if self.batch_ack and len(batch) > 1 and (not handled or handled[-1].seq != batch[-1].seq):
            return [_again(d) for d in handled]     # the last was dead-lettered: the others' effect is unsure
        self._settled.extend(d.seq for d in handled)
        return []

    async def _deliver(self, delivery: Delivery, *, retry: bool = True) -> Delivery | object:
        """Hand one delivery to the handler, retrying it when ``retry`` (a new ``Delivery`` per attempt): the
        one handled, ``DEAD`` when it was dead-lettered, ``FAILED`` when it failed and ``retry`` is off."""
        bus = self.group.bus
        while True:
            try:
                await self.handler(delivery)
                bus.stats.delivered += 1
                return delivery
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._closing or (task is not None and task.cancelling()):
                    raise                 # close(): the event stays unacknowledged
                # the handler awaited something that was cancelled: a failure of this delivery, not a stop
                err: BaseException = RuntimeError("handler raised CancelledError")
            except Exception as exc:
                err = exc
            if delivery.attempt >= self.group.max_attempts:
                bus.stats.dead_lettered += 1
                log.error("consumer %s dead-lettered event %s (%s) after %d attempts: %s",
                          self.name, delivery.event.id, delivery.event.kind, delivery.attempt, err)
                if bus.journal is not None:
                    await bus.journal.dead_letter(self.group.name, delivery, repr(err)[:500])
                return DEAD
            if not retry:
                return FAILED
            bus.stats.redelivered += 1
            again = _again(delivery)
            self._in_hand = [again if d is delivery else d for d in self._in_hand]
            delivery = again
            await asyncio.sleep(min(0.05 * 2 ** delivery.attempt, 2.0))

    def pending(self) -> int:
        return self.queue.qsize()

    async def close(self) -> None:
        self._closing = True
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.group.remove(self)


class _Group:
    def __init__(self, bus: MemoryBus, name: str, pattern: str, max_attempts: int) -> None:
        self.bus, self.name, self.pattern, self.max_attempts = bus, name, pattern, max_attempts
        self.members: list[_Member] = []
        self._dispatched: list[int] = []     # min-heap of dispatched, not yet committed seqs
        self._acked: set[int] = set()
        self.committed = 0
        self.highest = 0

    def route(self, delivery: Delivery) -> _Member:
        return self.members[partition_of(delivery.event.key, len(self.members))]

    async def dispatch(self, delivery: Delivery) -> None:
        heapq.heappush(self._dispatched, delivery.seq)
        self.highest = max(self.highest, delivery.seq)
        await self.route(delivery).queue.put(delivery)  # waits when full: backpressure on the publisher

    async def acked(self, seq: int) -> None:
        """Advance the committed watermark over every contiguous acknowledged seq (amortised O(log n))."""
        self._acked.add(seq)
        watermark = self.committed
        while self._dispatched and self._dispatched[0] in self._acked:
            watermark = heapq.heappop(self._dispatched)
            self._acked.discard(watermark)
        if not self._dispatched:
            watermark = max(watermark, self.highest)
        if watermark > self.committed:
            self.committed = watermark
            if self.bus.journal is not None:
                await self.bus.journal.set_offset(self.name, watermark)

    def skip_to(self, seq: int) -> None:
        """Events up to ``seq`` that did not match the pattern count as handled."""
        self.highest = max(self.highest, seq)

    def remove(self, member: _Member) -> None:
        if member in self.members:
            self.members.remove(member)
        if not self.members:
            self.bus._groups.pop(self.name, None)


class MemoryBus(Bus):
    """In-process bus with bounded queues. Pass a journal for durable consumer groups."""

    def __init__(self, queue_size: int = 10_000, journal: BusJournal | None = None) -> None:
        self.queue_size = queue_size
        self.journal = journal
        self.stats = BusStats()
        self._seq = 0
        self._subscribers: set[_Subscriber] = set()
        self._groups: dict[str, _Group] = {}
        self._lock = asyncio.Lock()
        self._pending: list[tuple[list[Event], asyncio.Future[list[int]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._started = False

    async def start(self) -> None:
        if self.journal is not None:
            self._seq = await self.journal.last_seq()
        self._started = True

    async def stop(self) -> None:
        for sub in list(self._subscribers):
            await sub.close()
        if self._flusher is not None and not self._flusher.done():
            await self._flusher
        for group in list(self._groups.values()):
            for member in list(group.members):
                await member.close()
        if self.journal is not None:
            await self.journal.flush()
        self._started = False

    async def healthy(self) -> bool:
        return self._started

    async def publish(self, event: Event) -> int:
        return (await self.publish_many([event]))[0]

    async def publish_many(self, events: Sequence[Event]) -> list[int]:
        """Concurrent publishers are committed together: one journal append for all of them, then dispatch in
        order. Each caller returns once its events are durable (journal) and queued for every group."""
        if not events:
            return []
        fut: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((list(events), fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_pending(), name="bus-publish")
        return await fut

    async def _flush_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            events = [e for evs, _ in batch for e in evs]
            try:
                async with self._lock:
                    if self.journal is not None:
                        seqs = await self.journal.append(events)
                    else:
                        seqs = list(range(self._seq + 1, self._seq + 1 + len(events)))
                    self._seq = seqs[-1]
                    for event, seq in zip(events, seqs, strict=True):
                        await self._dispatch(event, seq)
                self.stats.published += len(events)
            except BaseException as err:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(err if isinstance(err, Exception) else RuntimeError("cancelled"))
                if not isinstance(err, Exception):
                    raise
                continue
            i = 0
            for evs, fut in batch:
                if not fut.done():
                    fut.set_result(seqs[i:i + len(evs)])
                i += len(evs)

    async def broadcast(self, events: Sequence[Event]) -> None:
        for event in events:
            for sub in list(self._subscribers):
                if kind_matches(sub.pattern, event.kind):
                    sub.offer(Delivery(event, 0))

    async def _dispatch(self, event: Event, seq: int) -> None:
        for group in list(self._groups.values()):
            if kind_matches(group.pattern, event.kind) and group.members:
                await group.dispatch(Delivery(event, seq, 1, group.name))
        for sub in list(self._subscribers):
            if kind_matches(sub.pattern, event.kind):
                sub.offer(Delivery(event, seq))

    async def subscribe(self, pattern: str, handler: Handler, *, queue_size: int = 1000) -> Subscription:
        sub = _Subscriber(self, pattern, handler, queue_size)
        self._subscribers.add(sub)
        return sub

    async def consume(self, group: str, pattern: str, handler: Handler, *, start: StartAt = "all",
                      max_attempts: int = 5, partition: int | None = None, batch_ack: bool = False) -> Consumer:
        if partition is not None:
            raise ValueError("the in-process bus is not partitioned")
        async with self._lock:
            existing = self._groups.get(group)
            if existing is not None:
                if existing.pattern != pattern:
                    raise ValueError(f"consumer group {group!r} already consumes {existing.pattern!r}")
                member = _Member(existing, handler, len(existing.members), batch_ack)
                existing.members.append(member)
                return member
            grp = _Group(self, group, pattern, max_attempts)
            member = _Member(grp, handler, 0, batch_ack)
            grp.members.append(member)
            self._groups[group] = grp
            if self.journal is not None:
                offset = await self.journal.get_offset(group)
                if offset is None:
                    offset = 0 if start == "all" else self._seq
                    await self.journal.set_offset(group, offset)
                grp.committed = grp.highest = offset
                await self._replay(grp, offset)
            else:
                grp.committed = grp.highest = self._seq
            return member

    async def _replay(self, group: _Group, after: int) -> None:
        assert self.journal is not None
        while after < self._seq:
            batch = await self.journal.read_after(after, 1000)
            if not batch:
                break
            for seq, event in batch:
                if seq > self._seq:
                    return
                if kind_matches(group.pattern, event.kind):
                    await group.dispatch(Delivery(event, seq, 1, group.name))
                after = seq
            group.skip_to(after)

    def queue_depths(self) -> dict[str, int]:
        depths = {f"consumer:{m.name}": m.pending() for g in self._groups.values() for m in g.members}
        depths.update({f"subscriber:{s.pattern}": s.queue.qsize() for s in self._subscribers})
        return depths
