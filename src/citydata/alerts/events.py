"""The payloads of the IOC's bus events (see docs/ioc.md and the rules/alerts contract).

Producers (the rules engine, the tourist app's problem reports ...) publish ``alert.raised``, ``alert.cleared``
and ``cap.draft_requested`` durably; the alerts service consumes them. ``register_ioc_events()`` registers the
models so ``make_event`` validates these kinds at the producer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from citydata.events import register_event_kind

Severity = Literal["minor", "moderate", "severe", "extreme"]
Urgency = Literal["immediate", "expected", "future", "past", "unknown"]
Certainty = Literal["observed", "likely", "possible", "unlikely", "unknown"]
Category = Literal["Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
                   "CBRNE", "Other"]
CAP_CATEGORIES: tuple[str, ...] = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
                                   "Transport", "Infra", "CBRNE", "Other")
SEVERITY_RANK: dict[str, int] = {"minor": 1, "moderate": 2, "severe": 3, "extreme": 4}
MAX_EVIDENCE = 20
KIND_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"


class Evidence(BaseModel):
    """One observation or event that made a rule fire."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(max_length=100)
    id: str = Field(max_length=200)
    time: AwareDatetime
    summary: dict[str, Any] = Field(default_factory=dict)


class AlertRaised(BaseModel):
    """``alert.raised``: a rule fired (or its evidence was updated while it stays active). Key: dedup_key."""

    dedup_key: str = Field(min_length=1, max_length=300)
    kind: str = Field(pattern=KIND_PATTERN, max_length=100)
    severity: Severity
    category: Category
    urgency: Urgency = "unknown"
    certainty: Certainty = "unknown"
    subject: str = Field(min_length=1, max_length=300)
    message: str = Field(min_length=1, max_length=4000)
    message_th: str | None = Field(None, max_length=4000)
    location: dict[str, Any] | None = None
    zone_id: str | None = Field(None, max_length=80)
    evidence: list[Evidence] = Field(default_factory=list, max_length=MAX_EVIDENCE)
    rule_id: str = Field("", max_length=200)
    rule_version: int = 0
    data: dict[str, Any] = Field(default_factory=dict)
    observed_at: AwareDatetime
    # The firing episode (a producer that can name it: the rules engine) and this raise's revision in it (0
    # the raise, n the n-th update). An episode is stored once: a raise of a stored episode never opens another
    # alert, and a revision at or below the stored one changes nothing (a duplicate or a stale redelivery).
    episode: str | None = Field(None, min_length=1, max_length=120)
    revision: int | None = Field(None, ge=0)


class AlertCleared(BaseModel):
    """``alert.cleared``: the condition behind an active alert ended. Key: dedup_key."""

    dedup_key: str = Field(min_length=1, max_length=300)
    rule_id: str = Field("", max_length=200)
    reason: str = Field("", max_length=500)
    observed_at: AwareDatetime
    episode: str | None = Field(None, min_length=1, max_length=120)   # clears only that episode's alert


class CapDraftRequested(BaseModel):
    """``cap.draft_requested``: a rule asks for a CAP warning that an operator must approve. Key:
    ``rule_id:dedup_key``."""

    dedup_key: str = Field(min_length=1, max_length=300)
    event: str = Field(min_length=1, max_length=200)
    category: Category
    severity: Severity
    urgency: Urgency = "expected"
    certainty: Certainty = "likely"
    headline_en: str = Field(min_length=1, max_length=300)
    headline_th: str | None = Field(None, max_length=300)
    description_en: str = Field("", max_length=4000)
    description_th: str | None = Field(None, max_length=4000)
    instruction_en: str | None = Field(None, max_length=4000)
    instruction_th: str | None = Field(None, max_length=4000)
    area_desc: str = Field(min_length=1, max_length=500)
    area_place_ids: list[str] = Field(default_factory=list, max_length=100)
    polygon: dict[str, Any] | None = None


def register_ioc_events() -> None:
    """Declare the payload models of the IOC's input kinds (idempotent)."""
    register_event_kind("alert.raised", AlertRaised)
    register_event_kind("alert.cleared", AlertCleared)
    register_event_kind("cap.draft_requested", CapDraftRequested)


register_ioc_events()
