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
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from citydata.bus.base import Bus, Consumer, Delivery, register_fanout_kind
from citydata.clock import Clock
from citydata.errors import Unavailable
from citydata.events import Event
from citydata.rules.catalogue import Catalogue, StreamInfo, zone_of
from citydata.rules.conditions.base import BindContext, Condition, Fact, Limits
from citydata.rules.instance import Instance
from citydata.rules.model import GROUP_FIELDS, Rule, parse_rule
from citydata.rules.selector import OBSERVATION, dotted
from citydata.rules.store import CheckpointWrite, RuleStore

if TYPE_CHECKING:
    from citydata.geo import Geography

log = logging.getLogger(__name__)
CHANGED = "rules.changed"
IGNORED_PREFIXES = ("alert.", "cap.")
LOCAL_GROUPS = frozenset({"datastream", "key", "traveller"})   # instances of one event key (so one partition)
register_fanout_kind(CHANGED)   # every partition's engine reloads at its own position


@dataclass
class EngineOptions:
    name: str = "default"             # checkpoint name (one per engine)
    group: str = "rules"              # durable consumer group
    lateness_s: float = 0.0           # out-of-order tolerance (event time)
    tick_s: float = 5.0               # timer period (clock time)
    checkpoint_every: int = 5000      # events between checkpoints (also: every tick, and on every alert)
    max_instances: int = 10_000       # per rule; new instances beyond are refused and counted
    max_points: int = 10_000          # per window series; oldest dropped and counted
    max_buffer: int = 100_000         # reorder buffer; beyond, the oldest is applied early and counted
    min_checkpoint_s: float = 0.5     # real seconds between checkpoints (coalesces alerts under load)
    scope: str = "all"                # all rules; "local": per-key rules only; "global": the others
    partition: int | None = None      # consume only this bus partition (scope "local")


def in_scope(rule: Rule, scope: str) -> bool:
    """Whether an engine of ``scope`` runs ``rule`` (see Partitions above)."""
    if scope == "all":
        return True
    local = rule.group_by in LOCAL_GROUPS
    return local if scope == "local" else not local


@dataclass
class EngineStats:
    events: int = 0
    applied: int = 0
    skipped_seen: int = 0
    late_events: int = 0
    early_released: int = 0
    dropped_instances: int = 0
    raised: int = 0
    updated: int = 0
    cleared: int = 0
    checkpoints: int = 0
    republished: int = 0


@dataclass
class Compiled:
    rule: Rule
    timed: bool
    instances: dict[str, Instance] = field(default_factory=dict)
    leaves: list[Condition] = field(default_factory=list)


class ReplayJournal(Protocol):
    """What the engine reads of a durable bus log (``citydata.store.journal.StoreJournal``)."""

    async def read_after(self, seq: int, limit: int) -> list[tuple[int, Event]]: ...

    async def last_seq(self) -> int: ...


class RulesEngine:
    def __init__(self, store: Any, bus: Bus, clock: Clock, *, catalogue: Catalogue | None = None,
                 geography: Geography | None = None, options: EngineOptions | None = None,
                 journal: ReplayJournal | None = None) -> None:
        self.store, self.bus, self.clock = store, bus, clock
        self.rules_store = RuleStore(store)
        self.geography = geography
        self.catalogue = catalogue or Catalogue(store, geography)
        self.options = options or EngineOptions()
        self.journal = journal
        self.stats = EngineStats()
        self.limits = Limits(max_points=self.options.max_points)
        self.rules: dict[str, Compiled] = {}
        self.seq = 0
        self.watermark = float("-inf")
        self.released_upto = float("-inf")
        self._buffer: list[tuple[float, str, int, int, Event]] = []
        self._buf_n = 0
        self._by_stream: dict[int, list[Compiled]] = {}
        self._by_kind: dict[str, list[Compiled]] = {}
        self._explicit: dict[int, list[Compiled]] = {}
        self._generic: list[Compiled] = []
        self._dirty: set[tuple[str, str]] = set()
        self._removed: set[tuple[str, str]] = set()
        self._out: list[Event] = []
        self._alert_waiting = asyncio.Event()   # cuts the checkpoint pacing short when an alert is due
        self._published: list[str] = []
        self._since_checkpoint = 0
        self._wake = asyncio.Event()
        self._committed = asyncio.Condition()
        self._committed_seq = 0
        self._publish_q: asyncio.Queue[list[Event]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer: Consumer | None = None
        self._running = False
        self._abandoned = False

    # -- rules -----------------------------------------------------------------------------------------------
    def compile(self, doc: dict[str, Any], version: int) -> Rule:
        rule = parse_rule(doc, ctx=BindContext(self.geography, self.limits))
        rule.version = version
        return rule

    def set_rules(self, rules: list[Rule], *, reason: str = "rule changed") -> None:
        """Install rules; instances of a changed or removed rule are dropped (a firing one is cleared)."""
        new = {r.id: r for r in rules if r.enabled and in_scope(r, self.options.scope)}
        now = max(self.watermark, self.clock.now().timestamp() - self.options.lateness_s)
        for rule_id, comp in list(self.rules.items()):
            keep = new.get(rule_id)
            if keep is not None and keep.version == comp.rule.version:
                new[rule_id] = comp.rule
                continue
            for key, inst in comp.instances.items():
                if inst.active:
                    self._emit([inst.cleared(comp.rule, now, reason if keep else "rule deleted or disabled")])
                    self.stats.cleared += 1
                self._removed.add((rule_id, key))
            del self.rules[rule_id]
        for rule_id, rule in new.items():
            if rule_id not in self.rules:
                self.rules[rule_id] = Compiled(rule, rule.condition.is_timed(), {},
                                               list(rule.condition.leaves()))
        self._by_stream.clear()
        self._by_kind.clear()
        self._explicit = {}
        self._generic = [c for c in self.rules.values() if not c.rule.source.datastreams]
        for comp in self.rules.values():
            for sid in comp.rule.source.datastreams:
                self._explicit.setdefault(sid, []).append(comp)
        self._wake.set()

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
        await self.checkpoint()
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

    async def _restore(self) -> None:
        cp = await self.rules_store.load_checkpoint(self.options.name)
        if cp.seq is None:
            self.seq = await self.journal.last_seq() if self.journal is not None else 0
            return
        self.seq = self._committed_seq = cp.seq
        state = orjson.loads(cp.state)
        self.watermark = float(state.get("watermark") or float("-inf"))
        self.released_upto = float(state.get("released") or float("-inf"))
        for k, v in (state.get("stats") or {}).items():
            if hasattr(self.stats, k):
                setattr(self.stats, k, int(v))
        for t, seq, raw in state.get("buffer") or []:
            self._buf_n += 1
            event = Event.model_validate(raw)
            self._buffer.append((float(t), event.key, int(seq), self._buf_n, event))
        heapq.heapify(self._buffer)
        for rule_id, key, version, raw in cp.instances:
            comp = self.rules.get(rule_id)
            if comp is None or comp.rule.version != version:
                self._removed.add((rule_id, key))
                inst = Instance.from_state(key, orjson.loads(raw))
                if inst.active and comp is not None:
                    self._emit([inst.cleared(comp.rule, max(inst.seen, 0.0), "rule changed")])
                continue
            comp.instances[key] = Instance.from_state(key, orjson.loads(raw))
        if cp.outbox:
            events = [Event.model_validate_json(raw) for _, raw in cp.outbox]
            already = await self._journaled([e.id for e in events])
            todo = [e for e in events if e.id not in already]
            self.stats.republished += len(todo)
            if todo:
                await self.bus.publish_many(todo)
            await self.rules_store.drop_outbox([i for i, _ in cp.outbox])
        log.info("rules engine restored at seq %d (%d instances)", self.seq, len(cp.instances))

    async def _journaled(self, ids: list[str]) -> set[str]:
        """Which of these event ids the store's journal already holds (published before a crash)."""
        if self.journal is None:
            return set()
        from sqlalchemy import select

        from citydata.store.schema import events

        found: set[str] = set()
        for i in range(0, len(ids), 500):
            rows = await self.store.fetch_all(select(events.c.id).where(events.c.id.in_(ids[i:i + 500])))
            found |= {str(r["id"]) for r in rows}
        return found

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

    def ingest(self, event: Event, seq: int, info: StreamInfo | None) -> None:
        t = event.time.timestamp()
        lateness = self.options.lateness_s
        if lateness <= 0:
            if t > self.watermark:
                self.watermark = t
            self.apply(event, t, info)
            return
        if t <= self.released_upto:
            self.stats.late_events += 1
            self.apply(event, t, info)
            return
        self._buf_n += 1
        heapq.heappush(self._buffer, (t, event.key, seq, self._buf_n, event))
        if t > self.watermark:
            self.watermark = t
        self.release(self.watermark - lateness)
        while len(self._buffer) > self.options.max_buffer:
            self.stats.early_released += 1
            self._pop_apply()

    def release(self, upto: float) -> None:
        buf = self._buffer
        while buf and buf[0][0] <= upto:
            self._pop_apply()
        if upto > self.released_upto:
            self.released_upto = upto

    def _pop_apply(self) -> None:
        t, _, _, _, event = heapq.heappop(self._buffer)
        if t > self.released_upto:
            self.released_upto = t
        info = None
        if event.kind == OBSERVATION:
            sid = event.data.get("datastream_id")
            info = self.catalogue.cached(sid) if isinstance(sid, int) else None
        self.apply(event, t, info)

    # -- evaluation ------------------------------------------------------------------------------------------
    def _candidates(self, kind: str, info: StreamInfo | None) -> list[Compiled]:
        if info is not None:
            found = self._by_stream.get(info.id)
            if found is None:
                pool = self._explicit.get(info.id, []) + self._generic
                found = self._by_stream[info.id] = [c for c in pool if c.rule.source.kind_ok(kind)
                                                    and c.rule.source.stream_ok(info)]
            return found
        found = self._by_kind.get(kind)
        if found is None:
            found = self._by_kind[kind] = [c for c in self.rules.values()
                                           if c.rule.source.kind_ok(kind) and not c.rule.source.needs_stream]
        return found

    def apply(self, event: Event, t: float, info: StreamInfo | None) -> None:
        comps = self._candidates(event.kind, info)
        if not comps:
            return
        self.stats.applied += 1
        data = event.data
        fact = Fact(event.kind, event.key, event.id, t, data, info,
                    str(info.id) if info is not None else event.key)
        if info is None:
            lon, lat = data.get("lon"), data.get("lat")
            if isinstance(lon, int | float) and isinstance(lat, int | float):
                fact.lon, fact.lat = float(lon), float(lat)
        for comp in comps:
            rule = comp.rule
            if (rule.source.data or info is None) and not rule.source.data_ok(data, info):
                continue
            key = self._group_key(rule.group_by, fact)
            if key is None:
                continue
            inst = comp.instances.get(key)
            fed = False
            for leaf in comp.leaves:
                if not leaf.accepts(fact):
                    continue
                if inst is None:
                    if len(comp.instances) >= self.options.max_instances:
                        self.stats.dropped_instances += 1
                        break
                    inst = comp.instances[key] = Instance(key)
                st = inst.leaves.get(leaf.path)
                if st is None:
                    st = inst.leaves[leaf.path] = {}
                leaf.update(st, fact)
                fed = True
            if not fed or inst is None:
                continue
            inst.observe(fact, rule.alert.copy_fields)
            self._dirty.add((rule.id, key))
            self._step(rule, inst, inst.seen, new_evidence=True)

    def _group_key(self, group_by: str, fact: Fact) -> str | None:
        info = fact.info
        if group_by == "datastream":
            return str(info.id) if info is not None else fact.key
        if group_by == "device":
            if info is not None:
                return info.device_id or f"thing:{info.thing_id}"
            device = fact.data.get("device_id")
            return str(device) if device is not None else fact.key
        if group_by == "zone":
            if info is not None:
                return info.zone_id or "unzoned"
            zone = fact.data.get("zone_id")
            if zone is None and fact.lon is not None and fact.lat is not None:
                place = zone_of(self.geography, fact.lon, fact.lat)
                zone = place.id if place is not None else None
            return str(zone) if zone is not None else "unzoned"
        if group_by == "key":
            return fact.key
        if group_by == "none":
            return "*"
        path = GROUP_FIELDS.get(group_by) or group_by.removeprefix("field:")
        value = dotted(fact.data, path)
        return None if value is None else str(value)

    def _step(self, rule: Rule, inst: Instance, now: float, *, new_evidence: bool) -> None:
        active = rule.condition.evaluate(inst.leaves, now)
        if active and not inst.active:
            inst.active, inst.since, inst.notified, inst.notified_seen, inst.updates = True, now, now, inst.seen, 0
            self._emit(inst.raised(rule, now))
            self.stats.raised += 1
        elif active and new_evidence and now - inst.notified >= rule.renotify_s and inst.seen > inst.notified_seen:
            inst.updates += 1
            inst.notified, inst.notified_seen = now, inst.seen
            self._emit(inst.raised(rule, now))
            self.stats.updated += 1
        elif not active and inst.active:
            inst.active = False
            self._emit([inst.cleared(rule, now, "condition no longer holds")])
            self.stats.cleared += 1

    def _emit(self, events: list[Event]) -> None:
        self._out.extend(events)
        self._wake.set()
        self._alert_waiting.set()

    def tick(self, now: float | None = None) -> None:
        """Evaluate time-dependent conditions at ``now`` (default: clock time minus the lateness)."""
        at = self.clock.now().timestamp() - self.options.lateness_s if now is None else now
        if self._buffer:
            self.release(at)
        for comp in self.rules.values():
            if not comp.timed:
                continue
            for key, inst in comp.instances.items():
                if at > inst.seen:
                    self._step(comp.rule, inst, at, new_evidence=False)
                    self._dirty.add((comp.rule.id, key))

    async def _ticker(self) -> None:
        while True:
            await self.clock.sleep(self.options.tick_s)
            try:
                self.tick()
            except Exception:
                log.exception("rules timer failed")
            self._wake.set()

    # -- checkpoint and output -------------------------------------------------------------------------------
    def _snapshot(self) -> tuple[CheckpointWrite, list[Event]]:
        upserts = []
        for rule_id, key in self._dirty:
            comp = self.rules.get(rule_id)
            inst = comp.instances.get(key) if comp is not None else None
            if comp is not None and inst is not None:
                upserts.append((rule_id, key, comp.rule.version, orjson.dumps(inst.to_state()).decode()))
        removals = [rk for rk in self._removed if rk not in self._dirty]
        out, self._out = self._out, []
        state = {"watermark": None if self.watermark == float("-inf") else self.watermark,
                 "released": None if self.released_upto == float("-inf") else self.released_upto,
                 "stats": asdict(self.stats),
                 "buffer": [[t, s, e.model_dump(mode="json")] for t, _, s, _, e in sorted(self._buffer)]}
        write = CheckpointWrite(self.seq, orjson.dumps(state).decode(), upserts, removals,
                                [(e.id, self.seq, e.model_dump_json()) for e in out], list(self._published))
        self._dirty, self._removed, self._published = set(), set(), []
        self._since_checkpoint = 0
        return write, out

    async def checkpoint(self) -> None:
        """Write a checkpoint now (state, outbox and position in one transaction), then hand the decided
        events to the publisher."""
        write, out = self._snapshot()
        try:
            await self.rules_store.save_checkpoint(self.options.name, write)
        except BaseException:
            # keep everything for the next attempt
            self._out[:0] = out
            self._published[:0] = write.published
            self._dirty |= {(r, k) for r, k, _, _ in write.upserts}
            self._removed |= set(write.removals)
            raise
        self.stats.checkpoints += 1
        if out:
            self._publish_q.put_nowait(out)
        async with self._committed:
            self._committed_seq = max(self._committed_seq, write.seq)
            self._committed.notify_all()

    async def _wait_committed(self, seq: int) -> None:
        self._wake.set()
        async with self._committed:
            await self._committed.wait_for(lambda: self._committed_seq >= seq or self._abandoned)
        if self._committed_seq < seq:   # never acknowledge what no checkpoint covers
            raise Unavailable("the rules engine gave its partition up", code="rules_abandoned")

    async def _checkpointer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not (self._dirty or self._removed or self._out or self._published
                    or self.seq > self._committed_seq):
                continue
            try:
                await self.checkpoint()
                # pace checkpoints that only save state; alerts waiting to go out are checkpointed at once
                # (the commit itself groups them), so an alert never waits for the pacing
                if self.options.min_checkpoint_s > 0 and not self._out:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._alert_waiting.wait(), self.options.min_checkpoint_s)
                    self._alert_waiting.clear()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("rules checkpoint failed (%s); retrying", type(err).__name__)
                await asyncio.sleep(0.5)
                self._wake.set()

    async def _publisher(self) -> None:
        while True:
            events = await self._publish_q.get()
            try:
                while True:
                    try:
                        await self.bus.publish_many(events)
                        break
                    except Exception as err:
                        log.warning("rules could not publish %d alert events (%s); retrying", len(events),
                                    type(err).__name__)
                        await asyncio.sleep(1.0)
                self._published.extend(e.id for e in events)
            finally:
                self._publish_q.task_done()

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
