"""Which events a rule (or one condition of it) looks at: selectors as data.

A selector is a mapping; every key given must match (keys are ANDed, the values of one key are ORed)::

    events: [observation.received]        # event kinds, NATS-style patterns (default: observation.received
                                           #   when any observation key below is given, else every kind)
    datastreams: [12, 13]                  # explicit Datastream ids (refused when unknown)
    observed_property: [precipitation, rainfall]   # ObservedProperty name (case and spaces ignored)
    device_kind: [rain_gauge]              # the Thing's properties.kind (the device registry's kinds)
    device_id: [rain-01]                   # the Thing's properties.device_id, or data.device_id of an event
    thing: {agency: pkt-pao}               # any Thing property
    zone: [subdistrict:830202]             # the sub-district containing the sensor (or data.zone_id)
    data: {status: ok}                     # fields of the event payload (dotted paths)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from citydata.events import kind_matches
from citydata.rules.spec import Reader, RuleInvalid, join

if TYPE_CHECKING:
    from citydata.rules.catalogue import StreamInfo

OBSERVATION = "observation.received"
_OBS_KEYS = ("datastreams", "observed_property", "device_kind", "thing")


def norm_name(name: str) -> str:
    """``Water level`` / ``water-level`` / ``water_level`` all compare equal."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def dotted(data: Any, path: str) -> Any:
    """``data["a"]["b"]`` for ``a.b`` (None when any step is missing)."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


@dataclass(frozen=True)
class Selector:
    events: tuple[str, ...] = ()
    datastreams: frozenset[int] = frozenset()
    observed_property: frozenset[str] = frozenset()
    device_kind: frozenset[str] = frozenset()
    device_id: frozenset[str] = frozenset()
    thing: tuple[tuple[str, frozenset[str]], ...] = ()
    zone: frozenset[str] = frozenset()
    data: tuple[tuple[str, frozenset[str]], ...] = ()
    doc: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def needs_stream(self) -> bool:
        return bool(self.datastreams or self.observed_property or self.device_kind or self.thing)

    def kind_ok(self, kind: str) -> bool:
        return not self.events or any(kind_matches(p, kind) for p in self.events)

    def stream_ok(self, info: StreamInfo | None) -> bool:
        """The Datastream-dependent part (cacheable per Datastream)."""
        if self.needs_stream or (info is not None and (self.device_id or self.zone)):
            if info is None:
                return False
            if self.datastreams and info.id not in self.datastreams:
                return False
            if self.observed_property and info.observed_property not in self.observed_property:
                return False
            if self.device_kind and info.device_kind not in self.device_kind:
                return False
            if self.device_id and info.device_id not in self.device_id:
                return False
            if self.zone and info.zone_id not in self.zone:
                return False
            for key, values in self.thing:
                if str(info.thing_properties.get(key)) not in values:
                    return False
        return True

    def data_ok(self, data: dict[str, Any], info: StreamInfo | None) -> bool:
        """The payload-dependent part."""
        if info is None:
            if self.device_id and str(data.get("device_id")) not in self.device_id:
                return False
            if self.zone and str(data.get("zone_id")) not in self.zone:
                return False
        return all(str(dotted(data, key)) in values for key, values in self.data)

    def matches(self, kind: str, data: dict[str, Any], info: StreamInfo | None) -> bool:
        return self.kind_ok(kind) and self.stream_ok(info) and self.data_ok(data, info)


def _pairs(reader: Reader, key: str) -> tuple[tuple[str, frozenset[str]], ...]:
    sub = reader.sub(key)
    if sub is None:
        return ()
    out = []
    for name in sub.data:
        value = sub.raw(str(name))
        items = value if isinstance(value, list) else [value]
        out.append((str(name), frozenset(str(v).lower() if isinstance(v, bool) else str(v) for v in items)))
    return tuple(out)


def parse_selector(value: Any, path: str) -> Selector:
    reader = Reader(value, path)
    events = tuple(reader.strings("events") + reader.strings("event"))
    ids: set[int] = set()
    for i, item in enumerate(reader.strings("datastreams")):
        if not item.isdigit():
            raise RuleInvalid(join(join(path, "datastreams"), i), "must be a Datastream id (an integer)")
        ids.add(int(item))
    sel = Selector(
        events=events,
        datastreams=frozenset(ids),
        observed_property=frozenset(norm_name(n) for n in reader.strings("observed_property")),
        device_kind=frozenset(reader.strings("device_kind")),
        device_id=frozenset(reader.strings("device_id")),
        thing=_pairs(reader, "thing"),
        zone=frozenset(reader.strings("zone")),
        data=_pairs(reader, "data"),
        doc=dict(reader.data),
    )
    reader.done()
    if not events and any(reader.has(k) for k in _OBS_KEYS):
        sel = Selector(**{**sel.__dict__, "events": (OBSERVATION,)})
    for i, pattern in enumerate(sel.events):
        if not all(tok == "*" or tok == ">" or tok.replace("_", "").isalnum() for tok in pattern.split(".")):
            raise RuleInvalid(join(join(path, "events"), i), "must be an event kind pattern like vision.*")
    return sel
