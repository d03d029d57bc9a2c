"""Loading cities into the store (SQLite and PostgreSQL, through the ``store`` fixture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from citydata.clock import DrivenClock
from citydata.config import Settings
from citydata.errors import Conflict, ValidationFailed
from citydata.geo import (
    META_KEY,
    Geography,
    ensure_reference_city,
    load_places,
    read_city_file,
    read_places,
    read_reference_city,
)
from citydata.store import schema

AIRPORT = (98.30655, 8.10846)


async def _count(store: Any, city: str | None = None) -> int:
    stmt = select(func.count()).select_from(schema.places)
    if city is not None:
        stmt = stmt.where(schema.places.c.city == city)
    return int(await store.scalar(stmt))


def _city_file(tmp_path: Path, codes: list[str], *, kind: str = "zone", name: str = "demo") -> Path:
    features = []
    for i, code in enumerate(codes):
        x = 100.0 + i * 0.1
        props = {"kind": kind, "code": code, "name_en": f"Z {code}"}
        features.append({"type": "Feature", "properties": props,
                         "geometry": {"type": "Polygon", "coordinates": [[[x, 13.0], [x + 0.05, 13.0],
                                                                          [x + 0.05, 13.05], [x, 13.05],
                                                                          [x, 13.0]]]}})
    path = tmp_path / f"{name}-{len(codes)}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "city": name, "features": features}),
                    encoding="utf-8")
    return path


async def test_reference_city_loads_once(store: Any, backend_settings: Settings, clock: DrivenClock) -> None:
    expected = read_reference_city(backend_settings.city)
    assert await ensure_reference_city(store, backend_settings, clock) is True
    assert await _count(store) == len(expected)
    meta = await store.get_meta(META_KEY)
    assert meta["name"] == "phuket" and meta["places"] == len(expected)
    assert meta["loaded_at"] == clock.now().isoformat()

    clock.advance(hours=1)
    assert await ensure_reference_city(store, backend_settings, clock) is False
    assert await _count(store) == len(expected)
    ids = [r["id"] for r in await store.fetch_all(select(schema.places.c.id))]
    assert len(ids) == len(set(ids)) == len(expected)
    assert (await store.get_meta(META_KEY))["loaded_at"] == meta["loaded_at"]


async def test_stored_places_round_trip(store: Any, backend_settings: Settings, clock: DrivenClock) -> None:
    await ensure_reference_city(store, backend_settings, clock)
    original = {p.id: p for p in read_reference_city("phuket")}
    stored = await read_places(store, city="phuket")
    assert {p.id for p in stored} == set(original)
    for place in stored:
        assert place == original[place.id], place.id  # every field, geometry included, survives the database
    geo = await Geography.from_store(store)
    hit = geo.province_at(*AIRPORT)
    assert hit is not None and hit.code == "83" and hit.name_th == "ภูเก็ต"
    assert {c.code for c in geo.by_kind("checkpoint")} == {"HKT", "THA_CHATCHAI", "AO_CHALONG", "RASSADA",
                                                           "AO_PO"}
    assert len(geo.by_kind("province")) == 77
    assert all(geo.require(s.parent_id or "").kind == "district" for s in geo.by_kind("subdistrict"))


async def test_bbox_columns_prefilter(store: Any, backend_settings: Settings, clock: DrivenClock) -> None:
    await ensure_reference_city(store, backend_settings, clock)
    lon, lat = AIRPORT
    p = schema.places.c
    rows = await store.fetch_all(select(p.id).where(p.kind == "province", p.min_lon <= lon, p.max_lon >= lon,
                                                    p.min_lat <= lat, p.max_lat >= lat))
    candidates = {r["id"] for r in rows}
    assert "province:83" in candidates and "province:10" not in candidates


async def test_another_city_loads_replaces_and_leaves_phuket_alone(
        store: Any, backend_settings: Settings, clock: DrivenClock, tmp_path: Path) -> None:
    await ensure_reference_city(store, backend_settings, clock)
    phuket_rows = await _count(store, "phuket")

    first = read_city_file(_city_file(tmp_path, ["a", "b", "c"]))
    assert await load_places(store, first, "demo", clock) == 3
    assert await _count(store, "demo") == 3

    second = read_city_file(_city_file(tmp_path, ["b", "d"]))
    assert await load_places(store, second, "demo", clock) == 2
    demo = await read_places(store, city="demo")
    assert [p.id for p in demo] == ["zone:b", "zone:d"]  # a and c went with the earlier load
    assert await _count(store, "phuket") == phuket_rows

    merged = read_city_file(_city_file(tmp_path, ["e"]))
    await load_places(store, merged, "demo", clock, replace=False)
    assert [p.id for p in await read_places(store, city="demo")] == ["zone:b", "zone:d", "zone:e"]


async def test_taken_ids_conflict_and_write_nothing(
        store: Any, backend_settings: Settings, clock: DrivenClock, tmp_path: Path) -> None:
    await ensure_reference_city(store, backend_settings, clock)
    await load_places(store, read_city_file(_city_file(tmp_path, ["a"])), "demo", clock)
    clash = read_city_file(_city_file(tmp_path, ["83", "x"], kind="province", name="other"))
    with pytest.raises(Conflict, match=r"province:83 \(phuket\)"):
        await load_places(store, clash, "other", clock)
    assert await _count(store, "other") == 0
    # the failed load rolled back as a whole: the demo city is untouched as well
    assert [p.id for p in await read_places(store, city="demo")] == ["zone:a"]
    phuket = await read_places(store, kind="province")
    assert len(phuket) == 77 and all(p.city == "phuket" for p in phuket)


async def test_load_refuses_bad_input(store: Any, clock: DrivenClock, tmp_path: Path) -> None:
    places = read_city_file(_city_file(tmp_path, ["a", "b"]))
    with pytest.raises(ValidationFailed, match="duplicate place id zone:a"):
        await load_places(store, [places[0], places[0]], "demo", clock)
    with pytest.raises(ValidationFailed, match="no places"):
        await load_places(store, [], "demo", clock)
    with pytest.raises(ValidationFailed, match="city name"):
        await load_places(store, places, "Demo City", clock)
    assert await _count(store) == 0
