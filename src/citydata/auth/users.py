"""Staff accounts: create, authenticate, change password, disable.

Usernames are case-insensitive (stored lower-case): 3 to 100 letters, digits, ``.``, ``_``, ``-``, ``@``.
Passwords are argon2id hashes; hashing runs in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.auth.passwords import (
    MIN_LENGTH,
    check_password_policy,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from citydata.auth.principal import Principal
from citydata.auth.roles import Role
from citydata.clock import Clock
from citydata.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from citydata.store import Store
from citydata.store.schema import users

log = logging.getLogger(__name__)

ADMIN_USERNAME = "admin"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,99}$")


def normalize_username(username: str) -> str:
    """The stored form of ``username`` (lower-case); ``ValidationFailed`` when it is not acceptable."""
    name = (username or "").strip().lower()
    if not _USERNAME.fullmatch(name):
        raise ValidationFailed("a username is 3 to 100 letters, digits, '.', '_', '-' or '@', starting "
                               "with a letter or digit", code="invalid_username")
    return name


def _bad_credentials() -> Unauthorized:
    return Unauthorized("wrong username or password", code="bad_credentials")


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationFailed(f"unknown role {role!r}", code="invalid_role") from None


class UserService:
    """Staff accounts backed by the ``users`` table."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def create(self, username: str, password: str, role: Role | str, *, agency: str | None = None,
                     display_name: str | None = None) -> int:
        """Create a user; returns its id. Password policy checked; ``Conflict`` when the username is taken."""
        name = normalize_username(username)
        role = _role(role)
        if role is Role.PUBLIC:
            raise ValidationFailed("a user account cannot have the public role", code="invalid_role")
        check_password_policy(password, name)
        return await self._insert(name, password, role, agency, display_name)

    async def _insert(self, name: str, password: str, role: Role, agency: str | None,
                      display_name: str | None) -> int:
        if agency is not None and len(agency) > 80:
            raise ValidationFailed("agency is at most 80 characters", code="invalid_agency")
        if display_name is not None and len(display_name) > 200:
            raise ValidationFailed("display name is at most 200 characters", code="invalid_display_name")
        password_hash = await asyncio.to_thread(hash_password, password)
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> int:
            taken = (await conn.execute(select(users.c.id).where(users.c.username == name))).first()
            if taken is not None:
                raise Conflict("username already taken", code="username_taken")
            result = await conn.execute(users.insert().values(
                username=name, password_hash=password_hash, role=role.value, agency=agency,
                display_name=display_name, disabled=False, created_at=now, password_changed_at=now))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

        user_id: int = await self.store.write(op)
        log.info("user %d created (role %s)", user_id, role.value)
        return user_id

    async def authenticate(self, username: str, password: str) -> Principal:
        """The principal of a user whose password matches. Unknown user, wrong password and disabled account
        all raise the same ``Unauthorized(code="bad_credentials")`` after about the same work."""
        try:
            name = normalize_username(username)
        except ValidationFailed:
            name = ""
        row = await self.store.fetch_one(select(users).where(users.c.username == name)) if name else None
        stored = str(row["password_hash"]) if row is not None else dummy_hash()
        ok = await asyncio.to_thread(verify_password, stored, password)
        if row is None or not ok or row["disabled"]:
            raise _bad_credentials()
        try:
            role = Role(row["role"])
        except ValueError:
            log.error("user %d has an unknown role; login refused", row["id"])
            raise _bad_credentials() from None
        if needs_rehash(stored):
            await self._store_hash(name, await asyncio.to_thread(hash_password, password), changed=False)
        return Principal(name, role, "user", agency=row["agency"], user_id=int(row["id"]))

    async def ensure_admin(self, password: str) -> bool:
        """Create the user ``admin`` (role admin) unless an admin user exists; True when created. The password
        (typically generated at first start) needs at least 12 characters but not the full policy."""
        if len(password) < MIN_LENGTH:
            raise ValidationFailed(f"the admin password needs at least {MIN_LENGTH} characters",
                                   code="weak_password")
        exists = await self.store.scalar(select(func.count()).select_from(users)
                                         .where(users.c.role == Role.ADMIN.value))
        if exists:
            return False
        try:
            await self._insert(ADMIN_USERNAME, password, Role.ADMIN, None, "Administrator")
        except Conflict:
            # another process won the race, or a non-admin user is called "admin"
            again = await self.store.scalar(select(func.count()).select_from(users)
                                            .where(users.c.role == Role.ADMIN.value))
            if again:
                return False
            raise Conflict("a user called 'admin' exists without the admin role",
                           code="username_taken") from None
        return True

    async def set_password(self, username: str, new: str) -> None:
        """Change a user's password (policy checked); ``NotFound`` for an unknown user."""
        name = normalize_username(username)
        check_password_policy(new, name)
        await self._store_hash(name, await asyncio.to_thread(hash_password, new), changed=True)

    async def _store_hash(self, name: str, password_hash: str, *, changed: bool) -> None:
        values: dict[str, Any] = {"password_hash": password_hash}
        if changed:
            values["password_changed_at"] = self.clock.now()
        await self._update(name, values)

    async def _update(self, name: str, values: dict[str, Any]) -> None:
        async def op(conn: AsyncConnection) -> int:
            return int((await conn.execute(users.update().where(users.c.username == name)
                                           .values(**values))).rowcount)

        if not await self.store.write(op):
            raise NotFound("no such user", code="user_not_found")

    async def disable(self, username: str) -> None:
        """Disable a user: no more logins (sessions already issued live until they expire)."""
        await self._update(normalize_username(username), {"disabled": True})
        log.info("a user was disabled")

    async def enable(self, username: str) -> None:
        await self._update(normalize_username(username), {"disabled": False})

    _PUBLIC = [c for c in users.c if c.name != "password_hash"]

    async def get(self, username: str) -> dict[str, Any]:
        """One user's fields (never the hash); ``NotFound`` when unknown."""
        row = await self.store.fetch_one(select(*self._PUBLIC)
                                         .where(users.c.username == normalize_username(username)))
        if row is None:
            raise NotFound("no such user", code="user_not_found")
        return dict(row)

    async def list(self) -> builtins.list[dict[str, Any]]:
        """Every user's fields, ordered by username; never the password hashes."""
        rows = await self.store.fetch_all(select(*self._PUBLIC).order_by(users.c.username))
        return [dict(r) for r in rows]
