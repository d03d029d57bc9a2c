"""SQLite specifics: WAL, synchronous level, real transactions for the writer, the executemany bulk path."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from citydata.store.types import UTCDateTime
from citydata.store.writer import BulkInserter, ConflictMode

# SQL functions that capabilities add to every SQLite connection ("module:function", resolved lazily on connect,
# so the store does not import the capabilities at import time). PostgreSQL gets the same through PostGIS or the
# query compiler's own fallbacks.
SQLITE_FUNCTION_PROVIDERS: tuple[str, ...] = ("citydata.sensorthings.query.geo:register_sqlite_functions",)


def _register_functions(dbapi_conn: Any) -> None:
    import importlib

    for provider in SQLITE_FUNCTION_PROVIDERS:
        module, _, name = provider.partition(":")
        getattr(importlib.import_module(module), name)(dbapi_conn)


def configure_sqlite(engine: AsyncEngine, synchronous: str, *, writer: bool) -> None:
    """Set the pragmas on every new connection. Readers get ``query_only`` so nothing bypasses the writer.

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
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA cache_size=-65536")
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
            # All parts in one hop to aiosqlite's thread (one executemany per part, for exact counts).
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
