"""``DatasetService``: import government dataset files as typed, versioned, geography-joined tables.

An import reads the whole file, types every column (declared, or inferred from the values), parses every
value, joins each row to the reference geography, and collects every rejected row with its line and reason.
Then either the new version is written, rows and all, in one transaction (``store.write``: one savepoint, so
it is committed whole or not at all), or, when rows were rejected and ``allow_rejected`` is off, nothing is
written. Either way the report lists every rejection.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.clock import Clock
from citydata.datasets import types as T
from citydata.datasets.geojoin import GeoJoin, Joiner
from citydata.datasets.readers import detect_format, read_source
from citydata.datasets.schema import dataset_rows, dataset_versions, datasets
from citydata.errors import NotFound, ValidationFailed
from citydata.geo import Geography
from citydata.store import Store

log = logging.getLogger(__name__)
NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
MAX_REJECTIONS_STORED = 1000
INSERT_CHUNK = 1000


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str


@dataclass
class ImportReport:
    name: str
    source: str
    format: str
    rows: int = 0
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    columns: list[dict[str, Any]] = field(default_factory=list)
    version: int | None = None            # None: nothing was committed

    @property
    def committed(self) -> bool:
        return self.version is not None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "format": self.format, "rows": self.rows,
                "accepted": self.accepted, "rejected": [{"line": r.line, "reason": r.reason} for r in self.rejected],
                "columns": self.columns, "version": self.version, "committed": self.committed}


@dataclass(frozen=True)
class ImportOptions:
    types: dict[str, str] = field(default_factory=dict)       # declared column types
    required: tuple[str, ...] = ()
    join: GeoJoin | None = None
    allow_rejected: bool = False
    format: str | None = None
    sheet: str | None = None
    tz: timezone = T.ICT
    created_by: str = "cli"


def _plain(row: Any) -> dict[str, Any]:
    """A row mapping as a dict with plain ``str`` keys (SQLAlchemy's are ``quoted_name``)."""
    return {str(k): v for k, v in row.items()}


class DatasetService:
    def __init__(self, store: Store, geography: Geography, clock: Clock) -> None:
        self.store, self.geography, self.clock = store, geography, clock

    # -- import ---------------------------------------------------------------------------------------------
    async def import_file(self, path: Path, name: str, options: ImportOptions | None = None,
                          progress: Callable[[int], None] | None = None,
                          on_total: Callable[[int], None] | None = None) -> ImportReport:
        opts = options or ImportOptions()
        if not NAME.match(name):
            raise ValidationFailed(f"dataset name {name!r}: lower-case letters, digits and _ (2-63, starting "
                                   f"with a letter)", code="bad_name")
        fmt = detect_format(path, opts.format)
        source = await asyncio.to_thread(read_source, path, fmt, sheet=opts.sheet)
        if on_total is not None:
            on_total(len(source.rows))
        report = ImportReport(name, path.name, fmt, rows=len(source.rows))
        for col, type_ in opts.types.items():
            if type_ not in T.TYPES:
                raise ValidationFailed(f"--type {col}={type_}: unknown type ({', '.join(T.TYPES)})",
                                       code="bad_type")
            if col not in source.columns:
                raise ValidationFailed(f"--type {col}: no such column in {path.name}", code="bad_column")
        for col in (*opts.required, *(opts.join.columns if opts.join else ())):
            if col not in source.columns:
                raise ValidationFailed(f"no column {col!r} in {path.name} (columns: {', '.join(source.columns)})",
                                       code="bad_column")
        col_types = {c: opts.types.get(c) or T.infer([r.values.get(c) for r in source.rows])
                     for c in source.columns}
        report.columns = [{"name": c, "type": t, "declared": c in opts.types} for c, t in col_types.items()]
        joiner = Joiner(self.geography, opts.join) if opts.join else None
        good: list[dict[str, Any]] = []
        for i, row in enumerate(source.rows):
            reasons: list[str] = []
            if "__error__" in row.values:
                reasons.append(str(row.values.pop("__error__")))
            data: dict[str, Any] = {}
            for col, type_ in col_types.items():
                try:
                    value = T.parse(row.values.get(col), type_, opts.tz)
                except T.BadValue as err:
                    reasons.append(f"{col}: {err}")
                    continue
                if value is None and col in opts.required:
                    reasons.append(f"{col}: required value missing")
                data[col] = T.to_json(value)
            place_id = None
            if joiner is not None:
                try:
                    place_id = joiner.place_for(row.values, row.geometry).id
                except ValueError as err:
                    reasons.append(str(err))
            if reasons:
                report.rejected.append(Rejection(row.line, "; ".join(reasons)))
            else:
                good.append({"row": row.line, "place_id": place_id, "data": data, "geometry": row.geometry})
            if progress is not None and (i % 200 == 199 or i == len(source.rows) - 1):
                progress(200 if i % 200 == 199 else (i % 200) + 1)
        report.accepted = len(good)
        if report.rejected and not opts.allow_rejected:
            log.info("dataset %s: %d rows rejected, nothing imported", name, len(report.rejected))
            return report
        if not good:
            return report
        digest = hashlib.sha256(source.raw).hexdigest()
        meta = {"source": path.name, "format": fmt, "sha256": digest, "columns": report.columns,
                "geo": opts.join.describe() if opts.join else None, "row_count": len(good),
                "rejected_count": len(report.rejected),
                "rejections": [{"line": r.line, "reason": r.reason}
                               for r in report.rejected[:MAX_REJECTIONS_STORED]],
                "created_by": opts.created_by}
        report.version = await self._commit(name, meta, good)
        log.info("dataset %s version %d: %d rows (%d rejected)", name, report.version, len(good),
                 len(report.rejected))
        return report

    async def _commit(self, name: str, meta: dict[str, Any], rows: list[dict[str, Any]]) -> int:
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> int:
            current = (await conn.execute(select(func.max(dataset_versions.c.version))
                                          .where(dataset_versions.c.name == name))).scalar()
            version = int(current or 0) + 1
            await conn.execute(dataset_versions.insert().values(name=name, version=version, created_at=now,
                                                                **meta))
            for i in range(0, len(rows), INSERT_CHUNK):
                await conn.execute(dataset_rows.insert(), [{"name": name, "version": version, **r}
                                                           for r in rows[i:i + INSERT_CHUNK]])
            updated = (await conn.execute(datasets.update().where(datasets.c.name == name)
                                          .values(current_version=version, updated_at=now))).rowcount
            if not updated:
                await conn.execute(datasets.insert().values(name=name, current_version=version, created_at=now,
                                                            updated_at=now))
            return version

        # the writer's buffer accounting: a version larger than the buffer must still be admissible
        weight = min(len(rows) + 2, max(1, self.store.settings.db_write_buffer // 2))
        return int(await self.store.write(op, rows=weight))

    # -- reads ----------------------------------------------------------------------------------------------
    async def all(self) -> list[dict[str, Any]]:
        d, v = datasets, dataset_versions
        rows = await self.store.fetch_all(
            select(d.c.name, d.c.current_version, d.c.updated_at, v.c.source, v.c.row_count, v.c.rejected_count,
                   v.c.columns).join(v, (v.c.name == d.c.name) & (v.c.version == d.c.current_version))
            .order_by(d.c.name))
        return [_plain(r) for r in rows]

    async def version(self, name: str, version: int | None = None) -> dict[str, Any]:
        """The version's metadata (the current version by default)."""
        v = dataset_versions
        if version is None:
            current = await self.store.scalar(select(datasets.c.current_version).where(datasets.c.name == name))
            if current is None:
                raise NotFound(f"no dataset {name!r}", code="dataset_not_found")
            version = int(current)
        row = await self.store.fetch_one(select(v).where(v.c.name == name, v.c.version == version))
        if row is None:
            raise NotFound(f"no version {version} of dataset {name!r}", code="dataset_not_found")
        return _plain(row)

    async def versions(self, name: str) -> list[dict[str, Any]]:
        v = dataset_versions
        rows = await self.store.fetch_all(
            select(v.c.version, v.c.source, v.c.sha256, v.c.row_count, v.c.rejected_count, v.c.created_at,
                   v.c.created_by).where(v.c.name == name).order_by(v.c.version))
        if not rows:
            raise NotFound(f"no dataset {name!r}", code="dataset_not_found")
        return [_plain(r) for r in rows]

    async def rows(self, name: str, version: int | None = None) -> list[dict[str, Any]]:
        """Every row of the version: ``{"row", "place_id", "data", "geometry"}``."""
        meta = await self.version(name, version)
        r = dataset_rows
        found = await self.store.fetch_all(
            select(r.c.row, r.c.place_id, r.c.data, r.c.geometry)
            .where(r.c.name == name, r.c.version == meta["version"]).order_by(r.c.row))
        return [_plain(x) for x in found]

    async def exists(self, name: str) -> bool:
        return await self.store.scalar(select(datasets.c.name).where(datasets.c.name == name)) is not None
