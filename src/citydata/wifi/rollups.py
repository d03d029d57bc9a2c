"""Footfall rollups, kept incrementally.

``flush(delta)`` adds the presence gathered in memory to ``wifi_presence`` (an upsert that adds sessions and
dwell) and marks its hours dirty; ``recompute_hour`` / ``recompute_day`` rebuild the rollup rows of one hour / one
Asia/Bangkok day from ``wifi_presence`` (the rows computed on a read connection, then delete + insert in one
writer transaction), for each scope:
hotspot (``wifi_footfall_hourly`` / ``_daily``) and zone, sub-district and city (``wifi_footfall_area_*``,
unique devices counted across the area's hotspots).

A device is *returning* in an hour (a day) at a scope when it was present at that scope earlier in the same
rotation period; else it is *new*. So a late record for an hour also changes the later hours of its period:
they are recomputed too. Each recompute reads only the rows of its window plus, per row, an index probe
(``device, hour``) for "seen earlier".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Date, bindparam, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.store.types import UTCDateTime
from citydata.wifi.schema import wifi_presence
from citydata.wifi.sessions import Presence, PresenceKey

if TYPE_CHECKING:
    from citydata.store import Store
    from citydata.wifi.pseudonym import Pseudonymiser

LEVELS = ("zone", "subdistrict", "city")
PRESENCE_CHUNK = 2000
_KEY = {"hotspot": "hotspot_id", "zone": "zone", "subdistrict": "subdistrict_code", "city": "'all'"}
_MEASURES = "devices, randomised_devices, new_devices, returning_devices, sessions, dwell_s"


def _query(scope: str, target_time: str) -> tuple[str, str]:
    """(INSERT, SELECT) for one scope: the SELECT computes the rollup rows of the window [:t0, :t1)
    ('returning' = seen in [:p, :t0)), the INSERT stores them (executemany) with the window's ``:at``."""
    key = _KEY[scope]
    same_area = "" if scope == "city" else f" AND q.{key} = g.area"
    inner = (f"SELECT {key} AS area, device, MAX(CASE WHEN randomised THEN 1 ELSE 0 END) AS r, "
             f"SUM(sessions) AS s, SUM(dwell_s) AS w, MAX(zone) AS zone, MAX(subdistrict_code) AS sub "
             f"FROM wifi_presence WHERE hour >= :t0 AND hour < :t1 GROUP BY "
             f"{'device' if scope == 'city' else key + ', device'}")
    flagged = (f"SELECT g.*, CASE WHEN EXISTS (SELECT 1 FROM wifi_presence q WHERE q.device = g.device "
               f"AND q.hour >= :p AND q.hour < :t0{same_area}) THEN 1 ELSE 0 END AS ret FROM ({inner}) g")
    totals = ("COUNT(*) AS devices, SUM(d.r) AS randomised_devices, SUM(1 - d.ret) AS new_devices, "
              "SUM(d.ret) AS returning_devices, SUM(d.s) AS sessions, SUM(d.w) AS dwell_s")
    if scope == "hotspot":
        table = "wifi_footfall_hourly" if target_time == "hour" else "wifi_footfall_daily"
        columns = ["hotspot_id", "zone", "subdistrict_code"]
        select_sql = (f"SELECT d.area AS hotspot_id, MAX(d.zone) AS zone, MAX(d.sub) AS subdistrict_code, "
                      f"{totals} FROM ({flagged}) d GROUP BY d.area")
    else:
        table = "wifi_footfall_area_hourly" if target_time == "hour" else "wifi_footfall_area_daily"
        where_x = "" if scope == "city" else f" AND x.{key} = d.area"
        hotspots = (f"(SELECT COUNT(DISTINCT x.hotspot_id) FROM wifi_presence x WHERE x.hour >= :t0 "
                    f"AND x.hour < :t1{where_x})")
        columns = ["level", "area", "hotspots"]
        select_sql = (f"SELECT '{scope}' AS level, d.area AS area, {hotspots} AS hotspots, {totals} "
                      f"FROM ({flagged}) d GROUP BY d.area")
    columns += [c.strip() for c in _MEASURES.split(",")]
    insert_sql = (f"INSERT INTO {table} ({', '.join(columns)}, {target_time}) "
                  f"VALUES ({', '.join(':' + c for c in columns)}, :at)")
    return insert_sql, select_sql


def _stmts(target_time: str, at_type: Any) -> list[tuple[Any, Any]]:
    out = []
    for scope in ("hotspot", *LEVELS):
        insert_sql, select_sql = _query(scope, target_time)
        out.append((text(insert_sql).bindparams(bindparam("at", type_=at_type)),
                    text(select_sql).bindparams(bindparam("t0", type_=UTCDateTime()),
                                                bindparam("t1", type_=UTCDateTime()),
                                                bindparam("p", type_=UTCDateTime()))))
    return out


# (INSERT, SELECT) per scope. A rebuild runs the SELECTs on a read connection (a WAL / MVCC snapshot, taken
# after the presence it reads was committed: presence is only written by ``flush``, under the service's lock,
# like the rebuilds), and hands the writer only the DELETE and the few result rows: a busy hour's rebuild reads
# hundreds of thousands of presence rows, and in the writer's transaction it held every other write for that
# long (p99 of every feed = the rebuild time).
HOURLY = _stmts("hour", UTCDateTime())
DAILY = _stmts("day", Date())
DELETE_HOURLY = [text(f"DELETE FROM {t} WHERE hour = :at").bindparams(bindparam("at", type_=UTCDateTime()))
                 for t in ("wifi_footfall_hourly", "wifi_footfall_area_hourly")]
DELETE_DAILY = [text(f"DELETE FROM {t} WHERE day = :at").bindparams(bindparam("at", type_=Date()))
                for t in ("wifi_footfall_daily", "wifi_footfall_area_daily")]


@functools.lru_cache(maxsize=8192)
def hour_dt(epoch: int) -> datetime:
    """The UTC datetime of an hour's epoch seconds (cached: called for every line and presence row, with few
    distinct hours)."""
    return datetime.fromtimestamp(epoch, UTC)


class Rollups:
    def __init__(self, store: Store, pseudo: Pseudonymiser) -> None:
        self.store, self.pseudo = store, pseudo
        self.dirty_hours: set[int] = set()
        self.dirty_days: set[date] = set()
        self.recomputed_hours = 0
        self.recomputed_days = 0

    # -- presence --------------------------------------------------------------------------------------------
    async def flush(self, delta: dict[PresenceKey, Presence],
                    give_back: Callable[[dict[PresenceKey, Presence]], None] | None = None) -> int:
        """Add ``delta`` to ``wifi_presence`` and mark its hours (and days) dirty. Returns rows written.

        Written in chunks, one commit each. When a chunk fails (or the flush is cancelled), the rows not yet
        committed are handed to ``give_back`` before the error goes on, so that a later flush writes them: the
        committed chunks are not handed back (the upsert adds, so writing them again would count them twice)."""
        if not delta:
            return 0
        items = list(delta.items())
        ins = (pg_insert if self.store.dialect == "postgresql" else sqlite_insert)(wifi_presence)
        stmt = ins.on_conflict_do_update(
            index_elements=[wifi_presence.c.hour, wifi_presence.c.hotspot_id, wifi_presence.c.device],
            set_={"sessions": wifi_presence.c.sessions + ins.excluded.sessions,
                  "dwell_s": wifi_presence.c.dwell_s + ins.excluded.dwell_s})

        # One writer job per chunk, one after the other: at 2,000 lines/s a flush is some 10,000 rows, and in one
        # job it held every other write (HTTP, MQTT, alerts) for its whole run; between chunks they get their turn.
        written = 0
        try:
            while written < len(items):
                chunk = items[written:written + PRESENCE_CHUNK]
                rows = [{"hour": hour_dt(h), "hotspot_id": hs, "device": dev, "zone": p.zone,
                         "subdistrict_code": p.subdistrict, "randomised": p.randomised, "sessions": p.sessions,
                         "dwell_s": p.dwell_s} for (h, hs, dev), p in chunk]

                async def op(conn: AsyncConnection, rows: list[dict[str, Any]] = rows) -> None:
                    await conn.execute(stmt, rows)

                await self.store.write(op, len(rows), heavy=len(rows) > 500)
                written += len(chunk)
                for (h, _, _), _p in chunk:
                    self.dirty_hours.add(h)
        except BaseException:
            if give_back is not None:
                give_back(dict(items[written:]))
            raise
        return written

    # -- recompute -------------------------------------------------------------------------------------------
    def _period_bounds(self, at: datetime) -> tuple[datetime, datetime]:
        period = self.pseudo.period_of(at)
        return (self.pseudo.period_start(period).astimezone(UTC),
                self.pseudo.period_start(period + 1).astimezone(UTC))

    def local_day_bounds(self, day: date) -> tuple[datetime, datetime]:
        start = datetime(day.year, day.month, day.day, tzinfo=self.pseudo.tz)
        return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)

    async def _later_hours(self, hours: set[int]) -> set[int]:
        """Hours after the earliest dirty hour of each period that hold presence (their new/returning split
        depends on what came before them)."""
        out: set[int] = set()
        firsts: dict[datetime, int] = {}
        for h in hours:
            p0, _ = self._period_bounds(hour_dt(h))
            firsts[p0] = min(firsts.get(p0, h), h)
        for p0, first in firsts.items():
            _, p1 = self._period_bounds(p0)
            stmt = select(wifi_presence.c.hour).where(wifi_presence.c.hour > hour_dt(first),
                                                      wifi_presence.c.hour < p1).distinct()
            for row in await self.store.fetch_all(stmt):
                out.add(int(row["hour"].timestamp()))
        return out

    async def recompute_dirty(self, *, days: bool = True) -> tuple[int, int]:
        """Rebuild every dirty hour (and, with ``days``, every dirty day). Returns (hours, days) rebuilt."""
        hours = set(self.dirty_hours)
        self.dirty_hours.difference_update(hours)
        if hours:
            hours |= await self._later_hours(hours)
        for h in sorted(hours):
            await self.recompute_hour(h)
            self.dirty_days.add(self.pseudo.local_day(hour_dt(h)))
        done_days = 0
        if days:
            pending = sorted(self.dirty_days)
            self.dirty_days.difference_update(pending)
            for day in pending:
                await self.recompute_day(day)
            done_days = len(pending)
        return len(hours), done_days

    async def recompute_hour(self, hour: int) -> None:
        t0 = hour_dt(hour)
        p0, _ = self._period_bounds(t0)
        await self._rebuild(HOURLY, DELETE_HOURLY, {"t0": t0, "t1": t0 + timedelta(hours=1), "p": p0}, t0)
        self.recomputed_hours += 1

    async def recompute_day(self, day: date) -> None:
        t0, t1 = self.local_day_bounds(day)
        p0, _ = self._period_bounds(t0)
        await self._rebuild(DAILY, DELETE_DAILY, {"t0": t0, "t1": t1, "p": p0}, day)
        self.recomputed_days += 1

    async def _rebuild(self, stmts: list[tuple[Any, Any]], deletes: list[Any], window: dict[str, Any],
                       at: Any) -> None:
        """Compute the rollup rows of one window on a read connection, then replace them in one writer job."""
        results: list[tuple[Any, list[dict[str, Any]]]] = []
        async with self.store.read() as conn:
            for insert, select_stmt in stmts:
                rows = [{**dict(r), "at": at} for r in (await conn.execute(select_stmt, window)).mappings()]
                results.append((insert, rows))

        async def op(conn: AsyncConnection) -> None:
            for stmt in deletes:
                await conn.execute(stmt, {"at": at})
            for insert, rows in results:
                if rows:
                    await conn.execute(insert, rows)

        await self.store.write(op, max(1, sum(len(rows) for _, rows in results)))
