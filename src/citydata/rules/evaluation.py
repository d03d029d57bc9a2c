"""Evaluation: the rules installed in an engine, the event-time reorder buffer, matching an event to the rules
and instances it feeds, and the transitions (raise, update, clear) that become alert events.

This part does no I/O: decided events collect in ``_out`` and changed instances in ``_dirty``/``_removed`` for
the checkpoint (:mod:`citydata.rules.checkpointing`). See :mod:`citydata.rules.engine` for the whole design
(time, lateness, dedup)."""

from __future__ import annotations

import asyncio
import heapq
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from citydata.clock import Clock
from citydata.events import Event
from citydata.rules.catalogue import Catalogue, StreamInfo, zone_of
from citydata.rules.conditions.base import BindContext, Condition, Fact, Limits
from citydata.rules.instance import Instance
from citydata.rules.model import GROUP_FIELDS, Rule, parse_rule
from citydata.rules.options import EngineOptions, EngineStats, in_scope
from citydata.rules.selector import OBSERVATION, dotted

if TYPE_CHECKING:
    from citydata.geo import Geography

log = logging.getLogger("citydata.rules.engine")   # one logger for the engine, whichever module logs


@dataclass
class Compiled:
    rule: Rule
    timed: bool
    instances: dict[str, Instance] = field(default_factory=dict)
    leaves: list[Condition] = field(default_factory=list)


class Evaluator:
    """Rules, windows and transitions of one engine, in memory."""

    def __init__(self, clock: Clock, *, catalogue: Catalogue, geography: Geography | None,
                 options: EngineOptions) -> None:
        self.clock = clock
        self.geography = geography
        self.catalogue = catalogue
        self.options = options
        self.stats = EngineStats()
        self.limits = Limits(max_points=self.options.max_points)
        self.rules: dict[str, Compiled] = {}
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
        self._wake = asyncio.Event()

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

    # -- intake ----------------------------------------------------------------------------------------------
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
            inst.start_episode(rule, now)
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
