"""SQLite specifics: WAL, synchronous level, and the executemany bulk path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from citydata.store.writer import BulkInserter, ConflictMode


def configure_sqlite(engine: AsyncEngine, synchronous: str, *, writer: bool) -> None:
    """Set the pragmas on every new connection. Readers get ``query_only`` so nothing bypasses the writer."""

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # aiosqlite's adapter runs SQL in its own thread; isolation is handled by SQLAlchemy.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA cache_size=-65536")
        if not writer:
            cur.execute("PRAGMA query_only=ON")
        cur.close()


def bind_processors(table: Table, columns: Sequence[str], dialect: Dialect) -> list[Any]:
    """SQLAlchemy's own bind processors per column, so the raw path stores exactly what Core would."""
    return [table.c[name].type._cached_bind_processor(dialect) for name in columns]


class SQLiteBulk(BulkInserter):
    """``INSERT [OR IGNORE] ... VALUES (?, ...)`` with one ``executemany`` per batch."""

    def __init__(self) -> None:
        self._sql: dict[tuple[str, tuple[str, ...], str], tuple[str, list[Any]]] = {}

    async def insert(self, conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]],
                     conflict: ConflictMode) -> int:
        columns = tuple(rows[0].keys())
        key = (table.name, columns, conflict)
        if key not in self._sql:
            verb = "INSERT OR IGNORE" if conflict == "ignore" else "INSERT"
            sql = f'{verb} INTO "{table.name}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
            self._sql[key] = (sql, bind_processors(table, columns, conn.dialect))
        sql, procs = self._sql[key]
        params = [tuple(p(r[c]) if p is not None else r[c] for c, p in zip(columns, procs, strict=True))
                  for r in rows]
        raw = await conn.get_raw_connection()
        cursor = raw.driver_connection.cursor  # type: ignore[union-attr]
        cur = await cursor()
        try:
            await cur.executemany(sql, params)
            return int(cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else len(rows))
        finally:
            await cur.close()
