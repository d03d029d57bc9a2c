"""Rollups equal a brute-force computation over the raw Observations, are idempotent, survive purges and late
data; the purge keeps each stream's latest Observation and removes only rolled-up rows. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from citydata.clock import DrivenClock
from citydata.config import Settings
from citydata.sensorthings.importer import offline_sensorthings
from citydata.sensorthings.model import THING
from citydata.sensorthings.retention import RetentionService
from citydata.sensorthings.rollups_schema import observation_rollups
from citydata.sensorthings.service import SensorThings
from citydata.store.schema import latest_observations, observations

START = datetime(2026, 3, 1, 14, 5, tzinfo=UTC)
LOCAL = timedelta(hours=7)


@pytest.fixture
async def sta(backend_settings: Settings, clock: DrivenClock) -> AsyncIterator[SensorThings]:
    settings = backend_settings.model_copy(update={"sta_purge_chunk": 37})
    async with offline_sensorthings(settings, clock) as service:
        yield service


def _stream(name: str) -> dict[str, Any]:
    return {"name": name, "description": name, "observationType":
            "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "unitOfMeasurement": {"name": "millimetre", "symbol": "mm", "definition": "ucum:mm"},
            "Sensor": {"name": "gauge", "description": "g", "encodingType": "text/plain", "metadata": "m"},
            "ObservedProperty": {"name": "rain", "definition": "d", "description": "d"}}


async def _make_streams(sta: SensorThings, n: int) -> list[int]:
    thing = await sta.writer.create(THING, {
        "name": "t", "description": "t",
        "Locations": [{"name": "l", "description": "l", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [98.3, 7.9]}}],
        "Datastreams": [_stream(f"s{i}") for i in range(n)]})
    from citydata.sensorthings.schema import datastreams

    ids = [int(r["id"]) for r in await sta.store.fetch_all(
        select(datastreams.c.id).where(datastreams.c.thing_id == thing).order_by(datastreams.c.id))]
    assert len(ids) == n
    return ids


async def _ingest(sta: SensorThings, stream: int, points: list[tuple[datetime, Any]]) -> None:
    results = await sta.ingest.create([{"phenomenonTime": t.isoformat(), "result": v} for t, v in points],
                                      stream_id=stream)
    assert all(not isinstance(r, Exception) for r in results), results


def _series(rng: random.Random, start: datetime, hours: int) -> list[tuple[datetime, float]]:
    out, t = [], start
    while t < start + timedelta(hours=hours):
        out.append((t, round(rng.uniform(-5, 40), 2)))
        t += timedelta(minutes=rng.randint(3, 25), seconds=rng.randint(0, 59), microseconds=rng.randint(0, 999))
    return out


def brute_force(points: list[tuple[int, datetime, float]], cutoff: datetime) -> dict[tuple[int, str, datetime],
                                                                                    tuple[Any, ...]]:
    """What the rollup table must hold: every numeric observation before the cutoff, by hour and local day."""
    buckets: dict[tuple[int, str, datetime], list[tuple[datetime, float]]] = {}
    for sid, t, v in points:
        if t >= cutoff:
            continue
        hour = t.replace(minute=0, second=0, microsecond=0)
        day = (t + LOCAL).replace(hour=0, minute=0, second=0, microsecond=0) - LOCAL
        buckets.setdefault((sid, "hour", hour), []).append((t, v))
        buckets.setdefault((sid, "day", day), []).append((t, v))
    out = {}
    for key, values in buckets.items():
        values.sort()
        nums = [v for _, v in values]
        out[key] = (len(nums), pytest.approx(sum(nums)), min(nums), max(nums), values[0][0], values[-1][0],
                    values[-1][1])
    return out


async def rollup_table(sta: SensorThings) -> dict[tuple[int, str, datetime], tuple[Any, ...]]:
    r = observation_rollups
    rows = await sta.store.fetch_all(select(r))
    return {(row["datastream_id"], row["period"], row["bucket_start"]):
            (row["count"], row["sum"], row["min"], row["max"], row["first_time"], row["last_time"],
             row["last_result"]) for row in rows}


async def _raw(sta: SensorThings) -> list[tuple[int, datetime, float]]:
    o = observations
    rows = await sta.store.fetch_all(select(o.c.datastream_id, o.c.phenomenon_time, o.c.result_number)
                                     .where(o.c.result_number.is_not(None)))
    return [(int(r["datastream_id"]), r["phenomenon_time"], float(r["result_number"])) for r in rows]


async def test_rollups_match_brute_force_are_idempotent_and_survive_purge(
        sta: SensorThings, backend_settings: Settings, clock: DrivenClock) -> None:
    rng = random.Random(5)
    ids = await _make_streams(sta, 3)
    for sid in ids:
        await _ingest(sta, sid, _series(rng, START + timedelta(minutes=rng.randint(0, 50)), 60))
    await _ingest(sta, ids[0], [(START + timedelta(hours=5, seconds=7), "broken")])   # not numeric: ignored
    service = RetentionService(sta.store, clock, backend_settings.model_copy(update={"sta_purge_chunk": 37}))

    cutoff = START + timedelta(hours=40, minutes=33)            # mid-hour: rounded down to 06:00
    snapshot = await _raw(sta)
    written = await service.rollup(cutoff)
    expected = brute_force(snapshot, datetime(2026, 3, 3, 6, tzinfo=UTC))
    table = await rollup_table(sta)
    assert written >= len(expected) and table == expected
    assert {k[1] for k in table} == {"hour", "day"}
    assert await service.rollup(cutoff) == 0                    # nothing new
    assert await service.refresh(START - timedelta(days=1), cutoff) > 0
    assert await rollup_table(sta) == expected                   # recomputing gives the same rows

    # a late observation in an hour already rolled up, picked up by refresh
    late = START + timedelta(hours=3, minutes=1, seconds=1)
    await _ingest(sta, ids[1], [(late, 1000.0)])
    snapshot.append((ids[1], late, 1000.0))
    await service.refresh(late, late)
    expected = brute_force(snapshot, datetime(2026, 3, 3, 6, tzinfo=UTC))
    assert await rollup_table(sta) == expected

    # purge everything before 2026-03-02 12:00, in chunks of 37 rows
    latest_before = {r["datastream_id"]: r["observation_id"] for r in await sta.store.fetch_all(
        select(latest_observations))}
    until = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
    doomed = [p for p in snapshot if p[1] < until]
    purged = await service.purge(until)
    assert purged == len(doomed) > 37
    remaining = await _raw(sta)
    assert sorted(remaining) == sorted(p for p in snapshot if p[1] >= until)
    assert await rollup_table(sta) == expected                   # purged rows live on in their buckets
    assert await sta.store.scalar(select(observations.c.id).where(observations.c.result_json.is_not(None)))
    assert await service.purge(until) == 0
    assert await service.refresh(START, cutoff) > 0
    assert await rollup_table(sta) == expected                   # a refresh after the purge changes nothing

    # more data, a late row in a purged hour, then the next rollup and a purge past the watermark
    newer = [(ids[2], datetime(2026, 3, 3, 6, 10, tzinfo=UTC) + timedelta(minutes=10 * i), float(i))
             for i in range(20)]
    await _ingest(sta, ids[2], [(t, v) for _, t, v in newer])
    purged_late = datetime(2026, 3, 1, 20, 30, tzinfo=UTC)
    await _ingest(sta, ids[0], [(purged_late, -7.5)])
    snapshot += [*newer, (ids[0], purged_late, -7.5)]
    assert await service.rollup(datetime(2026, 3, 3, 9, tzinfo=UTC)) > 0
    assert await service.purge(datetime(2026, 3, 10, tzinfo=UTC)) > 0   # capped at the watermark (09:00)
    expected = brute_force(snapshot, datetime(2026, 3, 3, 9, tzinfo=UTC))
    assert await rollup_table(sta) == expected
    latest_times = _latest_times(snapshot)
    kept = [p for p in snapshot if p[1] >= datetime(2026, 3, 3, 9, tzinfo=UTC) or p[1] == latest_times[p[0]]]
    assert sorted(await _raw(sta)) == sorted(kept)

    # every stream's latest observation is still there and latest_observations still points at it
    latest_after = {r["datastream_id"]: r["observation_id"] for r in await sta.store.fetch_all(
        select(latest_observations))}
    assert latest_after.keys() == latest_before.keys()
    for sid, oid in latest_after.items():
        assert await sta.store.scalar(select(observations.c.id).where(observations.c.id == oid)) == oid, sid


def _latest_times(points: list[tuple[int, datetime, float]]) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    for sid, t, _ in points:
        out[sid] = max(out.get(sid, t), t)
    return out


async def test_series_reads_rollups_and_the_live_tail(sta: SensorThings, backend_settings: Settings,
                                                      clock: DrivenClock) -> None:
    (sid,) = await _make_streams(sta, 1)
    base = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)                # 00:00 on 2 March in Phuket
    points = [(base + timedelta(minutes=10 * i), float(i % 7)) for i in range(6 * 30)]   # 30 hours
    await _ingest(sta, sid, points)
    service = RetentionService(sta.store, clock, backend_settings)
    await service.rollup(base + timedelta(hours=20))
    hours = await service.series(sid, "hour", base, base + timedelta(hours=30))
    assert [h["bucket_start"] for h in hours] == [base + timedelta(hours=i) for i in range(30)]
    for i, h in enumerate(hours):
        values = [float((6 * i + j) % 7) for j in range(6)]
        assert (h["count"], h["min"], h["max"], h["last_result"]) == (6, min(values), max(values), values[-1])
        assert h["mean"] == pytest.approx(sum(values) / 6)
    days = await service.series(sid, "day", base - timedelta(days=1), base + timedelta(days=2))
    assert [(d["bucket_start"], d["count"]) for d in days] == [(base, 144), (base + timedelta(days=1), 36)]
    stored = await service.series(sid, "day", base, base + timedelta(days=2), live=False)
    assert [(d["bucket_start"], d["count"]) for d in stored] == [(base, 120)]   # rolled up to 13:00 local only
    with pytest.raises(Exception, match="period"):
        await service.series(sid, "week", base, base)  # type: ignore[arg-type]


async def test_periodic_task_rolls_up_and_purges_on_the_clock(sta: SensorThings, backend_settings: Settings,
                                                               clock: DrivenClock) -> None:
    (sid,) = await _make_streams(sta, 1)
    now = clock.now()
    old = [(now - timedelta(days=3, minutes=10 * i), float(i)) for i in range(30)]
    await _ingest(sta, sid, [*old, (now - timedelta(minutes=5), 1.0)])
    settings = backend_settings.model_copy(update={"sta_raw_retention_days": 2, "sta_rollup_interval_s": 3600,
                                                   "sta_rollup_lag_s": 0})
    service = RetentionService(sta.store, clock, settings)
    await service.start()
    try:
        for _ in range(3):
            await asyncio.sleep(0)      # the task is now waiting on the clock
        clock.advance(minutes=59)
        await asyncio.sleep(0.1)
        assert service.last_run is None
        clock.advance(minutes=1)
        for _ in range(400):
            if service.last_run is not None:
                break
            await asyncio.sleep(0.01)
        run = service.last_run
        assert run is not None and run.purged == 30 and run.rolled > 0
        assert run.until == (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    finally:
        await service.stop()
    counts = await sta.store.fetch_all(select(observation_rollups.c.period, observation_rollups.c.count)
                                       .where(observation_rollups.c.datastream_id == sid))
    assert sum(r["count"] for r in counts if r["period"] == "hour") == 31
