"""Government dataset imports: typing, geography joins (code, Thai and English names, points, geometries),
validation reports, all-or-nothing versions; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import orjson
import pytest
from sqlalchemy import func, select

from citydata.datasets import DatasetService, GeoJoin, ImportOptions
from citydata.datasets.samples import SAMPLES
from citydata.datasets.schema import dataset_rows, dataset_versions
from citydata.errors import ValidationFailed


def _svc(p: Any) -> DatasetService:
    return DatasetService(p.store, p.geography, p.clock)


async def test_samples_import_on_both_backends(backend_platform: Any) -> None:
    svc = _svc(backend_platform)
    for sample in SAMPLES:
        report = await svc.import_file(sample.path, sample.name, sample.options())
        assert report.committed and not report.rejected, (sample.name, report.rejected[:3])
        assert report.accepted == report.rows > 10
    names = [d["name"] for d in await svc.all()]
    assert names == sorted(s.name for s in SAMPLES)
    hotels = await svc.rows("hotel_register")
    assert all(h["place_id"].startswith("subdistrict:83") for h in hotels)
    # Buddhist-era DD/MM/YYYY dates are typed as ISO dates in the Gregorian calendar
    assert all(h["data"]["registered"][:2] in ("20", "19") for h in hotels)
    zones = await svc.rows("land_price_zones")
    assert {z["geometry"]["type"] for z in zones} <= {"Polygon", "MultiPolygon"}
    patong = [z for z in zones if z["place_id"] == "subdistrict:830202"]
    assert patong and all(isinstance(z["data"]["price_thb_per_sq_wah"], int) for z in patong)
    crime = await svc.rows("crime_statistics")
    assert len({c["place_id"] for c in crime}) == 17


def _csv(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_every_rejected_row_is_reported_and_nothing_half_imported(backend_platform: Any,
                                                                        tmp_path: Path) -> None:
    svc = _svc(backend_platform)
    path = _csv(tmp_path, "tambon,visitors,day\n"
                          "Patong,120,2024-01-05\n"          # line 2 ok (English, spaces differ: Pa Tong)
                          "ต.ป่าตอง,1,200,2024-01-06\n"       # line 3: 4 cells
                          "Atlantis,30,2024-01-07\n"          # line 4: unknown name
                          "\"Karon\",12o,2024-01-08\n"        # line 5: not an integer
                          "ราไวย์,40,31/02/2567\n"             # line 6: no 31 February
                          "Kathu,50,2024-01-09\n")            # line 7 ok (sub-district, not the district)
    opts = ImportOptions(types={"visitors": "integer", "day": "date"}, join=GeoJoin("name", ("tambon",)))
    report = await svc.import_file(path, "visitors", opts)
    assert not report.committed
    lines = {r.line: r.reason for r in report.rejected}
    assert sorted(lines) == [3, 4, 5, 6]
    assert "4 cells" in lines[3] and "Atlantis" in lines[4] and "12o" in lines[5] and "date" in lines[6]
    assert await backend_platform.store.scalar(select(func.count()).select_from(dataset_rows)) == 0
    assert not await svc.exists("visitors")

    report = await svc.import_file(path, "visitors", ImportOptions(**{**opts.__dict__, "allow_rejected": True}))
    assert report.version == 1 and report.accepted == 2
    rows = await svc.rows("visitors")
    assert [(r["row"], r["place_id"], r["data"]["visitors"]) for r in rows] == [
        (2, "subdistrict:830202", 120), (7, "subdistrict:830201", 50)]
    meta = await svc.version("visitors")
    assert meta["rejected_count"] == 4 and meta["rejections"][0]["line"] == 3


async def test_versions_are_kept_and_current_moves(backend_platform: Any, tmp_path: Path) -> None:
    svc = _svc(backend_platform)
    v1 = _csv(tmp_path, "code,n\n830202,1\n830101,2\n", "v1.csv")
    v2 = _csv(tmp_path, "code,n\n830202,10\n830101,20\n8302,30\n", "v2.csv")
    opts = ImportOptions(join=GeoJoin("code", ("code",)), types={"code": "text"})
    assert (await svc.import_file(v1, "counts", opts)).version == 1
    assert (await svc.import_file(v2, "counts", opts)).version == 2
    assert [r["data"]["n"] for r in await svc.rows("counts")] == [10, 20, 30]
    assert [r["data"]["n"] for r in await svc.rows("counts", 1)] == [1, 2]
    assert (await svc.rows("counts"))[2]["place_id"] == "district:8302"
    history = await svc.versions("counts")
    assert [h["version"] for h in history] == [1, 2] and history[0]["sha256"] != history[1]["sha256"]


async def test_failed_commit_leaves_no_version(platform: Any, tmp_path: Path) -> None:
    """The version row and its rows are one transaction: a failure while writing rows leaves nothing."""
    svc = _svc(platform)
    path = _csv(tmp_path, "code,n\n830202,1\n830101,2\n")
    opts = ImportOptions(join=GeoJoin("code", ("code",)), types={"code": "text"})
    real = svc._commit

    async def failing(name: str, meta: dict[str, Any], rows: list[dict[str, Any]]) -> int:
        return await real(name, meta, [*rows, rows[0]])     # duplicate primary key on the last row

    svc._commit = failing  # type: ignore[method-assign]
    with pytest.raises(Exception):
        await svc.import_file(path, "atomic", opts)
    store = platform.store
    assert await store.scalar(select(func.count()).select_from(dataset_versions)) == 0
    assert await store.scalar(select(func.count()).select_from(dataset_rows)) == 0


async def test_geojson_point_and_excel_joins(platform: Any, tmp_path: Path) -> None:
    svc = _svc(platform)
    geo = tmp_path / "cams.geojson"
    geo.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [98.2965, 7.8961]},
         "properties": {"id": "a"}},                                               # Patong beach road
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [100.5, 13.75]},
         "properties": {"id": "b"}},                                               # Bangkok: outside
        {"type": "Feature", "geometry": None, "properties": {"id": "c"}}]}))
    report = await svc.import_file(geo, "cams", ImportOptions(join=GeoJoin("geometry"), allow_rejected=True))
    assert [r.line for r in report.rejected] == [2, 3]
    assert (await svc.rows("cams"))[0]["place_id"] == "subdistrict:830202"

    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["station", "lat", "lon", "mm"])
    ws.append(["Rawai", 7.7708, 98.3187, 14.0])
    ws.append(["Kamala", 7.9423, 98.2910, "x"])
    xlsx = tmp_path / "rain.xlsx"
    book.save(xlsx)
    report = await svc.import_file(xlsx, "rain", ImportOptions(types={"mm": "number"},
                                                               join=GeoJoin("point", ("lat", "lon"))))
    assert not report.committed and [(r.line, "mm" in r.reason) for r in report.rejected] == [(3, True)]


async def test_bad_files_and_options_fail_with_a_reason(platform: Any, tmp_path: Path) -> None:
    svc = _svc(platform)
    with pytest.raises(ValidationFailed, match="duplicate column"):
        await svc.import_file(_csv(tmp_path, "a,a\n1,2\n"), "dupes")
    with pytest.raises(ValidationFailed, match="no column 'tambon'"):
        await svc.import_file(_csv(tmp_path, "a,b\n1,2\n"), "nojoin",
                              ImportOptions(join=GeoJoin("name", ("tambon",))))
    with pytest.raises(ValidationFailed, match="unknown type"):
        await svc.import_file(_csv(tmp_path, "a,b\n1,2\n"), "badtype", ImportOptions(types={"a": "money"}))
    with pytest.raises(ValidationFailed, match="dataset name"):
        await svc.import_file(_csv(tmp_path, "a,b\n1,2\n"), "Bad Name")
    with pytest.raises(ValidationFailed, match="FeatureCollection"):
        await svc.import_file(_csv(tmp_path, '{"type": "Point"}', "x.geojson"), "notfc")


async def test_demo_loads_the_samples_once(platform: Any) -> None:
    from citydata.datasets.samples import load_samples

    assert sorted(await load_samples(platform)) == sorted(s.name for s in SAMPLES)
    assert await load_samples(platform) == []


async def test_a_version_larger_than_the_write_buffer_is_admitted(tmp_path: Path) -> None:
    from citydata.clock import SystemClock
    from citydata.geo import Geography, ensure_reference_city
    from citydata.store import create_store
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, db_write_buffer=300)
    store = create_store(settings, SystemClock())
    await store.start()
    try:
        await ensure_reference_city(store, settings, store.clock)
        svc = DatasetService(store, await Geography.from_store(store), store.clock)
        path = _csv(tmp_path, "code,n\n" + "".join(f"830202,{i}\n" for i in range(1000)))
        report = await svc.import_file(path, "big", ImportOptions(join=GeoJoin("code", ("code",)),
                                                                  types={"code": "text"}))
        assert report.version == 1 and len(await svc.rows("big")) == 1000
    finally:
        await store.stop()
