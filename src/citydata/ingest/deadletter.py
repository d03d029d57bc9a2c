"""Dead letters: inputs we could not accept, kept with their reason so nothing is dropped silently."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from citydata.clock import Clock
from citydata.ops.metrics import Metrics
from citydata.store import Store
from citydata.store.schema import dead_letters

MAX_PAYLOAD = 2000


def _text(payload: bytes | str | None) -> str | None:
    if payload is None:
        return None
    if isinstance(payload, bytes):
        payload = payload[: MAX_PAYLOAD * 4].decode("utf-8", errors="backslashreplace")
    return payload[:MAX_PAYLOAD]


class DeadLetters:
    def __init__(self, store: Store, clock: Clock, metrics: Metrics) -> None:
        self.store, self.clock, self.metrics = store, clock, metrics

    async def record(self, source: str, channel: str, payload: bytes | str | None, reason: str,
                     detail: dict[str, Any] | None = None) -> None:
        """Keep a rejected input (payload truncated) with its reason, and count it."""
        self.metrics.dead_letters.labels(source).inc()
        await self.store.insert_rows(dead_letters, [{
            "at": self.clock.now(), "source": source, "channel": channel[:300], "payload": _text(payload),
            "reason": reason[:1000], "detail": detail}], conflict="error")

    async def list(self, *, source: str | None = None, since: datetime | None = None, limit: int = 100,
                   offset: int = 0) -> list[dict[str, Any]]:
        stmt = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit).offset(offset)
        if source:
            stmt = stmt.where(dead_letters.c.source == source)
        if since:
            stmt = stmt.where(dead_letters.c.at >= since)
        return [dict(r) for r in await self.store.fetch_all(stmt)]

    async def count(self, source: str | None = None) -> int:
        stmt = select(func.count()).select_from(dead_letters)
        if source:
            stmt = stmt.where(dead_letters.c.source == source)
        return int(await self.store.scalar(stmt) or 0)
