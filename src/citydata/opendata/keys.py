"""API keys for startups: creation (shown once; only a keyed hash is stored), verification, per-key rate
limits (a token bucket per key and per anonymous client, in this node's memory: 429 with Retry-After) and
daily usage counts (kept in memory and written through the writer every ``FLUSH_S`` and on stop, so a
request never waits for a commit)."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.clock import Clock
from citydata.errors import NotFound, TooManyRequests, Unauthorized, ValidationFailed
from citydata.opendata.schema import opendata_keys, opendata_usage
from citydata.store import Store

PREFIX = "od_"
VERIFY_CACHE_S = 30.0
FLUSH_S = 5.0


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    organization: str | None
    rate_per_min: int


class Bucket:
    __slots__ = ("at", "rate", "tokens")

    def __init__(self, rate_per_min: int, now: float) -> None:
        self.rate, self.tokens, self.at = rate_per_min, float(rate_per_min), now

    def take(self, now: float) -> float:
        """0 when a request may go, else the seconds until one may."""
        per_s = self.rate / 60.0
        self.tokens = min(float(self.rate), self.tokens + (now - self.at) * per_s)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / per_s


class KeyService:
    def __init__(self, store: Store, clock: Clock, secret: bytes, *, default_rate: int, anonymous_rate: int,
                 monotonic: Any = time.monotonic) -> None:
        self.store, self.clock, self.secret = store, clock, secret
        self.default_rate, self.anonymous_rate = default_rate, anonymous_rate
        self._monotonic = monotonic
        self._buckets: dict[str, Bucket] = {}
        self._verified: dict[str, tuple[float, KeyInfo | None]] = {}
        self._pending: dict[tuple[str, str], list[int]] = {}    # (key id, day) -> [requests, limited]
        self._periodic: Any = None

    def start(self) -> None:
        from citydata.ops.periodic import Periodic

        self._periodic = Periodic("opendata-usage", self.clock, FLUSH_S, self.flush)
        self._periodic.start()

    async def stop(self) -> None:
        if self._periodic is not None:
            await self._periodic.stop()
        await self.flush()

    def _hash(self, key: str) -> str:
        return hmac.new(self.secret, key.encode(), hashlib.sha256).hexdigest()

    async def create(self, name: str, organization: str | None = None, rate_per_min: int | None = None,
                     created_by: str = "cli") -> tuple[KeyInfo, str]:
        if not name.strip():
            raise ValidationFailed("a key needs a name (the startup or application)", code="bad_name")
        rate = rate_per_min or self.default_rate
        if rate < 1 or rate > 100_000:
            raise ValidationFailed("rate_per_min must be 1..100000", code="bad_rate")
        key_id = secrets.token_hex(5)
        key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
        await self.store.execute(opendata_keys.insert().values(
            id=key_id, name=name.strip()[:200], organization=organization, key_hash=self._hash(key),
            rate_per_min=rate, created_at=self.clock.now(), created_by=created_by))
        return KeyInfo(key_id, name, organization, rate), key

    async def revoke(self, key_id: str) -> None:
        done = await self.store.execute(opendata_keys.update().where(
            opendata_keys.c.id == key_id, opendata_keys.c.revoked_at.is_(None)).values(revoked_at=self.clock.now()))
        if not done:
            raise NotFound(f"no active key {key_id}", code="key_not_found")
        self._verified.clear()

    async def verify(self, key: str) -> KeyInfo:
        now = self._monotonic()
        hit = self._verified.get(key)
        if hit is None or now - hit[0] > VERIFY_CACHE_S:
            row = await self.store.fetch_one(select(opendata_keys).where(
                opendata_keys.c.key_hash == self._hash(key), opendata_keys.c.revoked_at.is_(None)))
            info = KeyInfo(row["id"], row["name"], row["organization"], int(row["rate_per_min"])) if row else None
            self._verified[key] = (now, info)
            if len(self._verified) > 10_000:
                self._verified.pop(next(iter(self._verified)))
            hit = (now, info)
        if hit[1] is None:
            raise Unauthorized("unknown or revoked open-data API key", code="invalid_key")
        return hit[1]

    async def admit(self, who: str, rate_per_min: int, *, count_as: str | None) -> dict[str, str]:
        """Take one request from ``who``'s bucket (raising 429 with Retry-After when empty) and count it."""
        now = self._monotonic()
        bucket = self._buckets.get(who)
        if bucket is None or bucket.rate != rate_per_min:
            bucket = self._buckets[who] = Bucket(rate_per_min, now)
        wait = bucket.take(now)
        if count_as is not None:
            await self._count(count_as, limited=wait > 0)
        if wait > 0:
            raise TooManyRequests(f"rate limit of {rate_per_min} requests per minute exceeded",
                                  code="rate_limited", retry_after=max(1, math.ceil(wait)))
        return {"X-RateLimit-Limit": str(rate_per_min), "X-RateLimit-Remaining": str(int(bucket.tokens))}

    async def _count(self, key_id: str, *, limited: bool) -> None:
        cell = self._pending.setdefault((key_id, self.clock.now().date().isoformat()), [0, 0])
        cell[0] += 1
        cell[1] += int(limited)

    async def flush(self) -> int:
        """Write the counts gathered since the last flush (one transaction); returns the cells written."""
        pending, self._pending = self._pending, {}
        if not pending:
            return 0
        dialect_insert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert

        async def op(conn: AsyncConnection) -> None:
            for (key_id, day), (requests, limited) in pending.items():
                ins = dialect_insert(opendata_usage).values(key_id=key_id, day=day, requests=requests,
                                                            limited=limited)
                await conn.execute(ins.on_conflict_do_update(
                    index_elements=[opendata_usage.c.key_id, opendata_usage.c.day],
                    set_={"requests": opendata_usage.c.requests + requests,
                          "limited": opendata_usage.c.limited + limited}))

        try:
            await self.store.write(op, rows=len(pending))
        except BaseException:
            for k, (requests, limited) in pending.items():     # keep them for the next flush
                cell = self._pending.setdefault(k, [0, 0])
                cell[0] += requests
                cell[1] += limited
            raise
        return len(pending)

    async def all(self) -> list[dict[str, Any]]:
        await self.flush()
        k, u = opendata_keys, opendata_usage
        usage = {r["key_id"]: (int(r["requests"]), int(r["limited"])) for r in await self.store.fetch_all(
            select(u.c.key_id, func.sum(u.c.requests).label("requests"), func.sum(u.c.limited).label("limited"))
            .group_by(u.c.key_id))}
        rows = await self.store.fetch_all(
            select(k.c.id, k.c.name, k.c.organization, k.c.rate_per_min, k.c.created_at, k.c.created_by,
                   k.c.revoked_at).order_by(k.c.created_at))
        return [{**{str(c): v for c, v in r.items()}, "requests": usage.get(r["id"], (0, 0))[0],
                 "limited": usage.get(r["id"], (0, 0))[1]} for r in rows]

    async def usage(self, key_id: str) -> list[dict[str, Any]]:
        await self.flush()
        u = opendata_usage
        rows = await self.store.fetch_all(select(u.c.day, u.c.requests, u.c.limited)
                                          .where(u.c.key_id == key_id).order_by(u.c.day))
        return [{"day": r["day"], "requests": int(r["requests"]), "limited": int(r["limited"])} for r in rows]
