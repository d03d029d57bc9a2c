"""PostgreSQL specifics: schema (search_path), the COPY bulk path, PostGIS detection, migration lock."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.store.types import JSONText, UTCDateTime
from citydata.store.writer import BulkInserter, ConflictMode

MIGRATION_LOCK = 0x43495459_44415441  # "CITYDATA": one Store migrates a database at a time


def _json(value: Any) -> Any:
    return None if value is None else orjson.dumps(value).decode()


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value if value.tzinfo is UTC else value.astimezone(UTC)
    return value


def converters(table: Table, columns: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    """What asyncpg's COPY needs per column: JSON as text, datetimes aware (timestamptz), the rest as is."""
    out: list[Callable[[Any], Any] | None] = []
    for c in columns:
        kind = table.c[c].type
        out.append(_json if isinstance(kind, JSONText) else _utc if isinstance(kind, UTCDateTime) else None)
    return out


def bind_value(table: Table, column: str, value: Any) -> Any:
    """One value as COPY wants it (kept for callers of the old helper)."""
    conv = converters(table, [column])[0]
    return conv(value) if conv is not None else value


class PostgresBulk(BulkInserter):
    """COPY for bulk writes.

    ``conflict="error"``, and ``"ignore"`` on the writer's optimistic first try: COPY straight into the table
    (duplicates are rare, and this is the fastest path). ``"ignore"`` with ``exact=True`` (the writer's second
    try, after a conflict): COPY into a temporary staging table (one per table and column set, emptied at
    commit) tagged with the caller's part number, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per
    part, which gives each caller its exact count of new rows.
    """

    def __init__(self, schema: str | None) -> None:
        self.schema = schema
        self._conv: dict[tuple[str, tuple[str, ...]], list[Callable[[Any], Any] | None]] = {}

    def prepare(self, table: Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> list[Any]:
        key = (table.name, columns)
        conv = self._conv.get(key)
        if conv is None:
            conv = self._conv[key] = converters(table, columns)
        getter = itemgetter(*columns)
        records: list[Any] = [getter(r) for r in rows] if len(columns) > 1 else [(getter(r),) for r in rows]
        times = [i for i, f in enumerate(conv) if f is _utc]
        others = [(i, f) for i, f in enumerate(conv) if f is not None and f is not _utc]
        if others:
            for n, rec in enumerate(records):
                values = list(rec)
                for i, f in others:
                    values[i] = f(values[i])
                records[n] = tuple(values)
        for i in times:  # the common case costs one attribute read per value: aware UTC passes as is
            for n, rec in enumerate(records):
                value = rec[i]
                if value is not None and getattr(value, "tzinfo", UTC) is not UTC:
                    records[n] = (*rec[:i], _utc(value), *rec[i + 1:])
        return records

    async def insert_parts(self, conn: AsyncConnection, table: Table, columns: tuple[str, ...],
                           parts: Sequence[list[Any]], conflict: ConflictMode, *,
                           exact: bool = False) -> list[int]:
        raw = await conn.get_raw_connection()
        apg: Any = raw.driver_connection
        await _ensure_begun(raw.dbapi_connection, apg, conn)
        cols = list(columns)
        if conflict == "error" or not exact:
            # Straight COPY: every row must be new. With "ignore", a duplicate fails the batch's optimistic
            # transaction and the writer runs the job again with exact=True.
            records = parts[0] if len(parts) == 1 else [rec for rows in parts for rec in rows]
            await apg.copy_records_to_table(table.name, records=records, columns=cols,
                                            schema_name=self.schema)
            return [len(rows) for rows in parts]
        staging = await self._staging(apg, table, columns)
        staged = [(*rec, i) for i, rows in enumerate(parts) for rec in rows]
        await apg.copy_records_to_table(staging, records=staged, columns=[*cols, "_part"])
        quoted = ", ".join(f'"{c}"' for c in cols)
        counts = []
        for i in range(len(parts)):
            status = await apg.execute(
                f'INSERT INTO {self._qualified(table)} ({quoted}) SELECT {quoted} FROM "{staging}" '
                f"WHERE _part = {i} ON CONFLICT DO NOTHING")
            counts.append(int(status.rsplit(" ", 1)[-1]))
        await apg.execute(f'DELETE FROM "{staging}"')
        return counts

    async def _staging(self, apg: Any, table: Table, columns: tuple[str, ...]) -> str:
        digest = hashlib.sha1(",".join(columns).encode(), usedforsecurity=False).hexdigest()[:10]
        name = f"_stage_{table.name[:40]}_{digest}"
        quoted = ", ".join(f'"{c}"' for c in columns)
        # Created (if missing) in every transaction that needs it: a rollback undoes the CREATE.
        await apg.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{name}" ON COMMIT DELETE ROWS AS '
                          f"SELECT {quoted}, 0 AS _part FROM {self._qualified(table)} WITH NO DATA")
        return name

    def _qualified(self, table: Table) -> str:
        return f'"{self.schema}"."{table.name}"' if self.schema else f'"{table.name}"'


async def _ensure_begun(adapter: Any, apg: Any, conn: AsyncConnection) -> None:
    """SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement it runs itself; COPY on the
    driver connection before that would run (and commit) outside the writer's transaction."""
    if apg.is_in_transaction():
        return
    start = getattr(adapter, "_start_transaction", None)
    if start is not None and getattr(adapter, "_transaction", True) is None:
        await start()  # just the BEGIN
    else:
        await conn.exec_driver_sql("SELECT 1")
    if not apg.is_in_transaction():
        raise RuntimeError("bulk insert outside a transaction")


async def has_postgis(conn: AsyncConnection) -> bool:
    """True when PostGIS is installed in this database, or can be created."""
    available = (await conn.execute(text(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'"))).scalar_one()
    return bool(available)
