"""The tracking event kinds and their payloads. None carries personal data: only the pseudonymous
``traveller_id``, places and positions."""

from __future__ import annotations

from pydantic import BaseModel

from citydata.events import register_event_kind


class Arrived(BaseModel):
    traveller_id: str
    checkpoint: str
    at: str
    hotel_id: str | None = None


class Departed(BaseModel):
    traveller_id: str
    checkpoint: str | None
    at: str


class ScreeningFailed(BaseModel):
    traveller_id: str
    checkpoint: str
    reasons: list[str]
    at: str | None = None


class ZoneChange(BaseModel):
    traveller_id: str
    zone: str
    zone_name: str
    now_in: str
    lat: float
    lon: float
    accuracy_m: float | None
    at: str


class StillOutside(ZoneChange):
    since: str


class Overdue(BaseModel):
    traveller_id: str
    last_seen_at: str
    overdue_by_s: float


class OverdueCleared(BaseModel):
    traveller_id: str
    last_seen_at: str
    overdue_for_s: float


class Pings(BaseModel):
    """Multi-node mode: pings a node stored, for the traveller's partition owner (fixes: t, lon, lat, accuracy)."""

    traveller_id: str
    received_at: str
    fixes: list[list[float]]


class ZonesChanged(BaseModel):
    zone: str


KINDS: dict[str, type[BaseModel]] = {
    "tracking.arrived": Arrived,
    "tracking.departed": Departed,
    "tracking.screening_failed": ScreeningFailed,
    "tracking.zone_entered": ZoneChange,
    "tracking.zone_left": ZoneChange,
    "tracking.still_outside": StillOutside,
    "tracking.overdue": Overdue,
    "tracking.overdue_cleared": OverdueCleared,
    "tracking.pings": Pings,
    "tracking.zones_changed": ZonesChanged,
}


def register() -> None:
    """Register the payload models (idempotent)."""
    for kind, model in KINDS.items():
        register_event_kind(kind, model)


register()
