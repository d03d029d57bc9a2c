"""SQLite specifics: WAL, synchronous level, real transactions for the writer, the executemany bulk path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from citydata.store.writer import BulkInserter, ConflictMode


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
        if writer:
            dbapi_conn.isolation_level = None

    if writer:
        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def bind_processors(table: Table, columns: Sequence[str], dialect: Dialect) -> list[Any]:
    """SQLAlchemy's own bind processors per column, so the raw path stores exactly what Core would."""
    return [table.c[name].type._cached_bind_processor(dialect) for name in columns]


class SQLiteBulk(BulkInserter):
    """``INSERT [OR IGNORE] ... VALUES (?, ...)``: one ``executemany`` per caller, all in one transaction."""

    def __init__(self) -> None:
        self._sql: dict[tuple[str, tuple[str, ...], str], tuple[str, list[Any]]] = {}

    async def insert_parts(self, conn: AsyncConnection, table: Table, columns: tuple[str, ...],
                           parts: Sequence[Sequence[dict[str, Any]]], conflict: ConflictMode) -> list[int]:
        key = (table.name, columns, conflict)
        if key not in self._sql:
            verb = "INSERT OR IGNORE" if conflict == "ignore" else "INSERT"
            cols = ", ".join(f'"{c}"' for c in columns)
            sql = f'{verb} INTO "{table.name}" ({cols}) VALUES ({", ".join("?" * len(columns))})'
            self._sql[key] = (sql, bind_processors(table, columns, conn.dialect))
        sql, procs = self._sql[key]
        conv = [(i, p) for i, p in enumerate(procs) if p is not None]
        raw = await conn.get_raw_connection()
        cursor = raw.driver_connection.cursor  # type: ignore[union-attr]
        cur = await cursor()
        counts: list[int] = []
        try:
            for rows in parts:
                params = []
                for r in rows:
                    values = [r[c] for c in columns]
                    for i, p in conv:
                        values[i] = p(values[i])
                    params.append(values)
                await cur.executemany(sql, params)
                count = cur.rowcount
                counts.append(int(count) if count is not None and count >= 0 else len(rows))
            return counts
        finally:
            await cur.close()
