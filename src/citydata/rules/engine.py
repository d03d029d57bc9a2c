"""The streaming rules engine: a durable consumer of the bus that keeps windows in memory, bounded, and raises
alerts as bus events, exactly once per transition across crashes.

**Delivery and restart.** The engine is the member of the durable consumer group ``rules`` (pattern ``>``; its
own ``alert.*``/``cap.*`` output and unrelated events only move its position). Its checkpoint (instances,
reorder buffer, undelivered alert events, and the last bus ``seq`` it covers) is written in one store
transaction. After a restart it restores the checkpoint and ignores deliveries at or below that ``seq``, so
nothing is applied twice. Events the bus already counts as acknowledged but that are newer than the
checkpoint are not lost either:

* with a *replay source* (the in-process bus's store journal: ``StoreJournal.read_after``) the engine reads
  them again from the journal on start ("replay" mode: the handler returns at once; fast);
* without one (NATS) the handler returns only once a checkpoint covering the event is committed ("sync"
  mode: checkpoints are group commits, so this costs latency, not correctness).

**Alerts, exactly once.** A transition (raise, update, clear) produces events that are committed to the
``rule_outbox`` with the checkpoint and only then published; a published event is removed from the outbox in a
later checkpoint. After a crash the outbox is published again, minus the events the journal already holds (the
in-process bus; JetStream drops duplicates by ``Nats-Msg-Id``, which is the event id). A transition whose
checkpoint did not commit is decided again by the replay, with the same outcome. So a ``kill -9`` loses no
alert whose evidence was acknowledged and raises none twice.

**Time.** Windows use event time. With ``lateness_s > 0`` events wait in a bounded reorder buffer until the
watermark (newest event time seen, or the clock) minus the lateness passes them and are applied in
(event time, key, seq) order, so out-of-order arrival within the lateness gives the same alerts as in-order
arrival. A later event is counted (``late_events``) and applied at once, best-effort (a threshold ignores
a value older than its newest one; a window inserts it in place when still inside the window). A timer on the
injectable clock (``clock.sleep(tick_s)``) evaluates time-dependent conditions (windows emptying, absence,
event holds) at clock time minus the lateness, and writes periodic checkpoints.

**Partitions (multi-node).** On a partitioned bus each partition ``k`` has its own engine (``scope="local"``,
checkpoint ``p<k>``, consumer ``rules.p<k>``) with the rules whose instances never span two event keys
(``group_by`` datastream, key or traveller: every fact of an instance comes from events of one key, so of one
partition); the node holding the cluster leader lease runs one more engine (``scope="global"``, checkpoint
``global``) for the rules that group across keys (zone, device, none, ...), reading every partition in stream
order. The node taking a partition over restores its checkpoint and resumes its durable consumer, so no
event is applied twice or lost. In sync mode the engine waits for its checkpoint on the last event of each
fetched batch (``Delivery.last_in_batch``), and the bus acknowledges the batch after that: one commit per
batch, not per event.

**Dedup.** One firing state per dedup key (``<rule id>:<instance key>``): a raise, updates at most once per the
rule's ``renotify`` (event time) when new evidence came in, and a clear. A flapping sensor inside the
hysteresis band changes nothing.

**Modules.** :mod:`~citydata.rules.options` (options, counters, scopes), :mod:`~citydata.rules.evaluation`
(rules, reorder buffer, matching, transitions; no I/O), :mod:`~citydata.rules.checkpointing` (checkpoint,
restore, outbox, publisher) and this one (loading rules, start and stop, the consumer handler, introspection).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from citydata.bus.base import Bus, Consumer, Delivery, register_fanout_kind
from citydata.clock import Clock
from citydata.events import Event
from citydata.rules.catalogue import Catalogue
from citydata.rules.checkpointing import CheckpointedEvaluator
from citydata.rules.evaluation import log
from citydata.rules.instance import Instance
from citydata.rules.options import EngineOptions, EngineStats, ReplayJournal
from citydata.rules.selector import OBSERVATION
from citydata.store.fencing import Fenced

if TYPE_CHECKING:
    from citydata.geo import Geography

__all__ = ["CHANGED", "EngineOptions", "EngineStats", "ReplayJournal", "RulesEngine"]

CHANGED = "rules.changed"
IGNORED_PREFIXES = ("alert.", "cap.")
register_fanout_kind(CHANGED)   # every partition's engine reloads at its own position


class RulesEngine(CheckpointedEvaluator):
    def __init__(self, store: Any, bus: Bus, clock: Clock, *, catalogue: Catalogue | None = None,
                 geography: Geography | None = None, options: EngineOptions | None = None,
                 journal: ReplayJournal | None = None) -> None:
        super().__init__(store, bus, clock, catalogue=catalogue or Catalogue(store, geography),
                         geography=geography, options=options or EngineOptions(), journal=journal)
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer: Consumer | None = None
        self._running = False

    # -- rules -----------------------------------------------------------------------------------------------
    async def load_rules(self) -> None:
        compiled = []
        for row in await self.rules_store.list(enabled_only=True):
            try:
                compiled.append(self.compile(row["doc"], int(row["version"])))
            except Exception as err:   # a rule valid when saved but not now (e.g. a place removed)
                log.error("rule %s v%s not loaded: %s", row["id"], row["version"], err)
        self.set_rules(compiled)

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, *, consume: bool = True) -> None:
        await self.catalogue.load_all()
        await self.load_rules()
        await self._restore()
        self._running = True
        self._tasks = [asyncio.create_task(self._checkpointer(), name="rules-checkpoint"),
                       asyncio.create_task(self._publisher(), name="rules-publish"),
                       asyncio.create_task(self._ticker(), name="rules-timer")]
        if self.journal is not None:
            await self._replay_journal()
        if consume:
            if self.journal is None:   # resume right after the checkpoint, in order (see Bus.resume_at)
                await self.bus.resume_at(self.options.group, ">", after=self.seq or None,
                                         partition=self.options.partition)
            self._consumer = await self.bus.consume(self.options.group, ">", self.handle, start="new",
                                                    partition=self.options.partition, batch_ack=True)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
        self._running = False
        try:
            await self.checkpoint()
        except Fenced as err:   # a newer owner has the partition: its checkpoint stands, ours is dropped
            log.error("rules engine %s: %s; stopping without a checkpoint", self.options.name, err.message)
            await self.abandon()
            return
        await self._publish_q.join()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._published:
            await self.rules_store.drop_outbox(self._published)
            self._published = []

    async def abandon(self) -> None:
        """Stop at once without writing a checkpoint: the partition's lease was lost, another node may own it
        now and restores the last committed checkpoint (decided alerts are in its outbox). Events in hand are
        handed back unacknowledged."""
        self._abandoned = True
        self._running = False
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        async with self._committed:
            self._committed.notify_all()
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None

    async def _replay_journal(self) -> None:
        """Apply what the journal holds after our checkpoint (events the bus may already count as ours)."""
        assert self.journal is not None
        replayed = 0
        while True:
            batch = await self.journal.read_after(self.seq, 1000)
            if not batch:
                break
            for seq, event in batch:
                await self.handle(Delivery(event, seq, 1, self.options.group))
                replayed += 1
        if replayed:
            log.info("rules engine replayed %d events from the journal", replayed)

    # -- intake ----------------------------------------------------------------------------------------------
    async def handle(self, delivery: Delivery) -> None:
        """The consumer-group handler."""
        seq = delivery.seq
        if seq and seq <= self.seq:
            self.stats.skipped_seen += 1
            if self.journal is None and delivery.last_in_batch:
                await self._wait_committed(seq)   # the batch's earlier events are acknowledged with this one
            return
        event = delivery.event
        kind = event.kind
        if kind == CHANGED:
            await self.load_rules()
        elif not kind.startswith(IGNORED_PREFIXES):
            info = None
            if kind == OBSERVATION:
                sid = event.data.get("datastream_id")
                if isinstance(sid, int):
                    info = self.catalogue.cached(sid)
                    if info is None:
                        info = await self.catalogue.lookup(sid)
            self.stats.events += 1
            self.ingest(event, seq, info)
        if seq:
            self.seq = seq
        self._since_checkpoint += 1
        if self._out or self._since_checkpoint >= self.options.checkpoint_every:
            self._wake.set()
        if self.journal is None and seq and delivery.last_in_batch:
            await self._wait_committed(seq)

    # -- introspection ---------------------------------------------------------------------------------------
    def take_output(self) -> list[Event]:
        """The alert events decided and not yet checkpointed (for an engine driven by hand: tests, dry runs)."""
        out, self._out = self._out, []
        return out

    def active(self) -> dict[str, Instance]:
        """Firing instances by dedup key."""
        return {inst.dedup_key(c.rule): inst for c in self.rules.values() for inst in c.instances.values()
                if inst.active}

    def describe(self) -> dict[str, Any]:
        return {"rules": len(self.rules), "instances": sum(len(c.instances) for c in self.rules.values()),
                "seq": self.seq, "buffered": len(self._buffer), "dropped_points": self.limits.dropped_points,
                "late_points": self.limits.late_points, **asdict(self.stats)}
