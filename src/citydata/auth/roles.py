"""Roles and what each may do, as data.

One table (``PERMISSION_TABLE``) of named permissions, each with a one-line description and the roles that
hold it. ``PERMISSIONS`` is derived from it; ``docs/roles.md`` and the authorization tests are generated
from it.
Checks go through ``allowed(role, permission)``, which raises ``KeyError`` on an unknown permission name so a
typo in a route fails loudly instead of silently denying (or granting) access.

Some permissions are only the first gate: the service behind them narrows further (for example
``tracking.read_identity_incident`` lets police roles read identities only for travellers linked to an
incident assigned to them; the tracking service checks the assignment).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Every role of the platform. ``public`` is the anonymous caller."""

    ADMIN = "admin"
    OPERATOR = "operator"
    POLICE = "police"
    TOURIST_POLICE = "tourist_police"
    MARINE_POLICE = "marine_police"
    HEALTH = "health"
    IMMIGRATION = "immigration"
    HOTEL = "hotel"
    ANALYST = "analyst"
    DEVICE = "device"
    PUBLIC = "public"


ROLE_DESCRIPTIONS: dict[Role, str] = {
    Role.ADMIN: "Platform administrators: users, tokens, audit, configuration.",
    Role.OPERATOR: "Intelligent Operations Center (IOC) staff: alerts, incidents, dispatch, warnings.",
    Role.POLICE: "Provincial police.",
    Role.TOURIST_POLICE: "Tourist police.",
    Role.MARINE_POLICE: "Marine police.",
    Role.HEALTH: "Provincial health office: alerts, incidents, health screening.",
    Role.IMMIGRATION: "Immigration: arrivals at the checkpoints, traveller identity.",
    Role.HOTEL: "Hotels and accommodation: their own guests' stays.",
    Role.ANALYST: "Analysts: aggregates, analytics and open-data publishing.",
    Role.DEVICE: "Machines: sensors, gateways, checkpoint systems and the tourist app backend.",
    Role.PUBLIC: "Anonymous callers.",
}

ALL_ROLES: frozenset[Role] = frozenset(Role)
STAFF: frozenset[Role] = ALL_ROLES - {Role.PUBLIC}
POLICE_ROLES: frozenset[Role] = frozenset({Role.POLICE, Role.TOURIST_POLICE, Role.MARINE_POLICE})
RESPONDERS: frozenset[Role] = frozenset({Role.ADMIN, Role.OPERATOR, Role.HEALTH}) | POLICE_ROLES


@dataclass(frozen=True, slots=True)
class Permission:
    """One named permission: what it allows, and which roles hold it."""

    name: str
    description: str
    roles: frozenset[Role]


def _p(name: str, description: str, *roles: Role | frozenset[Role]) -> Permission:
    members: set[Role] = set()
    for r in roles:
        members |= r if isinstance(r, frozenset) else {r}
    return Permission(name, description, frozenset(members))


_A, _O, _D = Role.ADMIN, Role.OPERATOR, Role.DEVICE

PERMISSION_TABLE: tuple[Permission, ...] = (
    _p("platform.read", "Read public platform information (health, catalogue, reference places).", ALL_ROLES),
    _p("sensors.read", "Read sensors, datastreams and observations (SensorThings API).", ALL_ROLES),
    _p("sensors.write", "Create observations and sensor entities.", _A, _O, _D),
    _p("devices.read", "Read the device registry and device status.", STAFF),
    _p("devices.write", "Register devices, update them, send heartbeats.", _A, _O, _D),
    _p("alerts.read", "Read alerts and the live alert stream.", RESPONDERS),
    _p("alerts.ack", "Acknowledge alerts.", RESPONDERS),
    _p("incidents.read", "Read incidents.", RESPONDERS),
    _p("incidents.write", "Open and update incidents (notes, status).", RESPONDERS),
    _p("incidents.dispatch", "Assign incidents to agencies and dispatch responders.", _A, _O),
    _p("cap.issue", "Issue, update and cancel CAP public warnings.", _A, _O),
    _p("rules.read", "Read alert rules.", _A, _O, Role.ANALYST),
    _p("rules.write", "Create, change and disable alert rules.", _A, _O),
    _p("tracking.arrivals", "Register traveller arrivals at checkpoints.", _A, Role.IMMIGRATION),
    _p("tracking.ping", "Report traveller location pings.", _D),
    _p("tracking.read_positions", "Read travellers' last known positions (pseudonymous).",
       _A, _O, POLICE_ROLES),
    _p("tracking.read_identity", "Read traveller identity (name, passport, phone); every read audited.",
       _A, Role.IMMIGRATION, Role.HEALTH),
    _p("tracking.read_identity_incident", "Read the identity of travellers linked to an incident assigned to "
       "the caller's agency; the assignment is checked by the service; every read audited.", POLICE_ROLES),
    _p("tracking.hotel_guests", "Register and read the caller's own hotel guests.", Role.HOTEL, _A),
    _p("screening.read", "Read health screening results.", Role.HEALTH, Role.IMMIGRATION, _A),
    _p("vision.watchlist", "Manage watchlists and read face/plate matches; every read audited.",
       Role.POLICE, _A),
    _p("vision.review", "Mark CCTV watchlist hits as wrong or confirmed (a wrong hit becomes a negative sample).",
       _A, _O, POLICE_ROLES),
    _p("vision.hotlist", "Manage the licence-plate hotlist and read hotlist hits; changes audited.", _A, POLICE_ROLES),
    _p("cameras.read", "Read the camera registry, camera status and CCTV analytics counters.",
       _A, _O, POLICE_ROLES, Role.ANALYST),
    _p("cameras.write", "Register cameras and change their streams, analytics, privacy masks and lines.", _A, _O),
    _p("cameras.frames", "Push camera frames, traffic-signal states and vendor analytics events.", _A, _O, _D),
    _p("wifi.read", "Read WiFi footfall aggregates.", _A, _O, Role.ANALYST),
    _p("wifi.ingest", "Send WiFi session events (RADIUS accounting, association logs).", _A, _D),
    _p("wifi.hotspots", "Read the WiFi hotspot registry (no footfall).", STAFF),
    _p("wifi.manage", "Create and update WiFi hotspots.", _A, _D),
    _p("analytics.read", "Run analytics queries and exports.", _A, _O, Role.ANALYST),
    _p("opendata.read", "Read published open datasets (aggregates only).", ALL_ROLES),
    _p("opendata.admin", "Publish open datasets and manage open-data keys.", _A, Role.ANALYST),
    _p("tokens.manage", "Create, list and revoke API tokens.", _A),
    _p("users.manage", "Create, disable and change users.", _A),
    _p("admin.deadletters", "Inspect and replay dead letters.", _A),
    _p("audit.read", "Read the audit log.", _A),
    _p("reports.submit", "Send a problem report from the tourist app and follow it up by its code.", ALL_ROLES),
    _p("reports.read", "Read tourist problem reports (text and photo; every read audited).", RESPONDERS),
    _p("web.pages", "Load the IOC dashboard and tourist app pages and their assets (never data).", ALL_ROLES),
)

PERMISSIONS: dict[str, frozenset[Role]] = {p.name: p.roles for p in PERMISSION_TABLE}
DESCRIPTIONS: dict[str, str] = {p.name: p.description for p in PERMISSION_TABLE}
if len(PERMISSIONS) != len(PERMISSION_TABLE):  # pragma: no cover - guards edits of the table
    raise RuntimeError("duplicate permission name in PERMISSION_TABLE")


def to_role(role: Role | str) -> Role:
    """``role`` as a ``Role``; raises ``ValueError`` for an unknown name."""
    return role if isinstance(role, Role) else Role(role)


def roles_for(permission: str) -> frozenset[Role]:
    """The roles holding ``permission``; raises ``KeyError`` for an unknown permission."""
    try:
        return PERMISSIONS[permission]
    except KeyError:
        raise KeyError(f"unknown permission {permission!r}") from None


def allowed(role: Role | str, permission: str) -> bool:
    """Whether ``role`` holds ``permission``. Unknown permission: ``KeyError``; unknown role: ``ValueError``.
    """
    return to_role(role) in roles_for(permission)


def permissions_of(role: Role | str) -> frozenset[str]:
    """Every permission ``role`` holds."""
    r = to_role(role)
    return frozenset(p.name for p in PERMISSION_TABLE if r in p.roles)


def permission_table_markdown() -> str:
    """The roles and permission tables as Markdown (the body of ``docs/roles.md``)."""
    roles = list(Role)
    lines = [
        "# Roles and permissions",
        "",
        "Generated from `citydata.auth.roles.PERMISSION_TABLE`; do not edit by hand.",
        "",
        "## Roles",
        "",
        "| role | who |",
        "| --- | --- |",
    ]
    lines += [f"| `{r.value}` | {ROLE_DESCRIPTIONS[r]} |" for r in roles]
    lines += [
        "",
        "## Permissions",
        "",
        "| permission | what it allows | " + " | ".join(r.value for r in roles) + " |",
        "| --- | --- | " + " | ".join(":-:" for _ in roles) + " |",
    ]
    for p in PERMISSION_TABLE:
        marks = " | ".join("✓" if r in p.roles else "" for r in roles)
        lines.append(f"| `{p.name}` | {p.description} | {marks} |")
    return "\n".join(lines) + "\n"
