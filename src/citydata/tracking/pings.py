"""Parsing a ping request: one report or a batch, each item checked on its own.

A bad item (corrupt or future time, coordinates out of range, bad accuracy) is rejected with its index and a
code; the rest of the batch is kept. The body is parsed by hand rather than by one pydantic model so that one
corrupt item never fails the whole request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from citydata.errors import ValidationFailed

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
SOURCES = frozenset({"gps", "network", "fused", "manual", "sim"})
FLAG_TOO_FAST, FLAG_TOO_LATE = 1, 2     # tracking_pings.flags: stored, but not taken by the geofence


class PingIn(BaseModel):
    """One location report (for the OpenAPI documentation; items are validated one by one)."""

    t: datetime = Field(description="Fix time, ISO 8601 with a UTC offset.")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="Radius of the accuracy circle (m).")
    battery: float | None = Field(None, ge=0, le=100, description="Battery level in percent.")
    source: str | None = Field(None, description="gps, network, fused, manual.")


class PingBatchIn(BaseModel):
    pings: list[PingIn] = Field(description="One or more reports, in any order (phones buffer offline).")


class Rejection(BaseModel):
    index: int
    code: str
    detail: str


class PingsAccepted(BaseModel):
    accepted: int
    rejected: list[Rejection]
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class PingItem:
    index: int
    t: datetime
    lat: float
    lon: float
    accuracy_m: float | None
    battery: float | None
    source: str | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.astimezone(UTC)


def parse_item(index: int, raw: Any, now: datetime, skew_s: float) -> PingItem | Rejection:
    if not isinstance(raw, dict):
        return Rejection(index=index, code="invalid_ping", detail="a ping is an object")
    t = parse_time(raw.get("t"))
    if t is None:
        return Rejection(index=index, code="invalid_time",
                         detail="t must be an ISO 8601 time with a UTC offset")
    if t < EARLIEST:
        return Rejection(index=index, code="invalid_time", detail="t is not a plausible fix time (corrupt clock)")
    if t > now + timedelta(seconds=skew_s):
        return Rejection(index=index, code="time_in_future",
                         detail=f"t is more than {int(skew_s)} s in the future")
    lat, lon = _number(raw.get("lat")), _number(raw.get("lon"))
    if lat is None or lon is None or not -90 <= lat <= 90 or not -180 <= lon <= 180:
        return Rejection(index=index, code="coordinates_out_of_range",
                         detail="lat must be -90..90 and lon -180..180")
    acc: float | None = None
    if raw.get("accuracy_m") is not None:
        acc = _number(raw.get("accuracy_m"))
        if acc is None or not 0 <= acc <= 100_000:
            return Rejection(index=index, code="invalid_accuracy", detail="accuracy_m must be 0..100000")
    battery: float | None = None
    if raw.get("battery") is not None:
        battery = _number(raw.get("battery"))
        if battery is None or not 0 <= battery <= 100:
            return Rejection(index=index, code="invalid_battery", detail="battery must be 0..100")
    source = raw.get("source")
    if source is not None and (not isinstance(source, str) or source not in SOURCES):
        return Rejection(index=index, code="invalid_source", detail=f"source must be one of {sorted(SOURCES)}")
    return PingItem(index, t, lat, lon, acc, battery, source)


def parse_batch(body: Any, now: datetime, *, skew_s: float, max_batch: int) -> tuple[list[PingItem],
                                                                                      list[Rejection]]:
    """Items and rejections of a request body: ``{"pings": [...]}`` or a single ping object."""
    if isinstance(body, dict) and "pings" in body:
        raw = body["pings"]
        if not isinstance(raw, list):
            raise ValidationFailed("pings must be a list", code="invalid_body")
    elif isinstance(body, dict) and "t" in body:
        raw = [body]
    else:
        raise ValidationFailed('the body is {"pings": [...]} or one ping object', code="invalid_body")
    if not raw:
        raise ValidationFailed("no pings given", code="empty_batch")
    if len(raw) > max_batch:
        raise ValidationFailed(f"at most {max_batch} pings per request", code="batch_too_large")
    items: list[PingItem] = []
    rejected: list[Rejection] = []
    for i, item in enumerate(raw):
        parsed = parse_item(i, item, now, skew_s)
        (rejected if isinstance(parsed, Rejection) else items).append(parsed)  # type: ignore[arg-type]
    return items, rejected
