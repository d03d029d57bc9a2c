"""PostgreSQL specifics: schema (search_path), the COPY bulk path, PostGIS detection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.store.writer import BulkInserter, ConflictMode


def bind_value(table: Table, column: str, value: Any) -> Any:
    """What asyncpg's COPY needs for a value: JSON as text, datetimes as they are (timestamptz)."""
    from citydata.store.types import JSONText

    if value is not None and isinstance(table.c[column].type, JSONText):
        import orjson

        return orjson.dumps(value).decode()
    return value


class PostgresBulk(BulkInserter):
    """COPY into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.

    With ``conflict="error"`` the rows are COPYed straight into the table (the fastest path)."""

    def __init__(self, schema: str | None) -> None:
        self.schema = schema
        self._staging: set[tuple[int, str]] = set()

    async def insert(self, conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]],
                     conflict: ConflictMode) -> int:
        columns = list(rows[0].keys())
        records = [tuple(bind_value(table, c, r[c]) for c in columns) for r in rows]
        raw = await conn.get_raw_connection()
        apg: Any = raw.driver_connection
        if conflict == "error":
            await apg.copy_records_to_table(table.name, records=records, columns=columns,
                                            schema_name=self.schema)
            return len(records)
        staging = f"_stage_{table.name}"
        key = (id(apg), staging)
        if key not in self._staging:
            await apg.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" '
                              f'(LIKE "{self._qualified(table)}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS')
            self._staging.add(key)
        await apg.copy_records_to_table(staging, records=records, columns=columns)
        cols = ", ".join(f'"{c}"' for c in columns)
        status = await apg.execute(f'INSERT INTO "{self._qualified(table)}" ({cols}) '
                                   f'SELECT {cols} FROM "{staging}" ON CONFLICT DO NOTHING')
        await apg.execute(f'TRUNCATE "{staging}"')
        return int(status.rsplit(" ", 1)[-1])

    def _qualified(self, table: Table) -> str:
        return f'{self.schema}"."{table.name}' if self.schema else table.name


async def has_postgis(conn: AsyncConnection) -> bool:
    """True when PostGIS is installed in this database, or can be created."""
    available = (await conn.execute(text(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'"))).scalar_one()
    return bool(available)
