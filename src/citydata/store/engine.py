"""The store: one schema on SQLite or PostgreSQL, a read pool, and the single batching writer.

``create_store(settings, clock)`` builds it; ``start()`` creates the database (and schema) if needed, runs the
migrations and starts the writer; ``stop()`` flushes queued writes and closes the pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, RowMapping, Table, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from citydata.clock import Clock
from citydata.config import Settings
from citydata.errors import ConfigError
from citydata.store import schema
from citydata.store.postgres import PostgresBulk
from citydata.store.sqlite import SQLiteBulk, configure_sqlite
from citydata.store.writer import ConflictMode, Writer, WriteOp, is_connection_error

log = logging.getLogger(__name__)
ID_BLOCK = 1000


def async_url(url: str) -> str:
    """Map the user-facing URL to the async driver SQLAlchemy uses."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+asyncpg://"):
        return url
    raise ConfigError(f"CITYDATA_DB_URL: unsupported database URL {url.split(':', 1)[0]}:")


class Store:
    """Framework-free access to the database for every capability."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings, self.clock = settings, clock
        self.url = async_url(settings.database_url)
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        self.schema_name = settings.db_schema if self.dialect == "postgresql" else None
        self.engine: AsyncEngine | None = None         # reads (and migrations)
        self.write_engine: AsyncEngine | None = None   # the writer's own connection(s)
        self.writer: Writer | None = None
        self.postgis = False
        self._id_blocks: dict[str, tuple[int, int]] = {}
        self._id_lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self, *, migrate: bool = True) -> None:
        if self.dialect == "sqlite":
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = create_async_engine(self.url, pool_size=1, max_overflow=0)
            self.engine = create_async_engine(self.url, pool_size=self.settings.db_pool_size, max_overflow=4)
            configure_sqlite(self.write_engine, self.settings.sqlite_synchronous, writer=True)
            configure_sqlite(self.engine, self.settings.sqlite_synchronous, writer=False)
            bulk: Any = SQLiteBulk()
        else:
            connect_args: dict[str, Any] = {}
            if self.schema_name:
                connect_args["server_settings"] = {"search_path": self.schema_name}
            self.engine = create_async_engine(self.url, pool_size=self.settings.db_pool_size, max_overflow=4,
                                              pool_pre_ping=True, connect_args=connect_args)
            self.write_engine = create_async_engine(self.url, pool_size=2, max_overflow=0, pool_pre_ping=True,
                                                    connect_args=connect_args)
            bulk = PostgresBulk(self.schema_name)
        if migrate:
            await self.upgrade()
        self.writer = Writer(self.write_engine, bulk, batch_rows=self.settings.db_batch_rows,
                             batch_ms=self.settings.db_batch_ms, buffer_rows=self.settings.db_write_buffer,
                             retry_s=self.settings.db_retry_s)
        self.writer.start()

    async def upgrade(self) -> str:
        """Create the schema if needed and run every pending migration; returns the head revision."""
        from citydata.store.migrate import upgrade

        assert self.write_engine is not None
        if self.schema_name:
            async with self.write_engine.connect() as conn:
                # The schema is created without a search_path dependency; its name is validated.
                if not self.schema_name.replace("_", "").isalnum():
                    raise ConfigError("CITYDATA_DB_SCHEMA: must be letters, digits and underscores")
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema_name}"'))
                await conn.commit()
        if self.dialect == "postgresql":
            from citydata.store.postgres import has_postgis

            async with self.write_engine.connect() as conn:
                self.postgis = await has_postgis(conn)
        return await upgrade(self.write_engine)

    async def stop(self) -> None:
        if self.writer is not None:
            await self.writer.stop(self.settings.shutdown_grace_s)
        for engine in (self.engine, self.write_engine):
            if engine is not None:
                await engine.dispose()

    # -- reads -------------------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def read(self) -> Any:
        """A read connection (``async with store.read() as conn``)."""
        assert self.engine is not None, "store not started"
        async with self.engine.connect() as conn:
            yield conn

    async def fetch_all(self, stmt: Executable) -> list[RowMapping]:
        async with self.read() as conn:
            return list((await conn.execute(stmt)).mappings().all())

    async def fetch_one(self, stmt: Executable) -> RowMapping | None:
        async with self.read() as conn:
            return (await conn.execute(stmt)).mappings().first()

    async def scalar(self, stmt: Executable) -> Any:
        async with self.read() as conn:
            return (await conn.execute(stmt)).scalar()

    # -- writes ------------------------------------------------------------------------------------------------
    async def write(self, op: WriteOp, rows: int = 1) -> Any:
        """Run ``op(conn)`` in the writer's next transaction; returns its result once committed."""
        assert self.writer is not None, "store not started"
        return await self.writer.write(op, rows)

    async def insert_rows(self, table: Table, rows: Sequence[dict[str, Any]],
                          conflict: ConflictMode = "ignore") -> int:
        """Bulk insert through the writer (executemany / COPY); returns the count of new rows."""
        assert self.writer is not None, "store not started"
        return await self.writer.insert_rows(table, rows, conflict)

    async def execute(self, stmt: Executable) -> Any:
        """One statement through the writer; returns the rowcount."""
        async def op(conn: AsyncConnection) -> Any:
            return (await conn.execute(stmt)).rowcount

        return await self.write(op)

    async def allocate_ids(self, table: Table, count: int) -> list[int]:
        """Reserve ``count`` primary keys for ``table`` (so bulk inserts can return ids without RETURNING).

        Ids are handed out in blocks recorded in the ``meta`` table, so several processes on one database never
        get the same id."""
        ids: list[int] = []
        async with self._id_lock:
            while len(ids) < count:
                start, end = self._id_blocks.get(table.name, (0, 0))
                if start >= end:
                    need = max(ID_BLOCK, count - len(ids))
                    start = await self.write(lambda conn, n=need: self._reserve(conn, table, n))
                    end = start + need
                take = min(end - start, count - len(ids))
                ids.extend(range(start, start + take))
                self._id_blocks[table.name] = (start + take, end)
        return ids

    async def _reserve(self, conn: AsyncConnection, table: Table, count: int) -> int:
        key = f"idseq:{table.name}"
        row = (await conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == key))).first()
        if row is None:
            current = (await conn.execute(select(text("max(id)")).select_from(table))).scalar() or 0
            await conn.execute(schema.meta.insert().values(key=key, value=current + count,
                                                           updated_at=self.clock.now()))
        else:
            current = int(row[0])
            await conn.execute(schema.meta.update().where(schema.meta.c.key == key)
                               .values(value=current + count, updated_at=self.clock.now()))
        return int(current) + 1

    # -- small key/value state ---------------------------------------------------------------------------------
    async def get_meta(self, key: str) -> Any:
        return await self.scalar(select(schema.meta.c.value).where(schema.meta.c.key == key))

    async def set_meta(self, key: str, value: Any) -> None:
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> None:
            done = await conn.execute(schema.meta.update().where(schema.meta.c.key == key)
                                      .values(value=value, updated_at=now))
            if not done.rowcount:
                await conn.execute(schema.meta.insert().values(key=key, value=value, updated_at=now))

        await self.write(op)

    # -- health ------------------------------------------------------------------------------------------------
    async def ready(self) -> tuple[bool, str]:
        """(ready, reason) for /readyz: the database answers and the writer is not stuck retrying."""
        if self.engine is None or self.writer is None:
            return False, "store not started"
        try:
            async with asyncio.timeout(2.0):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception as err:
            if is_connection_error(err) or isinstance(err, TimeoutError):
                return False, f"database unreachable ({type(err).__name__})"
            return False, f"database error ({type(err).__name__})"
        if not self.writer.available:
            return False, f"writer retrying: {self.writer.stats.last_error}"
        return True, "ok"


def create_store(settings: Settings, clock: Clock) -> Store:
    return Store(settings, clock)
