"""Who is calling: a user, an API token, or nobody (``ANONYMOUS``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from citydata.auth.roles import Role, allowed
from citydata.errors import Forbidden, Unauthorized

PrincipalKind = Literal["user", "token", "anonymous"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. ``subject`` is what the audit log records as the actor: the username for a
    user, ``token:<token id>`` for an API token, ``anonymous`` for nobody."""

    subject: str
    role: Role
    kind: PrincipalKind
    agency: str | None = None
    token_id: str | None = None
    device_id: str | None = None
    user_id: int | None = None

    def can(self, permission: str) -> bool:
        """Whether this caller holds ``permission`` (``KeyError`` for an unknown permission name)."""
        return allowed(self.role, permission)

    def require(self, permission: str) -> None:
        """Raise unless this caller holds ``permission``: ``Unauthorized`` for an anonymous caller (logging in
        may help), ``Forbidden`` otherwise."""
        if self.can(permission):
            return
        if self.kind == "anonymous":
            raise Unauthorized("authentication required", code="unauthorized")
        raise Forbidden(f"role {self.role.value!r} may not do {permission!r}", code="forbidden")

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"


ANONYMOUS = Principal("anonymous", Role.PUBLIC, "anonymous")
