"""The bus on NATS JetStream: one stream, one subject per event kind, durable pull consumers per group.

* Every event is published on ``{prefix}.{kind}`` (kinds are dotted, so ``*`` and ``>`` patterns map straight
  onto NATS wildcards) into the stream ``stream`` (subjects ``{prefix}.>``, file storage, a two-minute
  duplicate window). The ``Nats-Msg-Id`` header is the event id, so a publish that is retried after a timeout
  or a reconnect is stored once. ``publish`` returns the stream sequence.
* ``publish_many`` pipelines: it writes every message before it waits for any acknowledgement (nats-py's
  ``publish_async``), so a batch costs about one round trip, not one per event. One connection keeps the
  order, so the sequences follow the order of the batch.
* ``subscribe`` is live fan-out over a core NATS subscription (no stream sequence: ``Delivery.seq`` is 0),
  into a bounded queue; a subscriber that lets its queue fill is cut off and counted in
  ``stats.slow_subscriber_drops``, as on the in-process bus.
* ``consume`` binds a member to a durable pull consumer named after the group (sanitised), filtered on the
  pattern's subject, with explicit acks. A handler that returns acks the event; one that raises naks it with a
  backoff delay; once the event has been delivered ``max_attempts`` times it is terminated, counted in
  ``stats.dead_lettered``, and a copy is published on ``{prefix}.deadletter.{group}`` with the reason in the
  ``Citydata-Reason`` header (those copies are never delivered to ordinary consumers or subscribers, so
  ``deadletter`` is reserved as the first token of a kind). Several ``consume`` calls with one group name, in
  one process or on several nodes, share the group's work. The consumer lives in the server, so a restarted
  process resumes after the last acknowledged event.

Order: with one member per group, events are handled in stream order (a failed event is redelivered after
its backoff and does not hold back the events behind it, so a poison event never blocks a group). With
several members of one group, JetStream hands each fetched batch to whichever member asks, so there is no
per-key order across members.

Partitions (multi-node mode, ``partitions > 0``): every event is published on ``{prefix}.p.{k}.{kind}`` where
``k = partition_of(event.key, partitions)``; a kind registered with ``register_fanout_kind`` (control events
such as ``rules.changed``) is published once into every partition (message ids ``{id}.p{k}``), so each
partitioned consumer sees it at a well-defined position of its partition. ``consume(group, pattern,
partition=k)`` binds the durable consumer ``{group}.p{k}`` filtered on ``{prefix}.p.{k}.{pattern}``; the
cluster (``citydata.cluster``) gives each partition to one node at a time, so per-key order holds across
nodes. ``consume`` without a partition reads every partition (``{prefix}.p.*.{pattern}``) in stream order.

Acknowledgements: each event is acknowledged as soon as its handler returns, so a member that dies has at
most the event in hand to be redelivered. With ``batch_ack=True`` (the rules engine, the tracking partitions,
the alerts service) the events of one fetched batch are acknowledged together after the batch is handled
(``Delivery.last_in_batch`` marks the last one), so a handler that must commit before acknowledging commits
once per batch, not once per event; when the handler fails on the last one, the batch's other events are
handed back (nak) with it, since their effect may not be committed. A member stopped in the middle of a
batch hands back (naks) the events it has not acknowledged.

Connection loss: nats-py reconnects forever (``max_reconnect_attempts=-1``); a publish that gets no
acknowledgement is retried with the same message id until ``publish_timeout``, then raises ``Unavailable``.
Every nats error is wrapped into ``citydata.errors.Unavailable`` at this boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.kv import KeyValue

from citydata.bus.base import Bus, BusStats, Consumer, Handler, StartAt, Subscription, fanout_kinds
from citydata.bus.nats_consumers import LiveSub, NatsMember, consumer_name, header_value
from citydata.cluster.partition import partition_of
from citydata.errors import Conflict, Unavailable
from citydata.events import Event

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 120.0
REASON_HEADER = "Citydata-Reason"
__all__ = ["DUPLICATE_WINDOW_S", "REASON_HEADER", "NatsBus", "consumer_name"]


class NatsBus(Bus):
    """The event bus on NATS JetStream (several nodes share it)."""

    def __init__(self, url: str, *, stream: str, prefix: str, queue_size: int,
                 connect_timeout: float = 5.0, publish_timeout: float = 10.0, ack_wait: float = 30.0,
                 fetch_batch: int = 256, fetch_timeout: float = 1.0, close_grace_s: float = 5.0,
                 partitions: int = 0) -> None:
        self.url, self.stream, self.prefix = url, stream, prefix.rstrip(".")
        self.partitions = max(0, partitions)
        self.queue_size = queue_size
        self.connect_timeout, self.publish_timeout, self.ack_wait = connect_timeout, publish_timeout, ack_wait
        self.fetch_batch, self.fetch_timeout, self.close_grace_s = fetch_batch, fetch_timeout, close_grace_s
        self.deadletter_prefix = f"{self.prefix}.deadletter."
        self.stats = BusStats()
        self.reconnects = 0
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._subs: set[LiveSub] = set()
        self._members: set[NatsMember] = set()
        self._member_count: dict[str, int] = {}
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        parts = f", partitions={self.partitions}" if self.partitions else ""
        return f"NatsBus(stream={self.stream}, prefix={self.prefix}{parts})"

    def subject(self, kind_or_pattern: str, partition: int | str | None = None) -> str:
        """The subject of a kind (or a pattern) in one partition (``"*"``: every partition); on an
        unpartitioned bus the partition is ignored."""
        if not self.partitions:
            return f"{self.prefix}.{kind_or_pattern}"
        return f"{self.prefix}.p.{'*' if partition is None else partition}.{kind_or_pattern}"

    def targets(self, event: Event) -> list[tuple[str, str]]:
        """(subject, message id) of each copy of an event: one, or one per partition for a fan-out kind."""
        if not self.partitions:
            return [(self.subject(event.kind), event.id)]
        if event.kind in fanout_kinds():
            return [(self.subject(event.kind, k), f"{event.id}.p{k}") for k in range(self.partitions)]
        return [(self.subject(event.kind, partition_of(event.key, self.partitions)), event.id)]

    def live_subject(self, kind_or_pattern: str) -> str:
        """Subjects of broadcast (live-only) events: outside the stream, so JetStream never stores them."""
        return f"_live.{self.prefix}.{kind_or_pattern}"

    async def broadcast(self, events: Sequence[Event]) -> None:
        if self._nc is None:
            raise Unavailable("the NATS bus is not started", code="bus_unavailable")
        try:
            for event in events:
                await self._nc.publish(self.live_subject(event.kind), event.to_bytes())
        except Exception as err:
            raise Unavailable(f"NATS broadcast failed ({type(err).__name__})", code="bus_unavailable") from err

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            return
        nc = NATS()
        try:
            await asyncio.wait_for(nc.connect(
                servers=[self.url], name="citydata", allow_reconnect=True, max_reconnect_attempts=-1,
                reconnect_time_wait=1, connect_timeout=2, error_cb=self._on_error,
                disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected),
                timeout=self.connect_timeout)
            js = nc.jetstream(timeout=self.publish_timeout)
            config = StreamConfig(name=self.stream, subjects=[f"{self.prefix}.>"], storage=StorageType.FILE,
                                  duplicate_window=DUPLICATE_WINDOW_S)
            try:
                await js.stream_info(self.stream)
            except nats.js.errors.NotFoundError:
                await js.add_stream(config)
            else:
                await js.update_stream(config)
        except BaseException as err:
            with contextlib.suppress(Exception):
                await nc.close()
            if not isinstance(err, Exception):
                raise
            raise Unavailable(f"NATS JetStream is not available ({type(err).__name__})",
                              code="bus_unavailable") from err
        self._nc, self._js = nc, js
        log.info("bus connected to NATS JetStream stream %s", self.stream)

    async def stop(self) -> None:
        for sub in list(self._subs):
            await sub.close()
        await asyncio.gather(*(m.close() for m in list(self._members)), return_exceptions=True)
        nc, self._nc, self._js = self._nc, None, None
        if nc is None or nc.is_closed:
            return
        try:
            await asyncio.wait_for(nc.drain(), timeout=self.close_grace_s)
        except Exception as err:
            log.warning("NATS drain failed (%s); closing", type(err).__name__)
        with contextlib.suppress(Exception):
            await nc.close()

    async def healthy(self) -> bool:
        if self._nc is None or self._js is None or not self._nc.is_connected:
            return False
        try:
            await asyncio.wait_for(self._js.stream_info(self.stream), timeout=2.0)
        except Exception:
            return False
        return True

    async def _on_error(self, err: Exception) -> None:
        log.warning("NATS error: %s", type(err).__name__)

    async def _on_disconnected(self) -> None:
        if self._nc is not None:  # not our own stop()
            log.warning("NATS disconnected; reconnecting")

    async def _on_reconnected(self) -> None:
        self.reconnects += 1
        log.info("NATS reconnected")

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise Unavailable("the NATS bus is not started", code="bus_unavailable")
        return self._js

    # -- publishing ------------------------------------------------------------------------------------------
    async def publish(self, event: Event) -> int:
        seq = 0
        for subject, msg_id in self.targets(event):
            seq = await self._publish_one(subject, msg_id, event)
        return seq

    async def _publish_one(self, subject: str, msg_id: str, event: Event) -> int:
        js = self._jetstream()
        deadline = time.monotonic() + self.publish_timeout
        delay = 0.05
        while True:
            try:
                ack = await js.publish(subject, event.to_bytes(),
                                       timeout=max(0.1, min(2.0, deadline - time.monotonic())),
                                       headers={"Nats-Msg-Id": msg_id})
            except (TimeoutError, nats.js.errors.NoStreamResponseError,
                    nats.errors.ConnectionReconnectingError) as err:
                # Safe to retry: the stream drops a second copy with the same Nats-Msg-Id.
                if time.monotonic() + delay >= deadline:
                    raise Unavailable("the NATS bus did not acknowledge the event",
                                      code="bus_unavailable") from err
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            except nats.errors.Error as err:
                raise Unavailable(f"NATS publish failed ({type(err).__name__})", code="bus_unavailable") \
                    from err
            self.stats.published += 1
            return int(ack.seq)

    async def publish_many(self, events: Sequence[Event]) -> list[int]:
        """Write every message, then wait for the acknowledgements together; any event left unacknowledged
        after ``publish_timeout`` (or refused) is retried alone with its id, so nothing is stored twice."""
        if not events:
            return []
        js = self._jetstream()
        if any(len(self.targets(e)) > 1 for e in events):   # fan-out kinds (rare): one by one, in order
            return [await self.publish(e) for e in events]
        futures: list[asyncio.Future[Any] | None] = []
        try:
            for event in events:
                subject, msg_id = self.targets(event)[0]
                futures.append(await js.publish_async(subject, event.to_bytes(),
                                                      headers={"Nats-Msg-Id": msg_id}))
        except nats.errors.Error as err:
            log.warning("pipelined publish interrupted (%s); retrying one by one", type(err).__name__)
        futures.extend([None] * (len(events) - len(futures)))
        pending: list[asyncio.Future[Any]] = [f for f in futures if f is not None]
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.publish_timeout)
            for late_fut in late:
                late_fut.cancel()  # frees nats-py's slot; the event is published again below
        seqs: list[int] = []
        for event, maybe in zip(events, futures, strict=True):
            if maybe is not None and maybe.done() and not maybe.cancelled() and maybe.exception() is None:
                seqs.append(int(maybe.result().seq))
                self.stats.published += 1
            else:
                subject, msg_id = self.targets(event)[0]
                seqs.append(await self._publish_one(subject, msg_id, event))
        return seqs

    async def _dead_letter(self, durable: str, msg: Msg, event: Event, seq: int, reason: str) -> None:
        headers = {"Nats-Msg-Id": f"deadletter.{durable}.{seq}", REASON_HEADER: header_value(reason),
                   "Citydata-Group": durable, "Citydata-Seq": str(seq), "Citydata-Event-Id": event.id}
        try:
            await self._jetstream().publish(f"{self.deadletter_prefix}{durable}", msg.data, headers=headers)
        except Exception as err:
            log.error("could not publish the dead letter of event %s (%s)", event.id, type(err).__name__)

    def _event_of(self, msg: Msg) -> Event | None:
        """The event a message carries, or None for dead-letter copies and garbage (logged)."""
        if msg.subject.startswith(self.deadletter_prefix):
            return None
        try:
            event = Event.from_bytes(msg.data)
        except Exception:
            log.error("message on %s is not an event; skipped", msg.subject)
            return None
        if msg.subject != self.live_subject(event.kind) and \
                msg.subject not in {subject for subject, _ in self.targets(event)}:
            log.error("event %s of kind %s arrived on %s; skipped", event.id, event.kind, msg.subject)
            return None
        return event

    # -- receiving -------------------------------------------------------------------------------------------
    async def subscribe(self, pattern: str, handler: Handler, *, queue_size: int = 1000) -> Subscription:
        if self._nc is None:
            raise Unavailable("the NATS bus is not started", code="bus_unavailable")
        sub = LiveSub(self, pattern, handler, queue_size)
        try:
            sub.nsub = await self._nc.subscribe(self.subject(pattern), cb=sub.on_msg)
            sub.nsub_live = await self._nc.subscribe(self.live_subject(pattern), cb=sub.on_msg)
        except Exception as err:
            await sub.close()
            raise Unavailable(f"NATS subscribe failed ({type(err).__name__})",
                              code="bus_unavailable") from err
        self._subs.add(sub)
        return sub

    async def consume(self, group: str, pattern: str, handler: Handler, *, start: StartAt = "all",
                      max_attempts: int = 5, partition: int | None = None, batch_ack: bool = False) -> Consumer:
        js = self._jetstream()
        durable, subject, config = self._consumer_config(group, pattern, start, partition)
        async with self._lock:
            try:
                try:
                    info = await js.consumer_info(self.stream, durable)
                except nats.js.errors.NotFoundError:
                    await js.add_consumer(self.stream, config)
                else:
                    if info.config.filter_subject != subject:
                        raise Conflict(f"consumer group {group!r} already consumes "
                                       f"{info.config.filter_subject!r}", code="bus_group_conflict")
                psub = await js.pull_subscribe_bind(consumer=durable, stream=self.stream)
            except Conflict:
                raise
            except Exception as err:
                raise Unavailable(f"NATS consumer {durable} could not be bound ({type(err).__name__})",
                                  code="bus_unavailable") from err
            name = group if partition is None else f"{group}.p{partition}"
            index = self._member_count.get(name, 0)
            self._member_count[name] = index + 1
            member = NatsMember(self, name, durable, psub, handler, max_attempts, index, batch_ack)
            self._members.add(member)
            return member

    async def ensure_group(self, group: str, pattern: str, *, start: StartAt = "new",
                           partition: int | None = None) -> None:
        js = self._jetstream()
        durable, _, config = self._consumer_config(group, pattern, start, partition)
        try:
            try:
                await js.consumer_info(self.stream, durable)
            except nats.js.errors.NotFoundError:
                await js.add_consumer(self.stream, config)
        except Exception as err:
            raise Unavailable(f"NATS consumer {durable} could not be created ({type(err).__name__})",
                              code="bus_unavailable") from err

    async def resume_at(self, group: str, pattern: str, *, after: int | None,
                        partition: int | None = None) -> None:
        """Recreate the durable consumer at ``after + 1`` when anything after ``after`` was delivered already
        (held by a member that died or stopped): JetStream would otherwise redeliver those events only after
        ``ack_wait``, behind newer ones. Recreating it also cuts off a member of the old owner that is still
        bound to it (fencing)."""
        js = self._jetstream()
        durable, _, config = self._consumer_config(group, pattern, "new", partition)
        try:
            try:
                info = await js.consumer_info(self.stream, durable)
            except nats.js.errors.NotFoundError:
                info = None
            if info is None:
                if after is None:
                    return   # never consumed: ``consume`` creates it with its own start policy
            elif not info.num_ack_pending and not info.num_redelivered:
                return       # nothing is in anyone's hands: it goes on where it is
            else:
                if after is None:
                    after = (info.ack_floor.stream_seq if info.ack_floor is not None else 0) or 0
                    if not after:    # nothing acknowledged yet: no position to resume at; ack_wait it is
                        log.warning("consumer %s has events in hand but no acknowledged position", durable)
                        return
                await js.delete_consumer(self.stream, durable)
            await js.add_consumer(self.stream, dataclasses.replace(
                config, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=(after or 0) + 1))
        except Exception as err:
            raise Unavailable(f"NATS consumer {durable} could not be repositioned ({type(err).__name__})",
                              code="bus_unavailable") from err
        log.info("consumer %s resumes after sequence %d", durable, after or 0)

    def _consumer_config(self, group: str, pattern: str, start: StartAt,
                         partition: int | None) -> tuple[str, str, ConsumerConfig]:
        if partition is not None and not 0 <= partition < self.partitions:
            raise ValueError(f"partition {partition} out of range (the bus has {self.partitions} partitions)")
        durable = consumer_name(group if partition is None else f"{group}.p{partition}")
        subject = self.subject(pattern, partition)
        config = ConsumerConfig(
            durable_name=durable, filter_subject=subject, ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL if start == "all" else DeliverPolicy.NEW,
            ack_wait=self.ack_wait, max_deliver=-1, max_ack_pending=self.queue_size,
            description=f"citydata consumer group {group}"[:200])
        return durable, subject, config

    async def key_value(self, bucket: str, ttl: float) -> KeyValue:
        """The JetStream key-value bucket ``bucket`` (created when missing) whose entries expire after ``ttl``
        seconds without a rewrite (the cluster's leases)."""
        from citydata.cluster.leases import kv_config

        js = self._jetstream()
        try:
            return await js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            return await js.create_key_value(kv_config(bucket, ttl))

    def queue_depths(self) -> dict[str, int]:
        depths = {f"consumer:{m.name}": m.pending() for m in self._members}
        depths.update({f"subscriber:{s.pattern}": s.queue.qsize() for s in self._subs})
        return depths
