"""One rule instance (a rule applied to one datastream, device, zone, traveller ...), and the alert events it
produces. The state is plain data so the engine checkpoints it as JSON and restores it after a restart."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from citydata.events import Event, make_event
from citydata.rules.conditions.base import Fact
from citydata.rules.model import render

if TYPE_CHECKING:
    from citydata.rules.model import Rule

EVIDENCE = 20


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def summary_of(fact: Fact) -> dict[str, Any]:
    data = fact.data
    if fact.kind == "observation.received":
        return {"datastream_id": data.get("datastream_id"), "result": data.get("result")}
    small = {k: v for k, v in data.items() if isinstance(v, str | int | float | bool) and len(str(v)) <= 80}
    return dict(list(small.items())[:6])


class Instance:
    """Windows and hysteresis per leaf, and the firing state of one alert (its dedup key)."""

    __slots__ = ("active", "ctx", "episode", "evidence", "key", "leaves", "notified", "notified_seen", "raises",
                 "seen", "since", "updates")

    def __init__(self, key: str) -> None:
        self.key = key
        self.leaves: dict[str, dict[str, Any]] = {}
        self.active = False
        self.since = 0.0
        self.notified = 0.0
        self.notified_seen = 0.0
        self.seen = float("-inf")
        self.updates = 0
        self.evidence: list[list[Any]] = []      # [kind, id, t, summary]
        self.ctx: dict[str, Any] = {}            # subject, zone, device, datastream, lon, lat, unit
        self.raises = 0                          # raises so far (checkpointed): numbers the episodes
        self.episode: str | None = None          # the firing episode's identity (see ``start_episode``)

    def observe(self, fact: Fact, copy_fields: tuple[str, ...] = ()) -> None:
        if fact.t > self.seen:
            self.seen = fact.t
        ev = self.evidence
        ev.append([fact.kind, fact.id, fact.t, summary_of(fact)])
        if len(ev) > EVIDENCE:
            del ev[0]
        info, ctx = fact.info, self.ctx
        if info is not None:
            if ctx.get("datastream_id") != info.id:
                ctx.update(datastream_id=info.id, device_id=info.device_id, unit=info.unit, lon=info.lon,
                           lat=info.lat, zone_id=info.zone_id, zone_name=info.zone_name,
                           zone_name_th=info.zone_name_th)
        else:
            if fact.lon is not None and fact.lat is not None:
                ctx.update(lon=fact.lon, lat=fact.lat)
            device = fact.data.get("device_id")
            if device is not None:
                ctx["device_id"] = device
            zone = fact.data.get("zone_id")
            if zone is not None:
                ctx["zone_id"] = zone
        if copy_fields:
            ctx["copied"] = {f: fact.data[f] for f in copy_fields if f in fact.data}

    # -- checkpoint ------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"l": self.leaves, "a": self.active, "s": self.since, "n": self.notified, "ns": self.notified_seen,
                "w": None if self.seen == float("-inf") else self.seen, "u": self.updates, "e": self.evidence,
                "c": self.ctx, "r": self.raises, "ep": self.episode}

    @classmethod
    def from_state(cls, key: str, state: dict[str, Any]) -> Instance:
        inst = cls(key)
        inst.leaves = state.get("l") or {}
        inst.active = bool(state.get("a"))
        inst.since = float(state.get("s") or 0.0)
        inst.notified = float(state.get("n") or 0.0)
        inst.notified_seen = float(state.get("ns") or 0.0)
        inst.seen = float("-inf") if state.get("w") is None else float(state["w"])
        inst.updates = int(state.get("u") or 0)
        inst.evidence = list(state.get("e") or [])
        inst.ctx = dict(state.get("c") or {})
        inst.raises = int(state.get("r") or 0)
        inst.episode = state.get("ep")
        return inst

    def start_episode(self, rule: Rule, now: float) -> None:
        """A raise starts a firing episode, named by what decided it: the rule version, the instance's raise
        count and the event time of the raise. An engine that decides the same transition again from the same
        checkpoint and events (a replay after a crash, a partition's old owner still running after its lease
        moved) names it the same, so its alert events carry the same ids and episode and are stored once."""
        self.raises += 1
        self.episode = f"v{rule.version}.{self.raises}@{iso(now)}"

    def event_id(self, rule: Rule, kind: str, revision: int = 0) -> str | None:
        """The deterministic id of this episode's ``kind`` event (``revision``: the update number); None for
        an episode restored from a checkpoint that predates episodes (a random id then)."""
        if self.episode is None:
            return None
        raw = f"{rule.id}\x1f{self.key}\x1f{self.episode}\x1f{kind}\x1f{revision}"
        return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()

    # -- alert events ----------------------------------------------------------------------------------------
    def dedup_key(self, rule: Rule) -> str:
        return f"{rule.id}:{self.key}"[:200]

    def template_values(self, rule: Rule, now: float) -> dict[str, Any]:
        values: dict[str, Any] = {k: self.ctx.get(k) for k in ("zone_id", "zone_name", "zone_name_th",
                                                               "device_id", "datastream_id", "unit")}
        values.update(rule_id=rule.id, rule_name=rule.name, subject=self.subject(),
                      value=rule.condition.first_value(self.leaves),
                      observed_at=datetime.fromtimestamp(self.newest(now), UTC).strftime("%Y-%m-%d %H:%M UTC"))
        values.update(rule.condition.values(self.leaves))
        return values

    def subject(self) -> str:
        return self.key if self.key != "*" else str(self.ctx.get("zone_name") or "all")

    def newest(self, now: float) -> float:
        return float(self.evidence[-1][2]) if self.evidence else now

    def location(self) -> dict[str, Any] | None:
        lon, lat = self.ctx.get("lon"), self.ctx.get("lat")
        if lon is None or lat is None:
            return None
        return {"type": "Point", "coordinates": [lon, lat]}

    def raised(self, rule: Rule, now: float) -> list[Event]:
        values = self.template_values(rule, now)
        observed = self.newest(now)
        dedup = self.dedup_key(rule)
        spec = rule.alert
        payload = {
            "dedup_key": dedup, "kind": spec.kind, "severity": spec.severity, "category": spec.category,
            "urgency": spec.urgency, "certainty": spec.certainty, "subject": self.subject(),
            "message": render(spec.message, values), "message_th": render(spec.message_th, values),
            "location": self.location(), "zone_id": self.ctx.get("zone_id"),
            "evidence": [{"kind": k, "id": i, "time": iso(t), "summary": s} for k, i, t, s in self.evidence],
            "rule_id": rule.id, "rule_version": rule.version,
            "data": {**spec.data, **self.ctx.get("copied", {}), "values": rule.condition.values(self.leaves),
                     "value": values["value"],
                     "group_by": rule.group_by, "active_since": iso(self.since), "updates": self.updates},
            "observed_at": iso(observed), "episode": self.episode, "revision": self.updates}
        when = datetime.fromtimestamp(observed, UTC)
        events = [_with_id(make_event("alert.raised", dedup, when, payload, source="rules"),
                           self.event_id(rule, "alert.raised", self.updates))]
        if spec.cap_draft is not None and self.updates == 0:
            events.append(self.cap_draft(rule, values, when))
        return events

    def cap_draft(self, rule: Rule, values: dict[str, Any], when: datetime) -> Event:
        spec, cap = rule.alert, rule.alert.cap_draft or {}
        dedup = self.dedup_key(rule)
        zone = self.ctx.get("zone_id")
        payload: dict[str, Any] = {
            "dedup_key": dedup, "event": cap["event"], "category": spec.category, "severity": spec.severity,
            "urgency": spec.urgency, "certainty": spec.certainty,
            "area_desc": render(cap.get("area_desc"), values) or str(values.get("zone_name") or self.subject()),
            "area_place_ids": [zone] if zone else [], "polygon": None}
        for key in ("headline_en", "headline_th", "description_en", "description_th", "instruction_en",
                    "instruction_th"):
            payload[key] = render(cap.get(key), values)
        payload["description_en"] = payload["description_en"] or ""
        return _with_id(make_event("cap.draft_requested", f"{rule.id}:{dedup}"[:200], when, payload, source="rules"),
                        self.event_id(rule, "cap.draft_requested"))

    def cleared(self, rule: Rule, now: float, reason: str) -> Event:
        dedup = self.dedup_key(rule)
        when = datetime.fromtimestamp(now, UTC)
        event = make_event("alert.cleared", dedup, when, {"dedup_key": dedup, "rule_id": rule.id,
                                                          "reason": reason, "observed_at": iso(now),
                                                          "episode": self.episode}, source="rules")
        return _with_id(event, self.event_id(rule, "alert.cleared"))


def _with_id(event: Event, event_id: str | None) -> Event:
    return event if event_id is None else event.model_copy(update={"id": event_id})
