"""The audit log: who did or read what, about whom, why, and from where.

``record`` awaits the commit, so an audited read is served only once its audit record is durable: when the
record cannot be written, the read fails too.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.auth.principal import Principal
from citydata.clock import Clock
from citydata.errors import ValidationFailed
from citydata.store import Store
from citydata.store.schema import audit_log

log = logging.getLogger(__name__)

MAX_LIMIT = 1000


def _check(value: str | None, field: str, limit: int) -> None:
    if value is not None and (not value or len(value) > limit):
        raise ValidationFailed(f"audit {field} must be 1 to {limit} characters", code=f"invalid_{field}")


class AuditLog:
    """Append-only audit records in the ``audit_log`` table."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def record(self, principal: Principal, action: str, *, subject_type: str | None = None,
                     subject_id: str | None = None, purpose: str | None = None,
                     detail: dict[str, Any] | None = None, client: str | None = None) -> None:
        """Write one record and wait until it is committed."""
        _check(action, "action", 100)
        _check(subject_type, "subject_type", 60)
        _check(subject_id, "subject_id", 100)
        _check(purpose, "purpose", 300)
        row = {
            "at": self.clock.now(),
            "actor": principal.subject[:100],
            "role": principal.role.value,
            "action": action,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "purpose": purpose,
            "detail": detail,
            "client": client[:100] if client else None,
        }

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(audit_log.insert().values(**row))

        await self.store.write(op)

    async def query(self, *, subject_type: str | None = None, subject_id: str | None = None,
                    actor: str | None = None, action: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Records matching every given filter, newest first, at most ``limit`` (1 to 1000). ``since`` is
        inclusive, ``until`` exclusive."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed(f"limit must be 1 to {MAX_LIMIT}", code="invalid_limit")
        stmt = select(audit_log)
        if subject_type is not None:
            stmt = stmt.where(audit_log.c.subject_type == subject_type)
        if subject_id is not None:
            stmt = stmt.where(audit_log.c.subject_id == subject_id)
        if actor is not None:
            stmt = stmt.where(audit_log.c.actor == actor)
        if action is not None:
            stmt = stmt.where(audit_log.c.action == action)
        for value in (since, until):
            if value is not None and value.tzinfo is None:
                raise ValidationFailed("times must be timezone-aware", code="invalid_time")
        if since is not None:
            stmt = stmt.where(audit_log.c.at >= since)
        if until is not None:
            stmt = stmt.where(audit_log.c.at < until)
        stmt = stmt.order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
        return [dict(r) for r in await self.store.fetch_all(stmt)]
