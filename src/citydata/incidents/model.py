"""Incidents as data: states, the transition table, priorities with their SLA, the default agencies, and who
may see what (agency scoping and alert kinds that need more than ``alerts.read``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from citydata.auth import Principal, Role


class State(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Transition:
    """One allowed move. ``permission`` is what the caller needs; ``reason_required`` for cancellations."""

    source: State
    target: State
    permission: str
    reason_required: bool = False


_W, _D = "incidents.write", "incidents.dispatch"
TRANSITIONS: tuple[Transition, ...] = (
    Transition(State.NEW, State.ACKNOWLEDGED, _W),
    Transition(State.NEW, State.DISPATCHED, _D),
    Transition(State.NEW, State.CLOSED, _D, reason_required=True),           # false alarm, duplicate
    Transition(State.ACKNOWLEDGED, State.DISPATCHED, _D),
    Transition(State.ACKNOWLEDGED, State.RESOLVED, _W),                      # handled without dispatch
    Transition(State.ACKNOWLEDGED, State.CLOSED, _D, reason_required=True),
    Transition(State.DISPATCHED, State.ON_SCENE, _W),
    Transition(State.DISPATCHED, State.RESOLVED, _W),
    Transition(State.ON_SCENE, State.RESOLVED, _W),
    Transition(State.RESOLVED, State.CLOSED, _D),
    Transition(State.RESOLVED, State.DISPATCHED, _D, reason_required=True),  # reopened
)
TRANSITION_MAP: dict[tuple[State, State], Transition] = {(t.source, t.target): t for t in TRANSITIONS}
# States an incident may be (re)dispatched in: dispatching in "dispatched" or "on_scene" adds an agency.
DISPATCHABLE: frozenset[State] = frozenset({State.NEW, State.ACKNOWLEDGED, State.DISPATCHED, State.ON_SCENE,
                                            State.RESOLVED})
ACK_MET: frozenset[State] = frozenset(State) - {State.NEW}
SCENE_MET: frozenset[State] = frozenset({State.ON_SCENE, State.RESOLVED, State.CLOSED})
OPEN_STATES: frozenset[State] = frozenset(State) - {State.RESOLVED, State.CLOSED}


def transition(source: State | str, target: State | str) -> Transition | None:
    return TRANSITION_MAP.get((State(source), State(target)))


@dataclass(frozen=True, slots=True)
class Priority:
    """A priority and its service levels: minutes from creation to acknowledgement and to on scene."""

    name: str
    description: str
    ack_min: int
    scene_min: int


PRIORITIES: dict[str, Priority] = {p.name: p for p in (
    Priority("P1", "Life at risk now", 15, 60),
    Priority("P2", "Urgent, risk of harm", 30, 120),
    Priority("P3", "Needs a response today", 120, 480),
    Priority("P4", "Routine", 480, 2880),
)}


def normalise_priority(value: str | int) -> str:
    """``1`` / ``"1"`` / ``"p1"`` / ``"P1"`` → ``"P1"``; ``ValueError`` otherwise."""
    text = str(value).strip().upper()
    name = text if text.startswith("P") else f"P{text}"
    if name not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
    return name


@dataclass(frozen=True, slots=True)
class AgencyDefault:
    id: str
    name: str
    name_th: str


DEFAULT_AGENCIES: tuple[AgencyDefault, ...] = (
    AgencyDefault("police", "Provincial Police", "ตำรวจภูธรจังหวัด"),
    AgencyDefault("tourist_police", "Tourist Police", "ตำรวจท่องเที่ยว"),
    AgencyDefault("marine_police", "Marine Police", "ตำรวจน้ำ"),
    AgencyDefault("hospital", "Hospital emergency services", "โรงพยาบาล"),
    AgencyDefault("hotel", "Hotels association", "สมาคมโรงแรม"),
    AgencyDefault("municipality", "Municipality", "เทศบาล"),
    AgencyDefault("health", "Provincial Health Office", "สำนักงานสาธารณสุขจังหวัด"),
    AgencyDefault("immigration", "Immigration", "ตรวจคนเข้าเมือง"),
    AgencyDefault("customs", "Customs", "ศุลกากร"),
)

# Roles whose members act for one agency: they see only incidents assigned to it.
AGENCY_ROLES: frozenset[Role] = frozenset({Role.POLICE, Role.TOURIST_POLICE, Role.MARINE_POLICE, Role.HEALTH,
                                           Role.HOTEL})


def agency_scope(principal: Principal) -> str | None:
    """The agency a caller is limited to, or None for callers who see every incident (admin, operator).

    A member of an agency role sees the incidents assigned to its ``agency``; without one, to the agency
    named like its role (a ``tourist_police`` token sees ``tourist_police``'s incidents): never everything."""
    if principal.role not in AGENCY_ROLES:
        return None
    return principal.agency or principal.role.value


# Alert kinds (by their first token) that need a permission besides alerts.read, because they are about people.
ALERT_KIND_PERMISSIONS: dict[str, str] = {
    "tracking": "tracking.read_positions",
    "vision": "vision.watchlist",
}


def may_see_alert_kind(principal: Principal, kind: str) -> bool:
    extra = ALERT_KIND_PERMISSIONS.get(kind.split(".", 1)[0])
    return principal.can("alerts.read") and (extra is None or principal.can(extra))


def hidden_alert_prefixes(principal: Principal) -> list[str]:
    """Kind prefixes (``tracking.``) this caller may not see."""
    return [f"{prefix}." for prefix, perm in ALERT_KIND_PERMISSIONS.items() if not principal.can(perm)]
