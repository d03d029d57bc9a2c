"""The permission table: complete, strict about names, and the source of the generated docs."""

from __future__ import annotations

import pytest

from citydata.auth import ANONYMOUS, PERMISSION_TABLE, PERMISSIONS, Principal, Role, allowed, roles_for
from citydata.auth.roles import ROLE_DESCRIPTIONS, permission_table_markdown, permissions_of
from citydata.errors import Forbidden, Unauthorized

REQUIRED = {
    "platform.read", "sensors.read", "sensors.write", "devices.read", "devices.write", "alerts.read",
    "alerts.ack", "incidents.read", "incidents.write", "incidents.dispatch", "cap.issue", "tracking.arrivals",
    "tracking.ping",
    "tracking.read_positions", "tracking.read_identity", "tracking.hotel_guests", "screening.read",
    "vision.watchlist", "analytics.read", "opendata.admin", "tokens.manage", "users.manage",
    "admin.deadletters", "audit.read",
}


def test_role_names_match_the_design() -> None:
    assert {r.value for r in Role} == {
        "admin", "operator", "police", "tourist_police", "marine_police", "health", "immigration", "hotel",
        "analyst", "device", "public"}
    assert set(ROLE_DESCRIPTIONS) == set(Role)


def test_every_required_permission_exists_with_a_description() -> None:
    assert set(PERMISSIONS) >= REQUIRED
    for p in PERMISSION_TABLE:
        assert p.description.strip(), p.name
        assert p.roles, p.name
        assert p.roles <= set(Role)
    assert len({p.name for p in PERMISSION_TABLE}) == len(PERMISSION_TABLE)


def test_every_role_appears_in_the_table() -> None:
    for role in Role:
        assert permissions_of(role), f"{role} holds no permission"
    table = permission_table_markdown()
    header = next(line for line in table.splitlines() if line.startswith("| permission |"))
    for role in Role:
        assert f" {role.value} |" in header


def test_markdown_has_one_row_per_permission_with_marks_matching_the_data() -> None:
    roles = list(Role)
    rows = [line for line in permission_table_markdown().splitlines() if line.startswith("| `")
            and "." in line.split("|")[1]]
    assert len(rows) == len(PERMISSION_TABLE)
    for line, p in zip(rows, PERMISSION_TABLE, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == f"`{p.name}`"
        marks = cells[2:]
        assert len(marks) == len(roles)
        assert {r for r, m in zip(roles, marks, strict=True) if m == "✓"} == p.roles


def test_public_cannot_write_anything() -> None:
    # the one write open to anonymous callers: a tourist's problem report from the public web app
    public_writes = {"reports.submit"}
    writes = [name for name in PERMISSIONS if not name.endswith(".read") and name != "web.pages"]
    assert "sensors.write" in writes and "tracking.ping" in writes
    for name in writes:
        assert allowed(Role.PUBLIC, name) == (name in public_writes), name
    assert permissions_of(Role.PUBLIC) == {"platform.read", "sensors.read", "opendata.read", "web.pages",
                                           "reports.submit"}


def test_spot_checks_from_the_brief() -> None:
    assert roles_for("sensors.write") == {Role.ADMIN, Role.OPERATOR, Role.DEVICE}
    assert roles_for("devices.read") == set(Role) - {Role.PUBLIC}
    assert roles_for("alerts.read") == {Role.ADMIN, Role.OPERATOR, Role.POLICE, Role.TOURIST_POLICE,
                                        Role.MARINE_POLICE, Role.HEALTH}
    assert roles_for("cap.issue") == {Role.ADMIN, Role.OPERATOR}
    assert roles_for("tracking.arrivals") == {Role.ADMIN, Role.IMMIGRATION}
    assert roles_for("tracking.ping") == {Role.DEVICE}
    assert roles_for("tracking.read_identity") == {Role.ADMIN, Role.IMMIGRATION, Role.HEALTH}
    assert roles_for("tracking.hotel_guests") == {Role.HOTEL, Role.ADMIN}
    assert roles_for("screening.read") == {Role.HEALTH, Role.IMMIGRATION, Role.ADMIN}
    assert roles_for("vision.watchlist") == {Role.POLICE, Role.ADMIN}
    assert roles_for("analytics.read") == {Role.ADMIN, Role.OPERATOR, Role.ANALYST}
    assert roles_for("opendata.admin") == {Role.ADMIN, Role.ANALYST}
    for admin_only in ("tokens.manage", "users.manage", "admin.deadletters", "audit.read"):
        assert roles_for(admin_only) == {Role.ADMIN}
    # police roles read identity only through the incident-scoped permission
    for police in (Role.POLICE, Role.TOURIST_POLICE, Role.MARINE_POLICE):
        assert not allowed(police, "tracking.read_identity")
        assert allowed(police, "tracking.read_identity_incident")
        assert allowed(police, "tracking.read_positions")
    assert allowed("device", "sensors.write")
    assert not allowed("hotel", "tracking.read_positions")


def test_unknown_permission_raises() -> None:
    with pytest.raises(KeyError):
        allowed(Role.ADMIN, "sensors.wirte")
    with pytest.raises(KeyError):
        roles_for("nope")
    with pytest.raises(KeyError):
        ANONYMOUS.can("audit.raed")
    with pytest.raises(ValueError):
        allowed("superuser", "sensors.read")


def test_principal_can_and_require() -> None:
    assert ANONYMOUS.role is Role.PUBLIC and ANONYMOUS.kind == "anonymous"
    assert ANONYMOUS.can("sensors.read")
    assert not ANONYMOUS.can("sensors.write")
    with pytest.raises(Unauthorized):
        ANONYMOUS.require("sensors.write")
    hotel = Principal("reception", Role.HOTEL, "user", agency="hotel-42", user_id=7)
    hotel.require("tracking.hotel_guests")
    with pytest.raises(Forbidden):
        hotel.require("tracking.read_identity")
