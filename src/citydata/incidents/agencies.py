"""Agencies as data: who incidents are dispatched to, and where they are notified (webhook + secret, e-mail,
LINE). The defaults (``model.DEFAULT_AGENCIES``) are created on first start with no endpoints; admins set
the endpoints through ``/api/v1/agencies``. Webhook secrets are write-only: never returned."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.clock import Clock
from citydata.errors import NotFound
from citydata.incidents.model import DEFAULT_AGENCIES
from citydata.incidents.schema import agencies
from citydata.store import Store

AGENCY_ID = r"^[a-z][a-z0-9_]{1,79}$"
EMAIL = r"^[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+$"


class AgencyIn(BaseModel):
    """Create or replace an agency (PUT). ``webhook_secret`` omitted keeps the stored one."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    name_th: str | None = Field(None, max_length=200)
    webhook_url: HttpUrl | None = None
    webhook_secret: str | None = Field(None, min_length=16, max_length=200)
    email: str | None = Field(None, pattern=EMAIL, max_length=300)
    line_to: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,100}$")
    enabled: bool = True


def agency_view(row: Any) -> dict[str, Any]:
    r = dict(row)
    return {"id": r["id"], "name": r["name"], "name_th": r["name_th"], "webhook_url": r["webhook_url"],
            "webhook_secret_set": bool(r["webhook_secret"]), "email": r["email"], "line_to": r["line_to"],
            "enabled": bool(r["enabled"]), "created_at": r["created_at"].isoformat(),
            "updated_at": r["updated_at"].isoformat()}


class AgencyService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def _insert(self) -> Any:
        return (pg_insert if self.store.dialect == "postgresql" else sqlite_insert)(agencies)

    async def ensure_defaults(self) -> int:
        """Create the default agencies that do not exist yet; returns how many were created."""
        now = self.clock.now()
        rows = [{"id": a.id, "name": a.name, "name_th": a.name_th, "enabled": True, "created_at": now,
                 "updated_at": now} for a in DEFAULT_AGENCIES]
        stmt = self._insert().values(rows).on_conflict_do_nothing(index_elements=[agencies.c.id])

        async def op(conn: AsyncConnection) -> int:
            return int((await conn.execute(stmt)).rowcount or 0)

        return int(await self.store.write(op))

    async def list(self) -> list[dict[str, Any]]:
        return [agency_view(r) for r in await self.store.fetch_all(select(agencies).order_by(agencies.c.id))]

    async def row(self, agency_id: str) -> dict[str, Any]:
        found = await self.store.fetch_one(select(agencies).where(agencies.c.id == agency_id))
        if found is None:
            raise NotFound(f"no agency {agency_id!r}", code="agency_not_found")
        return dict(found)

    async def get(self, agency_id: str) -> dict[str, Any]:
        return agency_view(await self.row(agency_id))

    async def put(self, agency_id: str, body: AgencyIn) -> tuple[dict[str, Any], bool]:
        """Create or replace; returns (agency, created)."""
        now = self.clock.now()
        values: dict[str, Any] = {"name": body.name, "name_th": body.name_th,
                                  "webhook_url": str(body.webhook_url) if body.webhook_url else None,
                                  "email": body.email, "line_to": body.line_to, "enabled": body.enabled,
                                  "updated_at": now}
        if body.webhook_secret is not None:
            values["webhook_secret"] = body.webhook_secret

        async def op(conn: AsyncConnection) -> bool:
            exists = (await conn.execute(select(agencies.c.id).where(agencies.c.id == agency_id))).scalar()
            if exists is None:
                await conn.execute(agencies.insert().values(id=agency_id, created_at=now, **values))
                return True
            await conn.execute(agencies.update().where(agencies.c.id == agency_id).values(**values))
            return False

        created = await self.store.write(op)
        return await self.get(agency_id), bool(created)

    async def delete(self, agency_id: str) -> None:
        """Disable (agencies with incidents stay for the record)."""
        await self.row(agency_id)
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(agencies.update().where(agencies.c.id == agency_id).values(
                enabled=False, updated_at=now))

        await self.store.write(op)
