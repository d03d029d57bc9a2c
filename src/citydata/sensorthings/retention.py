"""Rollups and retention of raw Observations.

``RetentionService.rollup(until)`` aggregates the numeric Observations of every hour that ended before ``until``
into ``observation_rollups`` (hour rows), and merges the hours of each local day into day rows. It recomputes
whole buckets, so running it twice gives the same rows. A watermark (``meta`` key ``sta_rollup:until``) makes
each run start where the last stopped; Observations that arrive later for older hours (a CSV import of history)
are picked up by ``refresh(start, end)``, which the importer calls, and by the purge.

``purge(until)`` deletes the raw numeric Observations older than ``until`` (never past the watermark, never
the latest Observation of a stream, so ``latest_observations`` stays valid), in bounded chunks, each its own
writer transaction. Each chunk folds the rows it deletes into their hour row's ``purged_*`` aggregate and
recomputes the bucket, in the same transaction: a bucket always equals ``purged ⊕ raw rows still stored``,
so rollups stay exact however rollup and purge interleave.

Both work in bounded pieces (at most one local day of ``STREAM_CHUNK`` streams per transaction), so they never
hold the single writer for long. On PostgreSQL a transaction-scoped advisory lock serialises them across
nodes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import BigInteger, and_, func, literal_column, select, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.errors import ValidationFailed
from citydata.ops.periodic import Periodic
from citydata.sensorthings import schema as sta
from citydata.sensorthings.rollups_schema import observation_rollups as rollups
from citydata.store.schema import latest_observations, observations

if TYPE_CHECKING:
    from citydata.clock import Clock
    from citydata.config import Settings
    from citydata.store import Store

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WATERMARK_KEY = "sta_rollup:until"
ADVISORY_LOCK = 0x43445254   # "CDRT"
STREAM_CHUNK = 200
SEARCH_AFTER = timedelta(days=2)   # longer ranges look up where each stream has data instead of walking every day
Period = Literal["hour", "day"]
Key = tuple[int, datetime]         # (datastream id, bucket start)
_AGG_COLUMNS = ("count", "sum", "min", "max", "first_time", "last_time", "last_result")


@dataclass(frozen=True)
class Agg:
    """count, sum, min, max, first and last phenomenon time, and the last result of some Observations."""

    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    first_time: datetime | None = None
    last_time: datetime | None = None
    last_result: float | None = None

    def merge(self, other: Agg) -> Agg:
        if not other.count:
            return self
        if not self.count:
            return other
        assert self.min is not None and self.max is not None and other.min is not None and other.max is not None
        assert self.first_time and self.last_time and other.first_time and other.last_time
        later = other if other.last_time > self.last_time else self
        return Agg(self.count + other.count, self.sum + other.sum, min(self.min, other.min),
                   max(self.max, other.max), min(self.first_time, other.first_time), later.last_time,
                   later.last_result)

    @classmethod
    def of(cls, row: Any, prefix: str = "") -> Agg:
        count = row[f"{prefix}count"]
        if not count:
            return cls()
        return cls(int(count), float(row[f"{prefix}sum"]), row[f"{prefix}min"], row[f"{prefix}max"],
                   row[f"{prefix}first_time"], row[f"{prefix}last_time"], row[f"{prefix}last_result"])

    def columns(self, prefix: str = "") -> dict[str, Any]:
        return {f"{prefix}{name}": getattr(self, name) for name in _AGG_COLUMNS}


@dataclass(frozen=True)
class RetentionRun:
    until: datetime            # rolled up to (exclusive)
    rolled: int                # rollup rows written
    purged: int                # raw Observations deleted
    orphans: int               # rollup rows of deleted streams removed


def floor_hour(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _by_range(ranges: dict[int, tuple[datetime, datetime]]) -> dict[tuple[datetime, datetime], list[int]]:
    """Streams grouped by their time range (one query per distinct range)."""
    out: dict[tuple[datetime, datetime], list[int]] = {}
    for sid, span in sorted(ranges.items()):
        out.setdefault(span, []).append(sid)
    return out


def _chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield list(ids[i:i + size])


class RetentionService:
    """Hourly and daily rollups of numeric Observations, and the purge of expired raw ones."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store, self.clock = store, clock
        self.retention_days = settings.sta_raw_retention_days
        self.interval_s = settings.sta_rollup_interval_s
        self.lag = timedelta(seconds=settings.sta_rollup_lag_s)
        self.day_offset = timedelta(hours=settings.sta_rollup_day_offset_h)
        self.purge_chunk = settings.sta_purge_chunk
        self.last_run: RetentionRun | None = None
        self._periodic = Periodic("sta-retention", clock, self.interval_s, self.run_once)

    # -- the periodic task -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the periodic task (every ``sta_rollup_interval_s`` of the clock; 0 disables it)."""
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def run_once(self) -> RetentionRun:
        """Roll up every hour that ended ``sta_rollup_lag_s`` ago, purge raw Observations older than
        ``sta_raw_retention_days`` (when set), and drop the rollups of deleted streams."""
        now = self.clock.now()
        until = floor_hour(now - self.lag)
        rolled = await self.rollup(until)
        purged = await self.purge(now - timedelta(days=self.retention_days)) if self.retention_days > 0 else 0
        orphans = await self.drop_orphans()
        self.last_run = RetentionRun(until, rolled, purged, orphans)
        if rolled or purged or orphans:
            log.info("observation rollups to %s: %d rows written, %d raw rows purged, %d orphan rows dropped",
                     until.isoformat(), rolled, purged, orphans)
        return self.last_run

    # -- rollup ----------------------------------------------------------------------------------------------------
    async def watermark(self) -> datetime | None:
        """Every hour before this time is rolled up (None: never run)."""
        value = await self.store.get_meta(WATERMARK_KEY)
        return datetime.fromisoformat(value) if value else None

    async def rollup(self, until: datetime) -> int:
        """Roll up the hours that ended before ``until`` (rounded down to the hour) and not rolled up yet;
        returns the number of rollup rows written."""
        cutoff = floor_hour(until)
        mark = await self.watermark()
        if mark is not None and cutoff <= mark:
            return 0
        written = await self._rollup_range(mark, cutoff)
        await self.store.set_meta(WATERMARK_KEY, cutoff.isoformat())
        return written

    async def refresh(self, start: datetime, end: datetime) -> int:
        """Recompute the rollups of ``[start, end)`` (whole hours, up to the watermark): for Observations stored
        or deleted after their hours were rolled up, e.g. an import of history."""
        mark = await self.watermark()
        if mark is None:
            return 0
        lo, hi = floor_hour(start), min(floor_hour(end) + HOUR, mark)
        return await self._rollup_range(lo, hi) if lo < hi else 0

    async def _rollup_range(self, lo: datetime | None, hi: datetime) -> int:
        ids = await self._stream_ids()
        written = 0
        for chunk in _chunks(ids, STREAM_CHUNK):
            if lo is not None and hi - lo <= SEARCH_AFTER:
                cursor = lo
                while cursor < hi:
                    end = min(self.day_start(cursor) + DAY, hi)
                    written += await self._write(self._refresh_op, ids=chunk, lo=cursor, hi=end)
                    cursor = end
                continue
            cursor_or_none = lo
            while True:
                first = await self._next_time(chunk, cursor_or_none, hi)
                if first is None:
                    break
                start = floor_hour(first)
                end = min(self.day_start(start) + DAY, hi)
                written += await self._write(self._refresh_op, ids=chunk, lo=start, hi=end)
                cursor_or_none = end
        return written

    async def _next_time(self, ids: list[int], after: datetime | None, hi: datetime) -> datetime | None:
        """The earliest time in ``[after, hi)`` where one of the streams has a numeric Observation or a rollup
        row made only of raw rows (to drop it if those rows were deleted); one index lookup per stream."""
        o, r = observations, rollups
        best: datetime | None = None
        async with self.store.read() as conn:
            for sid in ids:
                raw = select(o.c.phenomenon_time).where(o.c.datastream_id == sid, o.c.phenomenon_time < hi,
                                                        o.c.result_number.is_not(None))
                rolled = select(r.c.bucket_start).where(r.c.datastream_id == sid, r.c.period == "hour",
                                                        r.c.bucket_start < hi,
                                                        func.coalesce(r.c.purged_count, 0) == 0)
                if after is not None:
                    raw = raw.where(o.c.phenomenon_time >= after)
                    rolled = rolled.where(r.c.bucket_start >= after)
                for stmt, col in ((raw, o.c.phenomenon_time), (rolled, r.c.bucket_start)):
                    found = (await conn.execute(stmt.order_by(col).limit(1))).scalar()
                    if found is not None and (best is None or found < best):
                        best = found
        return best

    async def _stream_ids(self) -> list[int]:
        rows = await self.store.fetch_all(select(latest_observations.c.datastream_id)
                                          .order_by(latest_observations.c.datastream_id))
        return [int(r["datastream_id"]) for r in rows]

    def day_start(self, t: datetime) -> datetime:
        """The start (in UTC) of the local day that holds ``t``."""
        local = t.astimezone(UTC) + self.day_offset
        return local.replace(hour=0, minute=0, second=0, microsecond=0) - self.day_offset

    async def _write(self, op: Any, **kwargs: Any) -> int:
        return int(await self.store.write(functools.partial(op, **kwargs)))

    async def _lock(self, conn: AsyncConnection) -> None:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK})

    async def _refresh_op(self, conn: AsyncConnection, *, ids: list[int], lo: datetime, hi: datetime) -> int:
        await self._lock(conn)
        return await self._refresh(conn, {sid: (lo, hi) for sid in ids}, {})

    # -- the bucket arithmetic (inside a writer transaction) ------------------------------------------------------
    def _hour_expr(self, dialect: str) -> Any:
        if dialect == "sqlite":
            sql = "CAST(strftime('%s', observations.phenomenon_time) AS INTEGER) / 3600"
        else:
            sql = "CAST(floor(extract(epoch FROM observations.phenomenon_time) / 3600) AS BIGINT)"
        return literal_column(sql, BigInteger)

    async def raw_hours(self, conn: AsyncConnection, ranges: dict[int, tuple[datetime, datetime]]) -> dict[Key, Agg]:
        """Hourly aggregates of the numeric Observations still stored, per stream in its ``[lo, hi)``."""
        if not ranges:
            return {}
        o = observations
        hour = self._hour_expr(conn.dialect.name)
        out: dict[Key, Agg] = {}
        for (lo, hi), sids in _by_range(ranges).items():
            groups = (select(o.c.datastream_id, hour.label("h"), func.count().label("n"),
                             func.sum(o.c.result_number).label("s"), func.min(o.c.result_number).label("mn"),
                             func.max(o.c.result_number).label("mx"), func.min(o.c.phenomenon_time).label("t0"),
                             func.max(o.c.phenomenon_time).label("t1"))
                      .where(o.c.datastream_id.in_(sids), o.c.phenomenon_time >= lo, o.c.phenomenon_time < hi,
                             o.c.result_number.is_not(None))
                      .group_by(o.c.datastream_id, hour).subquery())
            # the last result: of the newest Observation (several at one time: the highest id, as latest_observations)
            stmt = select(groups, o.c.result_number.label("last"), o.c.id.label("oid")).select_from(groups.join(
                o, and_(o.c.datastream_id == groups.c.datastream_id, o.c.phenomenon_time == groups.c.t1,
                        o.c.result_number.is_not(None))))
            best: dict[Key, int] = {}
            for row in (await conn.execute(stmt)).mappings():
                key = (int(row["datastream_id"]), datetime.fromtimestamp(int(row["h"]) * 3600, UTC))
                if key in best and best[key] > row["oid"]:
                    continue
                best[key] = row["oid"]
                out[key] = Agg(int(row["n"]), float(row["s"]), row["mn"], row["mx"], row["t0"], row["t1"], row["last"])
        return out

    async def _rows(self, conn: AsyncConnection, period: Period,
                    ranges: dict[int, tuple[datetime, datetime]]) -> dict[Key, Any]:
        r = rollups
        out: dict[Key, Any] = {}
        for (lo, hi), sids in _by_range(ranges).items():
            stmt = select(r).where(r.c.period == period, r.c.datastream_id.in_(sids), r.c.bucket_start >= lo,
                                   r.c.bucket_start < hi)
            for row in (await conn.execute(stmt)).mappings():
                out[(int(row["datastream_id"]), row["bucket_start"])] = row
        return out

    async def _refresh(self, conn: AsyncConnection, ranges: dict[int, tuple[datetime, datetime]],
                       newly_purged: dict[Key, Agg]) -> int:
        """Recompute the hour rows of each stream's ``[lo, hi)`` (hour-aligned) as ``purged ⊕ raw`` (adding
        ``newly_purged`` to their purged part), then the day rows of the days they touch. Returns rows
        written."""
        now = self.clock.now()
        raw = await self.raw_hours(conn, ranges)
        existing = await self._rows(conn, "hour", ranges)
        upserts: list[dict[str, Any]] = []
        deletes: list[tuple[int, str, datetime]] = []
        for key in sorted(set(raw) | set(existing) | set(newly_purged)):
            old = existing.get(key)
            purged = (Agg.of(old, "purged_") if old is not None else Agg()).merge(newly_purged.get(key, Agg()))
            total = purged.merge(raw.get(key, Agg()))
            if total.count == 0:
                if old is not None:
                    deletes.append((key[0], "hour", key[1]))
                continue
            upserts.append({"datastream_id": key[0], "period": "hour", "bucket_start": key[1], **total.columns(),
                            **(purged.columns("purged_") if purged.count else
                               dict.fromkeys(f"purged_{c}" for c in _AGG_COLUMNS)), "updated_at": now})
        await self._apply(conn, upserts, deletes)
        days = {sid: (self.day_start(lo), self.day_start(hi - timedelta(microseconds=1)) + DAY)
                for sid, (lo, hi) in ranges.items()}
        return len(upserts) + await self._refresh_days(conn, days, now)

    async def _refresh_days(self, conn: AsyncConnection, ranges: dict[int, tuple[datetime, datetime]],
                            now: datetime) -> int:
        hours = await self._rows(conn, "hour", ranges)
        existing = await self._rows(conn, "day", ranges)
        merged: dict[Key, Agg] = {}
        for (sid, bucket), row in sorted(hours.items()):
            key = (sid, self.day_start(bucket))
            merged[key] = merged.get(key, Agg()).merge(Agg.of(row))
        upserts = [{"datastream_id": sid, "period": "day", "bucket_start": day, **agg.columns(),
                    **dict.fromkeys(f"purged_{c}" for c in _AGG_COLUMNS), "updated_at": now}
                   for (sid, day), agg in sorted(merged.items())]
        deletes = [(sid, "day", day) for (sid, day) in existing if (sid, day) not in merged]
        await self._apply(conn, upserts, deletes)
        return len(upserts)

    async def _apply(self, conn: AsyncConnection, upserts: list[dict[str, Any]],
                     deletes: list[tuple[int, str, datetime]]) -> None:
        r = rollups
        insert = sqlite_dialect.insert if conn.dialect.name == "sqlite" else pg_dialect.insert
        for i in range(0, len(upserts), 500):
            stmt = insert(r).values(upserts[i:i + 500])
            keys = {"datastream_id", "period", "bucket_start"}
            stmt = stmt.on_conflict_do_update(
                index_elements=[r.c.datastream_id, r.c.period, r.c.bucket_start],
                set_={c.name: stmt.excluded[c.name] for c in r.columns if c.name not in keys})
            await conn.execute(stmt)
        for sid, period, bucket in deletes:
            await conn.execute(r.delete().where(r.c.datastream_id == sid, r.c.period == period,
                                                r.c.bucket_start == bucket))

    # -- purge -----------------------------------------------------------------------------------------------------
    async def purge(self, until: datetime) -> int:
        """Delete raw numeric Observations older than ``until`` that are rolled up (before the watermark),
        except each stream's latest, folding them into their buckets; returns the number deleted."""
        mark = await self.watermark()
        if mark is None:
            return 0
        cutoff = min(until.astimezone(UTC), mark)
        total = 0
        for chunk in _chunks(await self._stream_ids(), STREAM_CHUNK):
            while True:
                done = await self._write(self._purge_op, ids=chunk, cutoff=cutoff, limit=self.purge_chunk)
                total += done
                if done < self.purge_chunk:
                    break
                await asyncio.sleep(0)   # let other writes in between chunks
        return total

    async def _purge_op(self, conn: AsyncConnection, *, ids: list[int], cutoff: datetime, limit: int) -> int:
        # Not Store.delete_in_chunks: the deleted rows must be folded into their buckets in the same transaction.
        await self._lock(conn)
        o = observations
        victims = (select(o.c.id).where(o.c.datastream_id.in_(ids), o.c.phenomenon_time < cutoff,
                                        o.c.result_number.is_not(None),
                                        o.c.id.not_in(select(latest_observations.c.observation_id)))
                   .order_by(o.c.datastream_id, o.c.phenomenon_time).limit(limit))
        stmt = o.delete().where(o.c.id.in_(victims.scalar_subquery())).returning(
            o.c.datastream_id, o.c.phenomenon_time, o.c.result_number)
        gone = (await conn.execute(stmt)).all()
        if not gone:
            return 0
        folded: dict[Key, Agg] = {}
        for sid, at, value in gone:
            key = (int(sid), floor_hour(at))
            folded[key] = folded.get(key, Agg()).merge(Agg(1, float(value), value, value, at, at, value))
        ranges: dict[int, tuple[datetime, datetime]] = {}
        for sid, bucket in folded:
            lo, hi = ranges.get(sid, (bucket, bucket + HOUR))
            ranges[sid] = (min(lo, bucket), max(hi, bucket + HOUR))
        await self._refresh(conn, ranges, folded)
        return len(gone)

    async def drop_orphans(self) -> int:
        """Remove the rollups of streams that no longer exist."""
        r = rollups
        alive = select(sta.datastreams.c.id).union(select(latest_observations.c.datastream_id))
        return await self.store.delete_in_chunks(r, r.c.datastream_id.not_in(alive.scalar_subquery()))

    # -- reads -----------------------------------------------------------------------------------------------------
    async def series(self, datastream_id: int, period: Period, start: datetime, end: datetime, *,
                     live: bool = True) -> list[dict[str, Any]]:
        """The ``period`` buckets of a stream starting in ``[start, end)``, oldest first, each
        ``{bucket_start, count, sum, mean, min, max, first_time, last_time, last_result}``. With ``live``,
        the hours after the watermark are aggregated from the raw Observations on the fly."""
        if period not in ("hour", "day"):
            raise ValidationFailed("period: must be 'hour' or 'day'", code="invalid_query", field="period")
        r = rollups
        rows = await self.store.fetch_all(select(r).where(
            r.c.datastream_id == datastream_id, r.c.period == period, r.c.bucket_start >= start,
            r.c.bucket_start < end).order_by(r.c.bucket_start))
        buckets: dict[datetime, Agg] = {row["bucket_start"]: Agg.of(row) for row in rows}
        mark = await self.watermark()
        if live:
            lo = max(floor_hour(start) if period == "hour" else self.day_start(start), mark) if mark else start
            if lo < end:
                async with self.store.read() as conn:
                    tail = await self.raw_hours(conn, {datastream_id: (lo, end)})
                for (_, hour), agg in sorted(tail.items()):
                    bucket = hour if period == "hour" else self.day_start(hour)
                    if bucket >= start:
                        buckets[bucket] = buckets.get(bucket, Agg()).merge(agg)
        return [{"bucket_start": b, **a.columns(), "mean": a.sum / a.count}
                for b, a in sorted(buckets.items()) if a.count]
