"""``citydata import observations``: a real CSV (Rangsit City canal levels, 2021; MIT-licensed repository
``xerodotc/rangsitcity-waterlevel``, see src/citydata/sim/data/ATTRIBUTION.md) with bad rows added, on SQLite
and PostgreSQL, through the command line (no server running)."""

from __future__ import annotations

import asyncio
import csv
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from citydata.clock import DrivenClock
from citydata.config import Settings
from citydata.sensorthings.importer import CsvColumns, offline_sensorthings, parse_offset, read_rows
from citydata.sensorthings.model import THING
from citydata.sensorthings.retention import RetentionService
from citydata.sensorthings.rollups_schema import observation_rollups
from citydata.store.schema import latest_observations, observations

RANGSIT = "data/rangsit_city_water_level_2021.csv"


def _rangsit() -> list[dict[str, str]]:
    text = resources.files("citydata.sim").joinpath(RANGSIT).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _env(settings: Settings) -> dict[str, str]:
    env = {"CITYDATA_DATA_DIR": str(settings.data_dir), "CITYDATA_LOG_FORMAT": "text"}
    if not settings.is_sqlite:
        env["CITYDATA_DB_URL"] = settings.database_url
        env["CITYDATA_DB_SCHEMA"] = str(settings.db_schema)
    return env


async def _datastream(settings: Settings) -> int:
    async with offline_sensorthings(settings, DrivenClock()) as sta:
        await sta.writer.create(THING, {
            "name": "Rangsit canal", "description": "water level",
            "Locations": [{"name": "Rangsit", "description": "canal", "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": [100.63, 13.99]}}],
            "Datastreams": [{"name": "level", "description": "canal level", "observationType":
                             "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                             "unitOfMeasurement": {"name": "centimetre", "symbol": "cm", "definition": "ucum:cm"},
                             "Sensor": {"name": "s", "description": "s", "encodingType": "text/plain",
                                        "metadata": "m"},
                             "ObservedProperty": {"name": "level", "definition": "d", "description": "d"}}]})
        from citydata.sensorthings.schema import datastreams

        return int(await sta.store.scalar(select(datastreams.c.id)))


def _run(args: list[str], settings: Settings) -> Any:
    import typer

    from citydata.cli.importer import app

    root = typer.Typer()      # as in citydata.cli.main: app.add_typer(importer.app, name="import")
    root.add_typer(app, name="import")
    return CliRunner().invoke(root, ["import", *args], env=_env(settings))


async def _stored(settings: Settings, stream: int) -> list[tuple[Any, float]]:
    async with offline_sensorthings(settings, DrivenClock()) as sta:
        rows = await sta.store.fetch_all(select(observations.c.phenomenon_time, observations.c.result_number)
                                         .where(observations.c.datastream_id == stream)
                                         .order_by(observations.c.phenomenon_time))
        return [(r["phenomenon_time"], r["result_number"]) for r in rows]


def test_import_a_real_csv_with_bad_rows(backend_settings: Settings, tmp_path: Path) -> None:
    rows = _rangsit()
    stream = asyncio.run(_datastream(backend_settings))
    path = tmp_path / "rangsit.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["water_level_cm", "status", "record_time"])
        for r in rows:
            w.writerow([r["water_level_cm"], r["status"], r["record_time"]])
        w.writerow(["", "green", "2021-11-04T08:00:00+07:00"])               # line 75: empty result
        w.writerow(["120", "green", "yesterday"])                            # line 76: not a time
        w.writerow(["121", "green", "2021-11-05T08:00:00"])                  # line 77: no offset
        w.writerow(["nan", "green", "2021-11-06T08:00:00+07:00"])            # line 78: not finite
        w.writerow(["122", "green"])                                         # line 79: a field missing
    assert len(rows) == 73

    result = _run(["observations", str(path), "--datastream", str(stream), "--time-column", "record_time",
                   "--result-column", "water_level_cm", "--batch", "10"], backend_settings)
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert [ln.split(":")[1] for ln in lines] == ["75", "76", "77", "78", "79"]
    assert "result: empty" in lines[0] and "not an ISO 8601 time" in lines[1] and "no UTC offset" in lines[2]
    assert "78 rows, 73 stored, 0 already stored, 5 rejected" in result.stdout

    stored = asyncio.run(_stored(backend_settings, stream))
    from datetime import datetime

    assert sorted(stored) == sorted((datetime.fromisoformat(r["record_time"]), float(r["water_level_cm"]))
                                    for r in rows)

    # again: nothing new; with --tz the row without an offset is accepted
    again = _run(["observations", str(path), "--datastream", str(stream), "--time-column", "record_time",
                  "--result-column", "water_level_cm", "--tz", "+07:00"], backend_settings)
    assert again.exit_code == 3
    assert "78 rows, 1 stored, 73 already stored, 4 rejected" in again.stdout
    async def newest() -> Any:
        async with offline_sensorthings(backend_settings, DrivenClock()) as sta:
            return await sta.store.fetch_one(select(latest_observations).where(
                latest_observations.c.datastream_id == stream))

    latest = asyncio.run(newest())
    assert latest is not None and latest["result_number"] == 121.0   # 2021-11-05 is now the newest


def test_import_refuses_a_missing_datastream_and_a_missing_column(backend_settings: Settings,
                                                                          tmp_path: Path) -> None:
    asyncio.run(_datastream(backend_settings))
    path = tmp_path / "obs.csv"
    path.write_text("phenomenonTime,result\n2021-01-01T00:00:00Z,1.5\n", encoding="utf-8")
    missing = _run(["observations", str(path), "--datastream", "999999"], backend_settings)
    assert missing.exit_code == 1 and "Datastream(999999) does not exist" in missing.stderr
    wrong = _run(["observations", str(path), "--datastream", "1", "--result-column", "value"], backend_settings)
    assert wrong.exit_code != 0 and "no column 'value'" in wrong.stderr


def test_import_of_history_refreshes_the_rollups(backend_settings: Settings, tmp_path: Path) -> None:
    stream = asyncio.run(_datastream(backend_settings))
    async def first_rollup() -> int:
        async with offline_sensorthings(backend_settings, DrivenClock()) as sta:
            return await RetentionService(sta.store, DrivenClock(), backend_settings).rollup(DrivenClock().now())

    assert asyncio.run(first_rollup()) == 0        # nothing yet: the watermark is set to now
    path = tmp_path / "obs.csv"
    path.write_text("phenomenonTime,result,resultTime\n2021-01-01T00:10:00Z,1.5,2021-01-01T00:11:00Z\n"
                    "2021-01-01T00:40:00Z,2.5,\n2021-01-01T01:05:00+07:00,4,\n", encoding="utf-8")
    result = _run(["observations", str(path), "--datastream", str(stream)], backend_settings)
    assert result.exit_code == 0, result.output
    async def check() -> tuple[list[Any], Any]:
        async with offline_sensorthings(backend_settings, DrivenClock()) as sta:
            rows = await sta.store.fetch_all(select(observation_rollups).where(
                observation_rollups.c.period == "hour").order_by(observation_rollups.c.bucket_start))
            result_time = await sta.store.scalar(select(observations.c.result_time).where(
                observations.c.result_number == 1.5))
            return rows, result_time

    rows, result_time = asyncio.run(check())
    # 2020-12-31 18:05 UTC (the +07:00 row) and 2021-01-01 00:00 UTC, recomputed although before the watermark
    assert [(r["count"], r["sum"], r["last_result"]) for r in rows] == [(1, 4.0, 4.0), (2, 4.0, 2.5)]
    assert result_time is not None and result_time.minute == 11


def test_csv_reader_and_offsets() -> None:
    import io

    body = "when,value\n2021-01-01T00:00:00,true\n2021-01-01T01:00:00Z,x1\n"
    out = list(read_rows(io.StringIO(body), CsvColumns("when", "value", tz=parse_offset("-03:30"))))
    assert out[0] == (2, {"phenomenonTime": "2021-01-01T00:00:00-03:30", "result": True})
    assert out[1] == (3, {"phenomenonTime": "2021-01-01T01:00:00+00:00", "result": "x1"})
    for bad in ("+25:00", "7", "+07:0x"):
        with pytest.raises(Exception, match="offset"):
            parse_offset(bad)
