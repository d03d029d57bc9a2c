"""User accounts on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from citydata.auth import Role, UserService, verify_password
from citydata.clock import DrivenClock
from citydata.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from citydata.store.schema import users

GOOD = "Kata-Noi-beach-7"


async def test_create_and_authenticate(store: Any, clock: DrivenClock) -> None:
    svc = UserService(store, clock)
    uid = await svc.create("Somchai", GOOD, Role.TOURIST_POLICE, agency="patong", display_name="Somchai K.")
    p = await svc.authenticate("somchai", GOOD)
    assert (p.subject, p.role, p.kind, p.agency, p.user_id) == ("somchai", Role.TOURIST_POLICE, "user",
                                                                "patong", uid)
    assert (await svc.authenticate(" SOMCHAI ", GOOD)).user_id == uid
    listed = await svc.list()
    assert [u["username"] for u in listed] == ["somchai"]
    assert "password_hash" not in listed[0] and listed[0]["disabled"] is False
    stored = await store.scalar(select(users.c.password_hash))
    assert GOOD not in stored and verify_password(stored, GOOD)


async def test_duplicate_username_conflicts(store: Any, clock: DrivenClock) -> None:
    svc = UserService(store, clock)
    await svc.create("nurse.a", GOOD, "health")
    with pytest.raises(Conflict):
        await svc.create("Nurse.A", GOOD + "x", "health")


async def test_policy_and_validation_on_create(store: Any, clock: DrivenClock) -> None:
    svc = UserService(store, clock)
    with pytest.raises(ValidationFailed) as info:
        await svc.create("alice", "short", Role.OPERATOR)
    assert info.value.code == "weak_password"
    with pytest.raises(ValidationFailed) as info:
        await svc.create("alice", "Alice-at-the-IOC-9", Role.OPERATOR)
    assert info.value.code == "weak_password"
    with pytest.raises(ValidationFailed) as info:
        await svc.create("a b", GOOD, Role.OPERATOR)
    assert info.value.code == "invalid_username"
    with pytest.raises(ValidationFailed) as info:
        await svc.create("bob", GOOD, "wizard")
    assert info.value.code == "invalid_role"
    with pytest.raises(ValidationFailed):
        await svc.create("bob", GOOD, Role.PUBLIC)
    assert await svc.list() == []


async def test_failures_give_the_same_error(store: Any, clock: DrivenClock) -> None:
    svc = UserService(store, clock)
    await svc.create("clerk", GOOD, Role.HOTEL, agency="hotel-1")
    await svc.create("former", GOOD, Role.HOTEL)
    await svc.disable("former")
    errors = []
    for username, password in [("clerk", GOOD + "!"), ("clerk", ""), ("nobody", GOOD), ("", GOOD),
                               ("x" * 500, GOOD), ("former", GOOD)]:
        with pytest.raises(Unauthorized) as info:
            await svc.authenticate(username, password)
        errors.append((info.value.code, info.value.message, info.value.status))
    assert len(set(errors)) == 1 and errors[0][0] == "bad_credentials"
    await svc.enable("former")
    assert (await svc.authenticate("former", GOOD)).subject == "former"


async def test_set_password_and_disable(store: Any, clock: DrivenClock) -> None:
    svc = UserService(store, clock)
    await svc.create("ops1", GOOD, Role.OPERATOR)
    created = (await svc.get("ops1"))["password_changed_at"]
    clock.advance(3600)
    with pytest.raises(ValidationFailed):
        await svc.set_password("ops1", "weak")
    await svc.set_password("ops1", "New-secret-phrase-8")
    changed = (await svc.get("ops1"))["password_changed_at"]
    assert changed == clock.now() and changed != created
    with pytest.raises(Unauthorized):
        await svc.authenticate("ops1", GOOD)
    await svc.authenticate("ops1", "New-secret-phrase-8")
    with pytest.raises(NotFound):
        await svc.set_password("ghost", "New-secret-phrase-8")
    with pytest.raises(NotFound):
        await svc.disable("ghost")


async def test_rehash_on_login_when_parameters_changed(store: Any, clock: DrivenClock) -> None:
    svc = UserService(store, clock)
    await svc.create("analyst1", GOOD, Role.ANALYST)
    old = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(GOOD)
    await store.execute(users.update().where(users.c.username == "analyst1").values(password_hash=old))
    await svc.authenticate("analyst1", GOOD)
    new = await store.scalar(select(users.c.password_hash).where(users.c.username == "analyst1"))
    assert new != old and "m=65536" in new and verify_password(new, GOOD)


async def test_ensure_admin(store: Any, clock: DrivenClock) -> None:
    svc = UserService(store, clock)
    with pytest.raises(ValidationFailed):
        await svc.ensure_admin("short")
    generated = "aaaaaaaaaaaaaaaa"          # 16 chars: accepted here even though the policy would refuse it
    assert await svc.ensure_admin(generated) is True
    p = await svc.authenticate("admin", generated)
    assert p.role is Role.ADMIN and p.can("users.manage")
    assert await svc.ensure_admin("another-password-1") is False
    await svc.authenticate("admin", generated)     # unchanged
    assert [u["username"] for u in await svc.list()] == ["admin"]


async def test_ensure_admin_skips_when_another_admin_exists(store: Any, clock: DrivenClock) -> None:
    svc = UserService(store, clock)
    await svc.create("root-ops", GOOD, Role.ADMIN)
    assert await svc.ensure_admin("generated-pass-16") is False
    assert [u["username"] for u in await svc.list()] == ["root-ops"]
