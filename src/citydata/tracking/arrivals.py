"""The checkpoint integration's request and answer bodies, and the screening rules."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

CHECKPOINTS = ("HKT", "THA_CHATCHAI", "AO_CHALONG", "RASSADA", "AO_PO")


class TravellerIn(BaseModel):
    """Identity as given by immigration. Encrypted at once; never logged, never on the bus."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    passport_no: str = Field(min_length=3, max_length=30)
    nationality: str = Field(min_length=2, max_length=3, description="ISO 3166-1 alpha-3 (or alpha-2) code.")
    birth_date: date
    phone: str | None = Field(None, max_length=40)

    def __repr__(self) -> str:          # keep identity out of tracebacks and logs
        return "TravellerIn(<redacted>)"

    __str__ = __repr__


class ScreeningIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    health: Literal["pass", "fail", "referred"] = "pass"
    test_result: Literal["negative", "positive", "pending", "not_tested"] = "negative"
    vaccinated: bool | None = None
    goods: Literal["cleared", "declared", "held", "seized"] = "cleared"


class ConsentIn(BaseModel):
    tracking: bool
    at: AwareDatetime | None = None


class ArrivalIn(BaseModel):
    """``POST /api/v1/tracking/arrivals``."""

    checkpoint: str = Field(description="HKT, THA_CHATCHAI, AO_CHALONG, RASSADA or AO_PO.", max_length=20)
    arrived_at: AwareDatetime
    traveller: TravellerIn
    screening: ScreeningIn = Field(default_factory=ScreeningIn)
    hotel_id: str | None = Field(None, max_length=80)
    consent: ConsentIn

    def __repr__(self) -> str:
        return f"ArrivalIn(checkpoint={self.checkpoint!r}, traveller=<redacted>)"

    __str__ = __repr__


class ArrivalOut(BaseModel):
    traveller_id: str
    enrolment_code: str
    screening_failed: list[str] = Field(default_factory=list)


class DepartureIn(BaseModel):
    traveller_id: str = Field(max_length=40)
    checkpoint: str | None = Field(None, max_length=20)
    departed_at: AwareDatetime | None = None


class EnrolIn(BaseModel):
    enrolment_code: str = Field(min_length=6, max_length=64)


class EnrolOut(BaseModel):
    device_token: str
    traveller_id: str
    report_interval_s: int


class ZoneIn(BaseModel):
    """An operator-drawn zone: a GeoJSON Polygon or MultiPolygon in WGS84 lon/lat."""

    name: str = Field(min_length=1, max_length=200)
    geometry: dict[str, object]
    buffer_m: float = Field(0.0, ge=0, le=10_000)
    id: str | None = Field(None, pattern=r"^[a-z0-9_-]{1,60}$", description="Slug; the zone id is zone:<slug>.")


def screening_reasons(screening: ScreeningIn) -> list[str]:
    """Why a screening failed (empty when it passed)."""
    reasons: list[str] = []
    if screening.test_result == "positive":
        reasons.append("test_positive")
    if screening.health == "fail":
        reasons.append("health_declaration_failed")
    if screening.goods in ("held", "seized"):
        reasons.append(f"goods_{screening.goods}")
    return reasons


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
