"""SQLite specifics: WAL, synchronous level, real transactions for the writer, the executemany bulk path."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import aiosqlite
from sqlalchemy import Table, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from citydata.store.types import UTCDateTime
from citydata.store.writer import BulkInserter, ConflictMode

# A bulk insert of more rows than this runs on the connection's thread (the driver releases the GIL while SQLite
# works, so the event loop goes on in parallel); smaller ones run inline.
INLINE_MAX_ROWS = 500

# SQL functions that capabilities add to every SQLite connection ("module:function", resolved lazily on connect,
# so the store does not import the capabilities at import time). PostgreSQL gets the same through PostGIS or the
# query compiler's own fallbacks.
SQLITE_FUNCTION_PROVIDERS: tuple[str, ...] = ("citydata.sensorthings.query.geo:register_sqlite_functions",)


def _register_functions(dbapi_conn: Any) -> None:
    import importlib

    for provider in SQLITE_FUNCTION_PROVIDERS:
        module, _, name = provider.partition(":")
        getattr(importlib.import_module(module), name)(dbapi_conn)


def configure_sqlite(engine: AsyncEngine, synchronous: str, *, writer: bool, cache_mib: int = 64) -> None:
    """Set the pragmas on every new connection. Readers get ``query_only`` so nothing bypasses the writer.
    ``cache_mib``: the connection's page cache (SQLite never gives it back while the connection lives, so the
    process holds up to this much per pooled connection).

    The writer's connection leaves transaction control to SQLAlchemy (``isolation_level=None`` on the driver)
    and starts each transaction with ``BEGIN IMMEDIATE``: the write lock is taken up front, so a
    read-modify-write in one batch (id blocks, counters) is atomic even with several processes on one file,
    and savepoints behave as documented."""
    if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA", "OFF"):
        raise ValueError(f"invalid SQLite synchronous level {synchronous!r}")

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        # The writer's temporary structures are small (one batch); a reader's are the rollup rebuilds' sorts and
        # DISTINCTs over hours of presence: on a file (the OS page cache) they are bounded by the cache instead
        # of growing the heap by hundreds of MiB that the allocator then keeps.
        cur.execute(f"PRAGMA temp_store={'MEMORY' if writer else 'FILE'}")
        cur.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
        if not writer:
            cur.execute("PRAGMA query_only=ON")
        cur.close()
        _register_functions(dbapi_conn)
        if writer:
            dbapi_conn.isolation_level = None

    if writer:
        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class InlineConnection(aiosqlite.Connection):
    """The writer's aiosqlite connection, with statements run on the event loop's thread.

    aiosqlite runs every call on the connection's own thread, and SQLAlchemy makes three or four calls per
    statement (cursor, execute, fetch, close): each is a trip to that thread and back, i.e. a GIL hand-over and
    a full event-loop iteration. Under load an iteration takes milliseconds, so the single writer spent its
    time waiting for its own round trips (a few hundred statements a second with the loop busy, while the
    disk and the CPU idled). A statement in a WAL transaction takes microseconds of CPU, so here it runs
    inline. What can wait runs on the thread as before: ``BEGIN`` (it may wait for another process's write
    lock), ``COMMIT`` (the fsync; a WAL checkpoint), ``ROLLBACK``, closing, and everything while ``offload``
    is set (the writer sets it for jobs submitted as ``heavy``: rollup rebuilds, purges)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int = 64) -> None:
        super().__init__(connector, iter_chunk_size)
        self.offload = False
        self.inline_calls = 0
        self.thread_calls = 0

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.offload or not self._running or self._connection is None or self._blocking(fn, args):
            self.thread_calls += 1
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        self.inline_calls += 1
        return fn(*args, **kwargs)

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the connection's thread, whatever it is."""
        self.thread_calls += 1
        return await super()._execute(fn, *args)  # type: ignore[no-untyped-call]

    def _blocking(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        conn = self._connection
        if conn is None or fn == conn.commit or fn == conn.rollback or fn == conn.close:
            return True
        if args and isinstance(args[0], str):
            head = args[0].lstrip()[:8].upper()
            return head.startswith(("BEGIN", "COMMIT", "END", "ROLLBACK", "VACUUM", "PRAGMA"))
        return False


def inline_connector(database: str) -> Callable[[], Any]:
    """``async_creator`` for the writer's engine: an ``InlineConnection`` to ``database``."""
    async def create() -> InlineConnection:
        conn = InlineConnection(lambda: sqlite3.connect(database, check_same_thread=False))
        conn._thread.daemon = True   # as SQLAlchemy does for its own aiosqlite connections
        await conn
        return conn

    return create


def utc_text(value: datetime | None) -> str | None:
    """What ``UTCDateTime`` stores on SQLite (naive UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``), without the detour
    through SQLAlchemy's generic formatter: the bulk path converts hundreds of thousands of these."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def bind_processors(table: Table, columns: Sequence[str], dialect: Dialect) -> list[Any]:
    """Bind processors per column, so the raw path stores exactly what Core would (SQLAlchemy's own, except
    for the fast equivalent for UTC datetimes)."""
    return [utc_text if isinstance(table.c[name].type, UTCDateTime)
            else table.c[name].type._cached_bind_processor(dialect) for name in columns]


class SQLiteBulk(BulkInserter):
    """``INSERT [OR IGNORE] ... VALUES (?, ...)`` with one ``executemany`` per caller (exact counts of new
    rows), all parts of a batch in one trip to the driver's thread, in the writer's transaction."""

    def __init__(self, dialect: Dialect | None = None) -> None:
        from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite

        self.dialect = dialect if dialect is not None else SQLiteDialect_aiosqlite()
        self._sql: dict[tuple[str, tuple[str, ...], str], str] = {}
        self._procs: dict[tuple[str, tuple[str, ...]], list[tuple[int, Any]]] = {}

    def prepare(self, table: Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> list[Any]:
        key = (table.name, columns)
        conv = self._procs.get(key)
        if conv is None:
            procs = bind_processors(table, columns, self.dialect)
            conv = self._procs[key] = [(i, p) for i, p in enumerate(procs) if p is not None]
        getter = itemgetter(*columns)
        if not conv:
            return [getter(r) for r in rows] if len(columns) > 1 else [(getter(r),) for r in rows]
        params: list[Any] = [list(getter(r)) for r in rows] if len(columns) > 1 else [[getter(r)] for r in rows]
        for i, p in conv:  # column by column: one tight loop per converted column
            if p is utc_text:
                for values in params:
                    v = values[i]
                    if v is not None and v.tzinfo is UTC:
                        values[i] = v.isoformat(" ", "microseconds")[:26]
                    else:
                        values[i] = utc_text(v)
            else:
                for values in params:
                    values[i] = p(values[i])
        return params

    def _statement(self, table: Table, columns: tuple[str, ...], conflict: ConflictMode) -> str:
        key = (table.name, columns, conflict)
        sql = self._sql.get(key)
        if sql is None:
            verb = "INSERT OR IGNORE" if conflict == "ignore" else "INSERT"
            cols = ", ".join(f'"{c}"' for c in columns)
            sql = self._sql[key] = (f'{verb} INTO "{table.name}" ({cols}) '
                                    f'VALUES ({", ".join("?" * len(columns))})')
        return sql

    async def insert_parts(self, conn: AsyncConnection, table: Table, columns: tuple[str, ...],
                           parts: Sequence[list[Any]], conflict: ConflictMode, *,
                           exact: bool = False) -> list[int]:
        sql = self._statement(table, columns, conflict)
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        run = getattr(driver, "_execute", None)
        sqlite_conn = getattr(driver, "_conn", None)
        if run is not None and isinstance(sqlite_conn, sqlite3.Connection):
            # All parts in one call (one executemany per part, for exact counts): inline when small (see
            # InlineConnection), else in one hop to the connection's thread.
            if isinstance(driver, InlineConnection) and sum(len(p) for p in parts) > INLINE_MAX_ROWS:
                return list(await driver.in_thread(_insert_parts, sqlite_conn, sql, parts))
            return list(await run(_insert_parts, sqlite_conn, sql, parts))
        cur = await driver.cursor()
        try:
            counts = []
            for part in parts:
                await cur.executemany(sql, part)
                counts.append(_count(cur.rowcount, len(part)))
            return counts
        finally:
            await cur.close()


def _insert_parts(conn: sqlite3.Connection, sql: str, parts: Sequence[list[Any]]) -> list[int]:
    cur = conn.cursor()
    try:
        counts = []
        for part in parts:
            cur.executemany(sql, part)
            counts.append(_count(cur.rowcount, len(part)))
        return counts
    finally:
        cur.close()


def _count(rowcount: int | None, given: int) -> int:
    return int(rowcount) if rowcount is not None and rowcount >= 0 else given
