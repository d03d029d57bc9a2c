"""API tokens for devices, integrators and scripts.

A token reads ``cd_<id>_<secret>``: ``id`` is 12 letters and digits (public; the primary key and what admins
see), ``secret`` is 43 URL-safe characters from ``secrets`` (256 bits). The database keeps only
``HMAC-SHA256(key, secret)`` in hex, where ``key`` is derived from the platform secret key; a stolen database
therefore yields no usable token.

Verified tokens are cached in memory (bounded LRU) so the hot ingest path does not read the database per
request: a phone that reports every 30 minutes must stay cached that long, so an entry lives until it has
not been used for ``CACHE_TTL_S`` (an hour), and the cache holds ``CACHE_SIZE`` entries (400,000: every
tourist of Phuket's peak; about 600 bytes each, so 240 MB when full). ``revoke`` drops the entry at once in
this process; other processes sharing the database learn of it from the revocation feed: every
``REVOCATION_POLL_S`` the next verification reads the ids revoked since the last read (one indexed query for
the whole cache) and drops them, so a revocation anywhere takes effect everywhere within seconds, however long
entries live. Expiry is checked on every call, cached or not. ``last_used_at`` is written at most once a
``TOUCH_INTERVAL_S`` per token, in batches of all tokens used in the last ``TOUCH_BATCH_S`` (``flush`` writes
the pending ones).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import hmac
import logging
import re
import secrets
import string
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.auth.principal import Principal
from citydata.auth.roles import Role
from citydata.clock import Clock
from citydata.errors import CityDataError, ConfigError, NotFound, Unauthorized, ValidationFailed
from citydata.store import Store
from citydata.store.schema import api_tokens, devices

log = logging.getLogger(__name__)

PREFIX = "cd_"
ID_LENGTH = 12
SECRET_BYTES = 32
MIN_SECRET_LENGTH = 32
MAX_SECRET_LENGTH = 128
MAX_TOKEN_LENGTH = len(PREFIX) + ID_LENGTH + 1 + MAX_SECRET_LENGTH
CACHE_TTL_S = 3600.0
CACHE_SIZE = 400_000
REVOCATION_POLL_S = 5.0
REVOCATION_SKEW_S = 300.0   # revoked_at is the revoking node's clock: read back this far for skew between nodes
TOUCH_INTERVAL_S = 60.0
TOUCH_BATCH_S = 1.0

_ID_CHARS = string.ascii_letters + string.digits
# cd_<id: 12 letters or digits>_<secret: 32-128 of letters, digits, - and _> (one C call on every request)
_TOKEN = re.compile(rf"{PREFIX}([A-Za-z0-9]{{{ID_LENGTH}}})_([A-Za-z0-9_-]{{{MIN_SECRET_LENGTH},{MAX_SECRET_LENGTH}}})",
                    re.ASCII)


def derive_key(secret_key: bytes, purpose: str) -> bytes:
    """A sub-key of the platform secret for one purpose, so tokens and sessions never share a key."""
    return hmac.new(secret_key, b"citydata/" + purpose.encode(), hashlib.sha256).digest()


def check_secret_key(secret_key: bytes) -> None:
    if not isinstance(secret_key, bytes) or len(secret_key) < 16:
        raise ConfigError("the secret key must be at least 16 bytes")


def parse_token(token: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` from ``cd_<id>_<secret>``, or None when the string is not shaped like a token.
    The id has a fixed length, so the secret may itself contain ``_``."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    m = _TOKEN.fullmatch(token)
    return (m[1], m[2]) if m else None


@dataclass
class _Cached:
    secret_hash: str
    principal: Principal
    expires_at: datetime | None
    cached_at: float                 # clock.monotonic() when last read or used (idle expiry)
    last_used: datetime | None       # last_used_at as stored (or as scheduled by us)


def _invalid() -> Unauthorized:
    return Unauthorized("invalid API token", code="invalid_token")


class TokenService:
    """Create, verify, list and revoke API tokens."""

    def __init__(self, store: Store, secret_key: bytes, clock: Clock, *, cache_ttl_s: float = CACHE_TTL_S,
                 cache_size: int = CACHE_SIZE, touch_interval_s: float = TOUCH_INTERVAL_S,
                 revocation_poll_s: float = REVOCATION_POLL_S) -> None:
        check_secret_key(secret_key)
        self.store, self.clock = store, clock
        self._key = derive_key(secret_key, "api-token")
        self.cache_ttl_s, self.cache_size, self.touch_interval_s = cache_ttl_s, cache_size, touch_interval_s
        self.revocation_poll_s = revocation_poll_s
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._revoked_here: set[str] = set()
        self._pending_touches: dict[str, datetime] = {}   # token id -> last use, written in batches
        self._touch_task: asyncio.Task[None] | None = None
        self._touch_sleeping = False
        self._revocations_since = clock.now()      # the revocation feed: read from here on the next poll
        self._polled_at = clock.monotonic()
        self._poll: asyncio.Future[None] | None = None
        self.cache_hits = 0
        self.cache_misses = 0
        self.revocation_polls = 0

    def hash_secret(self, secret: str) -> str:
        """The stored form of a token secret: HMAC-SHA256 hex."""
        return hmac.digest(self._key, secret.encode("ascii"), "sha256").hex()

    # -- create ----------------------------------------------------------------------------------------------
    async def create(self, role: Role | str, name: str, *, agency: str | None = None,
                     device_id: str | None = None, created_by: str | None = None,
                     expires_at: datetime | None = None) -> tuple[str, str]:
        """Create a token; returns ``(token_id, token_string)``. The string is shown once and never stored."""
        try:
            role = Role(role)
        except ValueError:
            raise ValidationFailed(f"unknown role {role!r}", code="invalid_role") from None
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise ValidationFailed("a token needs a name of 1 to 200 characters", code="invalid_name")
        if agency is not None and len(agency) > 80:
            raise ValidationFailed("agency is at most 80 characters", code="invalid_agency")
        now = self.clock.now()
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise ValidationFailed("expires_at must be timezone-aware", code="invalid_expiry")
            if expires_at <= now:
                raise ValidationFailed("expires_at is in the past", code="invalid_expiry")
        token_id = "".join(secrets.choice(_ID_CHARS) for _ in range(ID_LENGTH))
        secret = secrets.token_urlsafe(SECRET_BYTES)
        row = {"id": token_id, "name": name, "role": role.value, "agency": agency, "device_id": device_id,
               "secret_hash": self.hash_secret(secret), "created_at": now, "created_by": created_by,
               "expires_at": expires_at, "last_used_at": None, "revoked_at": None}

        async def op(conn: AsyncConnection) -> None:
            if device_id is not None:
                found = (await conn.execute(select(devices.c.id).where(devices.c.id == device_id))).first()
                if found is None:
                    raise ValidationFailed(f"unknown device {device_id!r}", code="unknown_device")
            await conn.execute(api_tokens.insert().values(**row))

        await self.store.write(op)
        log.info("API token %s created (role %s)", token_id, role.value)
        return token_id, f"{PREFIX}{token_id}_{secret}"

    # -- verify ----------------------------------------------------------------------------------------------
    async def verify(self, token: str) -> Principal:
        """The principal of a valid token. ``Unauthorized`` with code ``invalid_token`` (malformed, unknown or
        wrong secret), ``token_revoked`` or ``token_expired``. Revoked/expired are only told to a caller that
        presented the right secret."""
        parsed = parse_token(token)
        if parsed is None:
            raise _invalid()
        token_id, secret = parsed
        presented = self.hash_secret(secret)
        mono = self.clock.monotonic()
        if mono - self._polled_at >= self.revocation_poll_s:
            await self._poll_revocations(mono)
        entry = self._cache.get(token_id)
        if entry is not None and mono - entry.cached_at < self.cache_ttl_s:
            self._cache.move_to_end(token_id)
            entry.cached_at = mono      # idle expiry: a token's row never changes but for its revocation (fed)
            self.cache_hits += 1
        else:
            self.cache_misses += 1
            entry = await self._load(token_id, presented, mono)
        if not hmac.compare_digest(entry.secret_hash, presented):
            raise _invalid()
        now = self.clock.now()
        if entry.expires_at is not None and now >= entry.expires_at:
            self._cache.pop(token_id, None)
            raise Unauthorized("API token expired", code="token_expired")
        if entry.last_used is None or (now - entry.last_used).total_seconds() >= self.touch_interval_s:
            entry.last_used = now
            self._touch(token_id, now)
        return entry.principal

    async def _load(self, token_id: str, presented: str, mono: float) -> _Cached:
        self._cache.pop(token_id, None)
        row = await self.store.fetch_one(select(api_tokens).where(api_tokens.c.id == token_id))
        if row is None:
            raise _invalid()
        if not hmac.compare_digest(str(row["secret_hash"]), presented):
            raise _invalid()
        if row["revoked_at"] is not None:
            raise Unauthorized("API token revoked", code="token_revoked")
        try:
            role = Role(row["role"])
        except ValueError:
            log.error("API token %s has an unknown role; refused", token_id)
            raise _invalid() from None
        principal = Principal(f"token:{token_id}", role, "token", agency=row["agency"], token_id=token_id,
                              device_id=row["device_id"])
        entry = _Cached(str(row["secret_hash"]), principal, row["expires_at"], mono, row["last_used_at"])
        if token_id not in self._revoked_here:  # a revoke racing this read must not be undone by the cache
            self._cache[token_id] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return entry

    async def _poll_revocations(self, mono: float) -> None:
        """Drop the cached tokens revoked (by any process) since the last poll. One poll at a time: callers
        that find one running wait for it."""
        if self._poll is None or self._poll.done():
            self._poll = asyncio.ensure_future(self._read_revocations(mono))
        await asyncio.shield(self._poll)

    async def _read_revocations(self, mono: float) -> None:
        started = self.clock.now()
        since = self._revocations_since - timedelta(seconds=REVOCATION_SKEW_S)
        try:
            rows = await self.store.fetch_all(select(api_tokens.c.id).where(api_tokens.c.revoked_at >= since))
        except Exception as err:   # the store is down: entries still expire after cache_ttl_s; retry next poll
            log.warning("reading the token revocations failed (%s); retrying in %.0f s", type(err).__name__,
                        self.revocation_poll_s)
            self._polled_at = mono
            return
        for row in rows:
            self._cache.pop(str(row["id"]), None)
        self._revocations_since, self._polled_at = started, mono
        self.revocation_polls += 1

    def _touch(self, token_id: str, at: datetime) -> None:
        """Note a use; the notes are written together ``TOUCH_BATCH_S`` later (at Phuket's scale every ping is
        a phone's first use in 30 minutes: one task and one write per ping before)."""
        self._pending_touches[token_id] = at
        if self._touch_task is None or self._touch_task.done():
            self._touch_task = asyncio.get_running_loop().create_task(self._touch_later(), name="token-touches")

    async def _touch_later(self) -> None:
        self._touch_sleeping = True
        try:
            await asyncio.sleep(TOUCH_BATCH_S)
        finally:
            self._touch_sleeping = False
        await self._write_touches()

    async def _write_touches(self) -> None:
        pending, self._pending_touches = self._pending_touches, {}
        if not pending:
            return
        stmt = api_tokens.update().where(api_tokens.c.id == bindparam("b_id")).values(
            last_used_at=bindparam("b_at", type_=api_tokens.c.last_used_at.type))
        rows = [{"b_id": k, "b_at": v} for k, v in pending.items()]

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(stmt, rows)

        try:
            await self.store.write(op, rows=len(rows))
        except CityDataError as err:  # store stopping or overloaded: last_used_at is best effort
            log.debug("last_used_at of %d tokens not written: %s", len(rows), err.code)
        except Exception:
            log.exception("last_used_at of %d tokens not written", len(rows))

    async def flush(self) -> None:
        """Write the pending ``last_used_at`` notes now (at shutdown before the store stops, and in tests)."""
        task = self._touch_task
        if task is not None and not task.done():
            if self._touch_sleeping:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._write_touches()

    def invalidate(self, token_id: str | None = None) -> None:
        """Drop one cached token, or all of them."""
        if token_id is None:
            self._cache.clear()
        else:
            self._cache.pop(token_id, None)

    # -- revoke and list -------------------------------------------------------------------------------------
    async def revoke(self, token_id: str) -> None:
        """Revoke a token; effective at once in this process. ``NotFound`` for an unknown id. Idempotent."""
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> None:
            found = (await conn.execute(select(api_tokens.c.revoked_at)
                                        .where(api_tokens.c.id == token_id))).first()
            if found is None:
                raise NotFound("no such API token", code="token_not_found")
            if found[0] is None:
                await conn.execute(api_tokens.update().where(api_tokens.c.id == token_id)
                                   .values(revoked_at=now))

        self._revoked_here.add(token_id)
        self._cache.pop(token_id, None)
        try:
            await self.store.write(op)
        except NotFound:
            self._revoked_here.discard(token_id)
            raise
        finally:
            self._cache.pop(token_id, None)
        log.info("API token %s revoked", token_id)

    async def get(self, token_id: str) -> dict[str, Any]:
        """One token's public fields (``NotFound`` when unknown)."""
        row = await self.store.fetch_one(select(*self._public_columns()).where(api_tokens.c.id == token_id))
        if row is None:
            raise NotFound("no such API token", code="token_not_found")
        return self._public(row)

    def _public_columns(self) -> builtins.list[Any]:
        return [c for c in api_tokens.c if c.name != "secret_hash"]

    def _public(self, row: Any) -> dict[str, Any]:
        out = dict(row)
        now = self.clock.now()
        if out["revoked_at"] is not None:
            out["status"] = "revoked"
        elif out["expires_at"] is not None and now >= out["expires_at"]:
            out["status"] = "expired"
        else:
            out["status"] = "active"
        return out

    async def list(self) -> builtins.list[dict[str, Any]]:
        """Every token's public fields with a ``status`` (active, revoked, expired); never the hashes."""
        rows = await self.store.fetch_all(select(*self._public_columns())
                                          .order_by(api_tokens.c.created_at, api_tokens.c.id))
        return [self._public(r) for r in rows]
