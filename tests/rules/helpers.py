"""Driving a real ``RulesEngine`` by hand (no bus, no store) with a DrivenClock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from citydata.clock import DrivenClock
from citydata.events import Event, make_event
from citydata.geo import Geography, read_reference_city
from citydata.rules import Catalogue, EngineOptions, RulesEngine, StreamInfo

_GEO: Geography | None = None


def geography() -> Geography:
    global _GEO
    if _GEO is None:
        _GEO = Geography.from_places(read_reference_city("phuket"))
    return _GEO


# Patong (subdistrict:830202) sensors: a rain gauge (1), a water-level sensor (2); a DO probe at Kata (3)
STREAMS = [
    StreamInfo(1, "precipitation", "mm", 1, {"device_id": "rain-01", "kind": "rain_gauge"}, "rain-01",
               "rain_gauge", 98.2965, 7.8961, "subdistrict:830202", "Pa Tong", "ป่าตอง"),
    StreamInfo(2, "water_level", "m", 2, {"device_id": "level-01", "kind": "water_level"}, "level-01",
               "water_level", 98.2990, 7.8930, "subdistrict:830202", "Pa Tong", "ป่าตอง"),
    StreamInfo(3, "dissolved_oxygen", "mg/L", 3, {"device_id": "do-01", "kind": "dissolved_oxygen"}, "do-01",
               "dissolved_oxygen", 98.2960, 7.8200, "subdistrict:830108", "Karon", "กะรน"),
    StreamInfo(4, "precipitation", "mm", 4, {"device_id": "rain-02", "kind": "rain_gauge"}, "rain-02",
               "rain_gauge", 98.3900, 7.8800, "subdistrict:830101", "Talat Yai", "ตลาดใหญ่"),
]


def rule(rule_id: str, condition: dict[str, Any], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": rule_id, "name": rule_id, "source": {"observed_property": ["precipitation"]},
        "group_by": "datastream", "condition": condition, "renotify": "6h",
        "alert": {"kind": "env.test", "severity": "minor", "category": "Env", "message": "{rule_name} {value}"}}
    doc.update(extra)
    return doc


class Driver:
    def __init__(self, docs: list[dict[str, Any]], clock: DrivenClock | None = None, *, lateness: float = 0.0,
                 **options: Any) -> None:
        self.clock = clock or DrivenClock()
        self.t0 = self.clock.now()
        cat = Catalogue(None, geography())
        for info in STREAMS:
            cat.put(info)
        self.engine = RulesEngine(None, None, self.clock, catalogue=cat, geography=geography(),  # type: ignore[arg-type]
                                  options=EngineOptions(lateness_s=lateness, **options))
        self.engine.set_rules([self.engine.compile(d, 1) for d in docs])
        self.seq = 0
        self.out: list[Event] = []

    def at(self, minutes: float) -> datetime:
        return self.t0 + timedelta(minutes=minutes)

    def obs(self, stream: int, minutes: float, value: Any) -> Event:
        t = self.at(minutes)
        return make_event("observation.received", str(stream), t, {
            "datastream_id": stream, "phenomenon_time": t.isoformat(), "result": value})

    def send(self, *events: Event) -> list[Event]:
        for event in events:
            self.seq += 1
            info = None
            if event.kind == "observation.received":
                info = self.engine.catalogue.cached(int(event.data["datastream_id"]))
            self.engine.ingest(event, self.seq, info)
        return self._collect()

    def feed(self, stream: int, points: list[tuple[float, Any]]) -> list[Event]:
        return self.send(*[self.obs(stream, m, v) for m, v in points])

    def tick(self, minutes: float) -> list[Event]:
        """Move the clock to t0 + minutes and run the engine's timer evaluation."""
        self.clock.set(self.at(minutes))
        self.engine.tick()
        return self._collect()

    def _collect(self) -> list[Event]:
        new = self.engine.take_output()
        self.out.extend(new)
        return new

    def transitions(self) -> list[tuple[str, str]]:
        return [(e.kind, e.key) for e in self.out]


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]
