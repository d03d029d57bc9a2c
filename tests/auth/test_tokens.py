"""API tokens on SQLite and PostgreSQL: round trip, storage, malformed input, cache, revocation, expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from citydata.auth import Role, TokenService, parse_token
from citydata.clock import DrivenClock
from citydata.errors import NotFound, Unauthorized, ValidationFailed
from citydata.store.schema import api_tokens, devices

KEY = b"token-test-secret-key-0123456789"


async def _add_device(store: Any, clock: DrivenClock, device_id: str) -> None:
    now = clock.now()
    await store.insert_rows(devices, [{"id": device_id, "kind": "rain_gauge", "name": "Rain gauge Patong",
                                       "created_at": now, "updated_at": now}])


async def test_round_trip(store: Any, clock: DrivenClock) -> None:
    svc = TokenService(store, KEY, clock)
    await _add_device(store, clock, "rg-patong-1")
    token_id, token = await svc.create(Role.DEVICE, "rain gauge", agency="pwd", device_id="rg-patong-1",
                                       created_by="admin")
    assert token.startswith(f"cd_{token_id}_") and len(token_id) == 12
    assert parse_token(token) == (token_id, token[16:])
    p = await svc.verify(token)
    assert (p.role, p.kind, p.token_id, p.device_id, p.agency) == (Role.DEVICE, "token", token_id,
                                                                    "rg-patong-1", "pwd")
    assert p.subject == f"token:{token_id}"
    assert p.can("sensors.write") and not p.can("audit.read")
    listed = await svc.list()
    assert [t["id"] for t in listed] == [token_id]
    assert listed[0]["status"] == "active" and listed[0]["created_by"] == "admin"
    assert "secret_hash" not in listed[0]
    # a second token is independent
    other_id, other = await svc.create("analyst", "notebook")
    assert (await svc.verify(other)).role is Role.ANALYST and other_id != token_id


async def test_secret_never_stored(store: Any, clock: DrivenClock) -> None:
    svc = TokenService(store, KEY, clock)
    _token_id, token = await svc.create(Role.OPERATOR, "ioc")
    secret = token[16:]
    await svc.verify(token)
    await svc.flush()
    rows = await store.fetch_all(select(api_tokens))
    assert len(rows) == 1
    for column, value in rows[0].items():
        text = str(value)
        assert token not in text and secret not in text, column
        assert secret[:16] not in text, column
    assert rows[0]["secret_hash"] == svc.hash_secret(secret) and len(rows[0]["secret_hash"]) == 64


async def test_malformed_tokens_are_unauthorized(store: Any, clock: DrivenClock) -> None:
    svc = TokenService(store, KEY, clock)
    token_id, token = await svc.create(Role.DEVICE, "d")
    secret = token[16:]
    bad = [
        "", "cd_", "xx" + token[2:], "CD" + token[2:], token[3:], f"cd_{token_id}", f"cd_{token_id}_",
        f"cd_{token_id[:-1]}_{secret}",          # id too short
        f"cd_{token_id}x_{secret}",               # id too long
        f"cd_{token_id[:-1]}!_{secret}",          # bad id character
        f"cd_{token_id}_{secret[:20]}",           # secret too short
        token + "A" * 200,                        # too long
        f"cd_{token_id}_{secret[:-1]}é",          # non-ascii
        f"cd_{token_id}_{secret[:-1]}\x00",
        f"cd_{token_id}_{secret[:-1]}{'B' if secret[-1] != 'B' else 'C'}",   # wrong secret
        f"cd_{'Z' * 12}_{secret}",                # unknown id
        "Bearer " + token,
    ]
    for value in bad:
        with pytest.raises(Unauthorized) as info:
            await svc.verify(value)
        assert info.value.code == "invalid_token", repr(value[:40])
    assert (await svc.verify(token)).token_id == token_id


async def test_cache_serves_the_hot_path_and_revoke_is_immediate(store: Any, clock: DrivenClock) -> None:
    svc = TokenService(store, KEY, clock)
    token_id, token = await svc.create(Role.DEVICE, "d")
    await svc.verify(token)
    misses = svc.cache_misses
    for _ in range(50):
        await svc.verify(token)
    assert svc.cache_misses == misses and svc.cache_hits >= 50
    # a wrong secret is refused even from the cache
    with pytest.raises(Unauthorized):
        await svc.verify(token[:-1] + ("x" if token[-1] != "x" else "y"))
    await svc.revoke(token_id)
    with pytest.raises(Unauthorized) as info:
        await svc.verify(token)
    assert info.value.code == "token_revoked"
    assert (await svc.list())[0]["status"] == "revoked"
    await svc.revoke(token_id)          # idempotent
    with pytest.raises(NotFound):
        await svc.revoke("ZZZZZZZZZZZZ")


async def test_revocation_elsewhere_is_seen_at_the_next_revocation_poll(store: Any, clock: DrivenClock) -> None:
    here, there = TokenService(store, KEY, clock), TokenService(store, KEY, clock)
    token_id, token = await here.create(Role.DEVICE, "d")
    _other_id, other = await here.create(Role.DEVICE, "e")
    await here.verify(token)
    await here.verify(other)
    await there.revoke(token_id)        # another process sharing the database
    await here.verify(token)            # still cached here until the next poll
    clock.advance(here.revocation_poll_s)
    with pytest.raises(Unauthorized) as info:
        await here.verify(token)
    assert info.value.code == "token_revoked"
    assert here.revocation_polls == 1
    misses = here.cache_misses
    await here.verify(other)            # the feed dropped only the revoked token
    assert here.cache_misses == misses


async def test_a_phone_reporting_every_30_minutes_stays_cached(store: Any, clock: DrivenClock) -> None:
    svc = TokenService(store, KEY, clock)
    _token_id, token = await svc.create(Role.DEVICE, "tourist app")
    await svc.verify(token)
    misses = svc.cache_misses
    for _ in range(3):
        clock.advance(30 * 60)
        await svc.verify(token)         # a revocation poll, then a cache hit: no read of the token's row
    assert svc.cache_misses == misses and svc.revocation_polls == 3
    clock.advance(svc.cache_ttl_s)      # not used for longer than an entry lives: read again
    await svc.verify(token)
    assert svc.cache_misses == misses + 1


async def test_expiry_under_the_driven_clock(store: Any, clock: DrivenClock) -> None:
    svc = TokenService(store, KEY, clock)
    _token_id, token = await svc.create(Role.DEVICE, "d", expires_at=clock.now() + timedelta(seconds=10))
    await svc.verify(token)             # now cached
    clock.advance(9)
    await svc.verify(token)
    clock.advance(1)
    with pytest.raises(Unauthorized) as info:
        await svc.verify(token)
    assert info.value.code == "token_expired"
    assert (await svc.list())[0]["status"] == "expired"
    with pytest.raises(ValidationFailed):
        await svc.create(Role.DEVICE, "d", expires_at=clock.now() - timedelta(seconds=1))


async def test_last_used_at_is_written_at_most_once_a_minute(store: Any, clock: DrivenClock) -> None:
    svc = TokenService(store, KEY, clock)
    token_id, token = await svc.create(Role.DEVICE, "d")
    first = clock.now()
    await svc.verify(token)
    await svc.flush()
    assert (await svc.get(token_id))["last_used_at"] == first
    clock.advance(30)
    await svc.verify(token)
    await svc.flush()
    assert (await svc.get(token_id))["last_used_at"] == first
    second = clock.advance(30)
    await svc.verify(token)
    await svc.flush()
    assert (await svc.get(token_id))["last_used_at"] == second


async def test_last_used_at_of_many_tokens_is_written_together_without_a_flush(store: Any, clock: DrivenClock) -> None:
    import asyncio

    from citydata.auth.tokens import TOUCH_BATCH_S

    svc = TokenService(store, KEY, clock)
    tokens = [await svc.create(Role.DEVICE, f"phone {n}") for n in range(5)]
    commits = store.writer.stats.commits
    for _, token in tokens:
        await svc.verify(token)
    await asyncio.sleep(TOUCH_BATCH_S + 0.5)       # no flush: the batch goes by itself
    assert store.writer.stats.commits == commits + 1
    assert [(await svc.get(tid))["last_used_at"] for tid, _ in tokens] == [clock.now()] * 5


async def test_create_validates(store: Any, clock: DrivenClock) -> None:
    svc = TokenService(store, KEY, clock)
    with pytest.raises(ValidationFailed) as info:
        await svc.create("superuser", "x")
    assert info.value.code == "invalid_role"
    with pytest.raises(ValidationFailed):
        await svc.create(Role.DEVICE, "  ")
    with pytest.raises(ValidationFailed) as info:
        await svc.create(Role.DEVICE, "d", device_id="no-such-device")
    assert info.value.code == "unknown_device"
    assert await svc.list() == []
