"""The store: one schema on SQLite or PostgreSQL, a read pool, and the single batching writer.

``create_store(settings, clock)`` builds it; ``start()`` creates the database (and schema) if needed, runs the
migrations and starts the writer; ``stop()`` flushes queued writes and closes the pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    RowMapping,
    Table,
    bindparam,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from citydata.clock import Clock
from citydata.config import Settings
from citydata.errors import ConfigError, Unavailable
from citydata.store import schema
from citydata.store.postgres import PostgresBulk
from citydata.store.sqlite import SQLiteBulk, configure_sqlite, inline_connector
from citydata.store.types import UTCDateTime
from citydata.store.writer import ConflictMode, WriteOp, Writer, is_connection_error

log = logging.getLogger(__name__)
# (store, connection) of the current read session (a contextvar: each request task has its own)
_READ_SESSION: contextvars.ContextVar[tuple[Any, Any] | None] = contextvars.ContextVar("citydata_read_session",
                                                                                     default=None)
ID_BLOCK = 1000
ID_BLOCK_MAX = 100_000
CONNECT_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 2.0


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
        self._id_refills: dict[str, tuple[float, int]] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, *, migrate: bool = True) -> None:
        if self.dialect == "sqlite":
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            inline: dict[str, Any] = {}
            if path and path != ":memory:" and not make_url(self.url).query:
                inline["async_creator"] = inline_connector(path)
            self.write_engine = create_async_engine(self.url, pool_size=2, max_overflow=0, **inline)
            self.engine = create_async_engine(self.url, pool_size=self.settings.db_pool_size, max_overflow=4)
            configure_sqlite(self.write_engine, self.settings.sqlite_synchronous, writer=True,
                             cache_mib=self.settings.sqlite_cache_mib)
            configure_sqlite(self.engine, self.settings.sqlite_synchronous, writer=False,
                             cache_mib=self.settings.sqlite_reader_cache_mib)
            bulk: Any = SQLiteBulk(self.write_engine.dialect)
        else:
            # A connect timeout, so an unreachable server fails fast instead of after asyncpg's default 60 s.
            connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_S}
            if self.schema_name:
                connect_args["server_settings"] = {"search_path": self.schema_name}
            self.engine = create_async_engine(self.url, pool_size=self.settings.db_pool_size, max_overflow=4,
                                              pool_pre_ping=True, connect_args=connect_args)
            # No pre-ping for the writer: it keeps its connection and replaces it after a connection error.
            self.write_engine = create_async_engine(self.url, pool_size=3, max_overflow=0,
                                                    connect_args=connect_args)
            bulk = PostgresBulk(self.schema_name)
        if migrate:
            await self.upgrade()
        self.writer = Writer(self.write_engine, bulk, batch_rows=self.settings.db_batch_rows,
                             batch_ms=self.settings.db_batch_ms, buffer_rows=self.settings.db_write_buffer,
                             retry_s=self.settings.db_retry_s)
        self.writer.start()

    async def upgrade(self) -> str:
        """Create the schema if needed and run every pending migration; returns the head revision.

        On PostgreSQL an advisory lock makes Stores starting together on one database migrate one at a
        time."""
        from citydata.store.migrate import upgrade

        assert self.write_engine is not None
        if self.dialect != "postgresql":
            return await upgrade(self.write_engine)
        from citydata.store.postgres import MIGRATION_LOCK, has_postgis

        async with self.write_engine.connect() as lock_conn:
            await lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            await lock_conn.commit()
            try:
                if self.schema_name:
                    # The schema is created without a search_path dependency; its name is validated.
                    if not self.schema_name.replace("_", "").isalnum():
                        raise ConfigError("CITYDATA_DB_SCHEMA: must be letters, digits and underscores")
                    await lock_conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema_name}"'))
                    await lock_conn.commit()
                self.postgis = await has_postgis(lock_conn)
                await lock_conn.commit()
                return await upgrade(self.write_engine)
            finally:
                await lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                await lock_conn.commit()

    async def stop(self) -> None:
        """Flush queued writes (up to ``shutdown_grace_s``) and close the pools. Safe to call twice."""
        if self.writer is not None:
            await self.writer.stop(self.settings.shutdown_grace_s)
        for engine in (self.engine, self.write_engine):
            if engine is not None:
                await engine.dispose()

    # -- reads -----------------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def read(self) -> Any:
        """A read connection (``async with store.read() as conn``): the one of the current ``read_session``
        when there is one, else a connection from the pool for this block."""
        shared = _READ_SESSION.get()
        if shared is not None and shared[0] is self:
            yield shared[1]
            return
        assert self.engine is not None, "store not started"
        try:
            async with self.engine.connect() as conn:
                yield conn
        except Exception as err:
            # the database is away: 503 with Retry-After (as writes get), not an unexpected 500
            if is_connection_error(err):
                raise Unavailable("the database is unavailable; try again shortly", code="store_unavailable",
                                  retry_after=5) from err
            raise

    @contextlib.asynccontextmanager
    async def read_session(self) -> Any:
        """Serve every read inside the block from one pooled connection (one consistent snapshot, one
        checkout): a request that runs several small queries pays for the pool once."""
        if _READ_SESSION.get() is not None:
            yield
            return
        async with self.read() as conn:
            token = _READ_SESSION.set((self, conn))
            try:
                yield
            finally:
                _READ_SESSION.reset(token)

    async def fetch_all(self, stmt: Executable) -> list[RowMapping]:
        async with self.read() as conn:
            return list((await conn.execute(stmt)).mappings().all())

    async def fetch_one(self, stmt: Executable) -> RowMapping | None:
        async with self.read() as conn:
            row: RowMapping | None = (await conn.execute(stmt)).mappings().first()
            return row

    async def scalar(self, stmt: Executable) -> Any:
        async with self.read() as conn:
            return (await conn.execute(stmt)).scalar()

    # -- writes ----------------------------------------------------------------------------------------------
    async def write(self, op: WriteOp, rows: int = 1, *, heavy: bool = False, wait: bool = False) -> Any:
        """Run ``op(conn)`` in the writer's next transaction; returns its result once committed. ``heavy``: the
        op may run long (rebuilds, purges); on SQLite it then runs off the event loop (``InlineConnection``).
        ``wait``: a full write buffer is waited out instead of refused (the platform's own writes)."""
        assert self.writer is not None, "store not started"
        return await self.writer.write(op, rows, heavy=heavy, wait=wait)

    async def insert_rows(self, table: Table, rows: Sequence[dict[str, Any]],
                          conflict: ConflictMode = "ignore", *, wait: bool = False) -> int:
        """Bulk insert through the writer (executemany / COPY); returns the count of new rows. ``wait``: as for
        :meth:`write`."""
        assert self.writer is not None, "store not started"
        return await self.writer.insert_rows(table, rows, conflict, wait=wait)

    async def execute(self, stmt: Executable, *, heavy: bool = False) -> Any:
        """One statement through the writer; returns the rowcount."""
        async def op(conn: AsyncConnection) -> Any:
            return (await conn.execute(stmt)).rowcount

        return await self.write(op, heavy=heavy)

    async def allocate_ids(self, table: Table, count: int) -> list[int]:
        """Reserve ``count`` primary keys for ``table`` (so bulk inserts can return ids without RETURNING).

        Ids are handed out in blocks recorded in the ``meta`` table (key ``idseq:<table>``), reserved
        atomically in the writer's transaction, so several processes on one database never get the same id.
        A block never starts below the table's current ``max(id)``, and on PostgreSQL the table's own
        sequence is moved past every reserved block, so rows inserted without an id do not collide with
        reserved ones. (On SQLite, do not mix reserved ids and rows inserted without an id in one table.)"""
        if count <= 0:
            return []
        ids: list[int] = []
        async with self._id_lock:
            while len(ids) < count:
                start, end = self._id_blocks.get(table.name, (0, 0))
                if start >= end:
                    need = max(self._next_block(table.name), count - len(ids))
                    start = await self.write(functools.partial(self._reserve, table=table, count=need))
                    end = start + need
                take = min(end - start, count - len(ids))
                ids.extend(range(start, start + take))
                self._id_blocks[table.name] = (start + take, end)
        return ids

    def _next_block(self, name: str) -> int:
        """Block size: ``ID_BLOCK``, doubled (up to ``ID_BLOCK_MAX``) while refills come within a second, so a
        busy ingest reserves ids rarely; ids left in a block when the process stops are simply never used."""
        now = time.monotonic()
        last_at, last_size = self._id_refills.get(name, (0.0, 0))
        size = min(ID_BLOCK_MAX, last_size * 2) if now - last_at < 1.0 and last_size else ID_BLOCK
        self._id_refills[name] = (now, size)
        return size

    async def _reserve(self, conn: AsyncConnection, *, table: Table, count: int) -> int:
        """Reserve ``count`` ids; returns the first. Runs inside the writer's transaction."""
        key = f"idseq:{table.name}"
        pk = list(table.primary_key.columns)
        if len(pk) != 1:
            raise ConfigError(f"allocate_ids needs a single-column primary key ({table.name})")
        highest = int((await conn.execute(select(func.max(pk[0])))).scalar() or 0)
        now = self.clock.now()
        # Make sure the counter row exists (a concurrent creator wins; ours is then ignored) ...
        ins = (pg_insert if self.dialect == "postgresql" else sqlite_insert)(schema.meta)
        await conn.execute(ins.values(key=key, value=0, updated_at=now).on_conflict_do_nothing())
        # ... then move it atomically. The UPDATE locks the row (PostgreSQL) or the database (SQLite) until
        # commit, so the read after it sees our own value and no one else can interleave.
        as_int = "CAST(value AS BIGINT)" if self.dialect == "postgresql" else "CAST(value AS INTEGER)"
        new_value = (f"CAST(GREATEST({as_int}, :highest) + :n AS TEXT)" if self.dialect == "postgresql"
                     else f"CAST(MAX({as_int}, :highest) + :n AS TEXT)")
        update = text(f"UPDATE meta SET value = {new_value}, updated_at = :now WHERE key = :key").bindparams(
            bindparam("now", type_=UTCDateTime()))
        await conn.execute(update, {"highest": highest, "n": count, "key": key, "now": now})
        current = await conn.execute(text("SELECT value FROM meta WHERE key = :key"), {"key": key})
        end = int(current.scalar_one())
        if self.dialect == "postgresql":
            seq = (await conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                      {"t": self._pg_table(table), "c": pk[0].name})).scalar()
            if seq:
                await conn.execute(text(
                    "SELECT setval(CAST(:s AS regclass), :e) "
                    "WHERE COALESCE(pg_sequence_last_value(CAST(:s AS regclass)), 0) < :e"),
                    {"s": seq, "e": end})
        return end - count + 1

    def _pg_table(self, table: Table) -> str:
        return f'"{self.schema_name}"."{table.name}"' if self.schema_name else f'"{table.name}"'

    async def delete_in_chunks(self, table: Table, where: ColumnElement[bool], chunk: int = 5000) -> int:
        """Delete the rows matching ``where`` in chunks of at most ``chunk`` rows, each its own writer job.

        For retention purges: other writes interleave between chunks, so a big purge never holds the writer
        for long. Returns the number of rows deleted."""
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        pk = list(table.primary_key.columns)
        rowid = "ctid" if self.dialect == "postgresql" else "rowid"
        key: Any = pk[0] if len(pk) == 1 else literal_column(rowid)
        victims = select(key).select_from(table).where(where).limit(chunk)
        if self.dialect == "postgresql" and len(pk) != 1:
            stmt = table.delete().where(key == func.any(func.array(victims.scalar_subquery())))
        else:
            stmt = table.delete().where(key.in_(victims))
        total = 0
        while True:
            done = int(await self.execute(stmt, heavy=True) or 0)
            total += done
            if done < chunk:
                return total
            await asyncio.sleep(0)

    # -- small key/value state -------------------------------------------------------------------------------
    async def get_meta(self, key: str) -> Any:
        return await self.scalar(select(schema.meta.c.value).where(schema.meta.c.key == key))

    async def set_meta(self, key: str, value: Any) -> None:
        """Store a small JSON value under ``key`` (an upsert, safe with several writers)."""
        now = self.clock.now()
        ins = (pg_insert if self.dialect == "postgresql" else sqlite_insert)(schema.meta)
        stmt = ins.values(key=key, value=value, updated_at=now).on_conflict_do_update(
            index_elements=[schema.meta.c.key], set_={"value": ins.excluded.value, "updated_at": now})

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(stmt)

        await self.write(op)

    # -- health ----------------------------------------------------------------------------------------------
    async def ready(self) -> tuple[bool, str]:
        """(ready, reason) for /readyz: the database answers and the writer is not stuck retrying."""
        if self.engine is None or self.writer is None:
            return False, "store not started"
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
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
