"""Typed events: the facts that flow on the bus.

Every event has a dotted ``kind`` (``observation.received``, ``device.heartbeat`` ...), a partition ``key``
(the datastream, device or traveller it is about; per-key order is kept), a timezone-aware ``time`` and a
``data`` payload. Kinds with a registered payload model are validated when the event is made, so a typo in a
producer fails at the producer, not in a consumer three hops away.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from citydata.errors import ValidationFailed


class Event(BaseModel):
    """One typed fact on the bus."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
    key: str = Field(min_length=1, max_length=200)
    time: AwareDatetime
    data: dict[str, Any] = Field(default_factory=dict)
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    source: str = "citydata"

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Event:
        return cls.model_validate(orjson.loads(raw))


# -- payload models of the kinds the platform itself produces ------------------------------------------------

class DeviceRegistered(BaseModel):
    device_id: str
    kind: str
    name: str
    lat: float | None = None
    lon: float | None = None
    agency: str | None = None


class DeviceHeartbeat(BaseModel):
    device_id: str
    battery: float | None = None
    rssi: float | None = None
    status: str = "ok"


class ObservationReceived(BaseModel):
    datastream_id: int
    phenomenon_time: str
    result: Any
    observation_id: int | None = None


EVENT_SCHEMAS: dict[str, type[BaseModel]] = {
    "device.registered": DeviceRegistered,
    "device.heartbeat": DeviceHeartbeat,
    "observation.received": ObservationReceived,
}


def register_event_kind(kind: str, schema: type[BaseModel]) -> None:
    """Let a capability declare the payload of a kind it produces."""
    EVENT_SCHEMAS[kind] = schema


def make_event(kind: str, key: str, time: datetime, data: dict[str, Any] | BaseModel,
               source: str = "citydata") -> Event:
    """Build an event, validating the payload against the kind's registered model when there is one."""
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else dict(data)
    schema = EVENT_SCHEMAS.get(kind)
    if schema is not None:
        try:
            payload = schema.model_validate(payload).model_dump(mode="json")
        except ValidationError as err:
            raise ValidationFailed(f"event {kind}: {err.errors()[0]['msg']} at "
                                   f"{'.'.join(map(str, err.errors()[0]['loc']))}") from err
    try:
        return Event(kind=kind, key=key, time=time, data=payload, source=source)
    except ValidationError as err:
        raise ValidationFailed(f"event {kind}: {err.errors()[0]['msg']}") from err


def kind_matches(pattern: str, kind: str) -> bool:
    """NATS-style matching on dotted kinds: ``*`` is one token, ``>`` the rest (one token or more)."""
    if pattern in (">", kind):
        return True
    p_tokens = pattern.split(".")
    k_tokens = kind.split(".")
    for i, token in enumerate(p_tokens):
        if token == ">":
            return len(k_tokens) > i
        if i >= len(k_tokens):
            return False
        if token != "*" and token != k_tokens[i]:
            return False
    return len(p_tokens) == len(k_tokens)
