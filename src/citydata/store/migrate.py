"""Run the Alembic migrations programmatically, on the store's own engine.

Capabilities may add their tables on their own Alembic branch (``down_revision = "0002"`` plus a
``branch_labels`` naming the capability), so parallel work never fights over one linear chain; the store
always upgrades to every head, and revisions are reported as the sorted, comma-joined heads."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads
    return ",".join(sorted(heads))


def _current(connection: Connection) -> str | None:
    heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) if heads else None


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> str:
    async with engine.connect() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))
        await conn.commit()
        current = await conn.run_sync(_current)
    return current or ""


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
