"""The shipped Phuket reference city and the in-memory geography index (pure, no store)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pytest
import shapely

from citydata.errors import NotFound, ValidationFailed
from citydata.geo import (
    Geography,
    Place,
    available_cities,
    haversine_m,
    read_city_file,
    read_city_manifest,
    read_reference_city,
)
from citydata.geo.h3cells import (
    cell_center,
    cell_polygon,
    cells_in,
    count_by_cell,
    counts_to_geojson,
    h3_cell,
    rollup,
    suppress_small,
)

THAI = re.compile(r"[\u0E00-\u0E7F]")
AIRPORT = (98.30655, 8.10846)      # lon, lat: the airport bus stop
KHAO_LAK = (98.25, 8.64)           # Phang Nga
BANGKOK = (100.5, 13.75)
RASSADA = (98.4013, 7.8557)        # offshore of the generalised coastline


@pytest.fixture(scope="module")
def places() -> list[Place]:
    return read_reference_city("phuket")


@pytest.fixture(scope="module")
def geo(places: list[Place]) -> Geography:
    return Geography.from_places(places)


# -- the shipped data ----------------------------------------------------------------------------------------
def test_phuket_is_shipped_and_described() -> None:
    assert "phuket" in available_cities()
    manifest = read_city_manifest("phuket")
    assert manifest["province_code"] == "83"
    assert {c["code"] for c in manifest["checkpoints"]} == {"HKT", "THA_CHATCHAI", "AO_CHALONG", "RASSADA",
                                                             "AO_PO"}


def test_unknown_reference_city_is_a_config_error() -> None:
    from citydata.errors import ConfigError

    with pytest.raises(ConfigError, match="atlantis"):
        read_reference_city("atlantis")
    with pytest.raises(ConfigError):
        read_reference_city("../phuket")


def test_all_77_provinces_with_unique_codes_and_thai_names(geo: Geography) -> None:
    provinces = geo.by_kind("province")
    assert len(provinces) == 77
    codes = [p.code for p in provinces]
    assert len(set(codes)) == 77
    assert all(re.fullmatch(r"\d\d", c) for c in codes)
    assert all(p.name_th and THAI.search(p.name_th) for p in provinces)
    assert len({p.name_th for p in provinces}) == 77
    assert all(p.is_area and p.geometry.is_valid for p in provinces)
    phuket = geo.province("83")
    assert phuket is not None and phuket.name_en == "Phuket" and phuket.name_th == "ภูเก็ต"


def test_the_five_checkpoints(geo: Geography) -> None:
    expected = {"HKT": "ท่าอากาศยานภูเก็ต", "THA_CHATCHAI": "ด่านท่าฉัตรไชย", "AO_CHALONG": "ท่าเรืออ่าวฉลอง",
                "RASSADA": "ท่าเรือรัษฎา", "AO_PO": "ท่าเรืออ่าวปอ"}
    checkpoints = geo.by_kind("checkpoint")
    assert {c.code for c in checkpoints} == set(expected)
    for code, name_th in expected.items():
        cp = geo.checkpoint(code)
        assert cp is not None and cp.id == f"checkpoint:{code}"
        assert cp.name_th == name_th
        assert cp.geometry.geom_type == "Point"
        assert cp.parent_id == "province:83"
        # every checkpoint is within 2 km of the Phuket polygon (piers and the bridge lie just outside it)
        near = geo.nearest(cp.lon, cp.lat, 2000, kind="province")
        assert near is not None
    hkt = geo.checkpoint("HKT")
    assert hkt is not None and (hkt.lon, hkt.lat) == AIRPORT
    assert geo.checkpoint("NOPE") is None


def test_tree_of_administrative_areas(geo: Geography) -> None:
    districts = geo.by_kind("district")
    subdistricts = geo.by_kind("subdistrict")
    assert [d.code for d in districts] == ["8301", "8302", "8303"]
    assert len(subdistricts) == 17
    assert all(d.parent_id == "province:83" for d in districts)
    for sub in subdistricts:
        parent = geo.get(sub.parent_id or "")
        assert parent is not None and parent.kind == "district", sub.id
        assert sub.code.startswith(parent.code)


def test_points_get_the_smallest_area_as_parent(geo: Geography) -> None:
    patong = geo.get("beach:patong")
    assert patong is not None and patong.parent_id is not None
    parent = geo.require(patong.parent_id)
    assert parent.kind == "subdistrict" and parent.name_en == "Pa Tong"
    koh_yao = geo.get("pier:koh_yao_noi")
    assert koh_yao is not None and koh_yao.parent_id == "province:82"  # Phang Nga
    assert len(geo.by_kind("bus_stop")) == 100
    assert all(s.name_th for s in geo.by_kind("bus_stop"))


# -- point in polygon ----------------------------------------------------------------------------------------
def test_airport_is_in_phuket(geo: Geography) -> None:
    hit = geo.province_at(*AIRPORT)
    assert hit is not None and hit.code == "83"


def test_khao_lak_is_in_phang_nga_not_phuket(geo: Geography) -> None:
    hit = geo.province_at(*KHAO_LAK)
    assert hit is not None
    assert hit.name_en == "Phang Nga" and hit.code == "82"


def test_bangkok_is_in_bangkok(geo: Geography) -> None:
    hit = geo.province_at(*BANGKOK)
    assert hit is not None and hit.name_en == "Bangkok" and hit.code == "10"


def test_open_sea_is_in_no_province(geo: Geography) -> None:
    assert geo.province_at(97.5, 7.5) is None             # Andaman Sea
    assert geo.nearest_province(97.5, 7.5, 5000) is None


def test_containing_lists_smallest_first(geo: Geography) -> None:
    kinds = [p.kind for p in geo.containing(*AIRPORT)]
    assert kinds == ["subdistrict", "district", "province"]
    assert [p.id for p in geo.containing(*AIRPORT, kind="district")] == ["district:8303"]
    assert geo.containing(*BANGKOK, kind="district") == []
    assert geo.containing(97.5, 7.5) == []


def test_rassada_pier_is_offshore_but_nearest_to_phuket(geo: Geography) -> None:
    pier = geo.get("pier:rassada")
    assert pier is not None and (pier.lon, pier.lat) == RASSADA
    phuket = geo.require("province:83")
    assert not phuket.geometry.contains(pier.geometry)
    assert geo.province_at(*RASSADA) is None
    near = geo.nearest_province(*RASSADA, max_m=2000)
    assert near is not None
    place, metres = near
    assert place.code == "83"
    assert 500 < metres < 1500  # the data README: ~0.9 km outside the polygon
    assert geo.nearest_province(*RASSADA, max_m=300) is None
    inside = geo.nearest_province(*AIRPORT, max_m=10)
    assert inside is not None and inside[0].code == "83" and inside[1] == 0.0


def test_tha_chatchai_lies_nearest_to_phang_nga(geo: Geography) -> None:
    # the caveat the data README states: the Sarasin bridge point falls on the Phang Nga side of the border
    cp = geo.require("checkpoint:THA_CHATCHAI")
    near = geo.nearest_province(cp.lon, cp.lat, 2000)
    assert near is not None and near[0].code == "82"
    assert geo.within_buffer("province:83", 1500, cp.lon, cp.lat)


def test_vectorised_lookup_agrees_with_scalar(geo: Geography) -> None:
    rng = np.random.default_rng(83)
    lons = rng.uniform(97.9, 98.9, 1000)
    lats = rng.uniform(7.4, 8.5, 1000)
    fast = geo.provinces_at(lons, lats)
    slow = [p.id if (p := geo.province_at(float(x), float(y))) else None
            for x, y in zip(lons, lats, strict=True)]
    assert fast == slow
    # the box holds land of several provinces and sea, so the comparison is not trivial
    assert {"province:83", "province:82"} <= set(fast) and None in fast
    assert geo.provinces_at([], []) == []
    with pytest.raises(ValidationFailed):
        geo.provinces_at([98.3, 98.4], [8.1])


# -- metric helpers ------------------------------------------------------------------------------------------
def test_buffer_is_metres_in_both_directions_at_that_latitude(geo: Geography) -> None:
    ring = geo.buffered("checkpoint:HKT", 1000)
    xmin, ymin, xmax, ymax = ring.bounds
    lon, lat = AIRPORT
    east_west = haversine_m(xmin, lat, xmax, lat)
    north_south = haversine_m(lon, ymin, lon, ymax)
    assert east_west == pytest.approx(2000, rel=0.005)
    assert north_south == pytest.approx(2000, rel=0.005)
    assert geo.buffered("checkpoint:HKT", 1000) is ring  # cached


def test_province_buffer_takes_in_the_piers(geo: Geography) -> None:
    for pier_id in ("pier:rassada", "pier:chalong", "pier:bang_rong"):
        pier = geo.require(pier_id)
        assert geo.province_at(pier.lon, pier.lat) is None
        assert geo.within_buffer("province:83", 1500, pier.lon, pier.lat), pier_id
        assert not geo.within_buffer("province:83", 200, pier.lon, pier.lat), pier_id
    with pytest.raises(NotFound):
        geo.buffered("province:99", 100)


def test_nearest_distance_matches_haversine(geo: Geography) -> None:
    hkt = geo.require("checkpoint:HKT")
    lon, lat = hkt.lon + 0.01, hkt.lat + 0.01
    found = geo.nearest(lon, lat, 3000, kind="checkpoint")
    assert found is not None and found[0].id == hkt.id
    assert found[1] == pytest.approx(haversine_m(lon, lat, hkt.lon, hkt.lat), rel=0.002)
    assert geo.nearest(lon, lat, 1000, kind="checkpoint") is None


def test_duplicate_ids_are_refused(places: list[Place]) -> None:
    with pytest.raises(ValidationFailed, match="province:83"):
        Geography.from_places([*places, places[[p.id for p in places].index("province:83")]])


# -- another city's file -------------------------------------------------------------------------------------
def _feature(props: dict[str, Any], geometry: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "Feature", "properties": props,
            "geometry": geometry or {"type": "Point", "coordinates": [100.5, 13.75]}}


def _write(tmp_path: Path, features: list[Any], **top: Any) -> Path:
    path = tmp_path / "krungthep.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features, **top}), encoding="utf-8")
    return path


def test_read_city_file(tmp_path: Path) -> None:
    square = {"type": "Polygon", "coordinates": [[[100.4, 13.7], [100.6, 13.7], [100.6, 13.8], [100.4, 13.8],
                                                  [100.4, 13.7]]]}
    path = _write(tmp_path, [
        _feature({"kind": "zone", "code": "old_town", "name_en": "Old Town", "name_th": "เมืองเก่า",
                  "risk": "high"}, square),
        _feature({"kind": "checkpoint", "code": 7, "name_en": "Gate", "parent_id": "zone:old_town"}),
    ])
    got = read_city_file(path)
    assert [p.id for p in got] == ["zone:old_town", "checkpoint:7"]
    zone, gate = got
    assert zone.city == "krungthep" and zone.name_th == "เมืองเก่า" and zone.properties == {"risk": "high"}
    assert zone.is_area and gate.parent_id == "zone:old_town" and gate.name_th is None
    assert read_city_file(path, city="bangkok")[0].city == "bangkok"
    index = Geography.from_places(got)
    assert [p.id for p in index.containing(100.5, 13.75)] == ["zone:old_town"]
    assert index.province_at(100.5, 13.75) is None  # this file has no provinces


@pytest.mark.parametrize(("features", "needle"), [
    ([_feature({"code": "a", "name_en": "A"})], "feature 0: kind: missing"),
    ([_feature({"kind": "zone", "code": "a", "name_en": "A"}),
      _feature({"kind": "zone", "name_en": "B"})], "feature 1: code: missing"),
    ([_feature({"kind": "Zone!", "code": "a", "name_en": "A"})], "feature 0: kind:"),
    ([_feature({"kind": "zone", "code": "a", "name_en": 5})], "feature 0: name_en: must be a string"),
    ([_feature({"kind": "zone", "code": "a", "name_en": "A"}),
      _feature({"kind": "zone", "code": "a", "name_en": "A again"})], "feature 1: code: duplicate id zone:a"),
    ([_feature({"kind": "zone", "code": "a", "name_en": "A", "parent_id": "nocolon"})],
     "feature 0: parent_id"),
    ([_feature({"kind": "zone", "code": "a", "name_en": "A"},
               {"type": "Point", "coordinates": [13.75, 200.5]})],
     "feature 0: geometry: coordinates must be"),
    ([_feature({"kind": "zone", "code": "a", "name_en": "A"},
               {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]})],
     "feature 0: geometry: invalid (Self-intersection"),
    ([_feature({"kind": "zone", "code": "a", "name_en": "A"}, {"type": "Blob", "coordinates": []})],
     "feature 0: geometry: not a valid GeoJSON geometry"),
    ([{"type": "Feature", "geometry": None, "properties": {"kind": "zone", "code": "a", "name_en": "A"}}],
     "feature 0: geometry: missing"),
    ([{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]}}], "feature 0: properties"),
    ([], "'features' must be a non-empty list"),
])
def test_bad_city_file_names_the_problem(tmp_path: Path, features: list[Any], needle: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        read_city_file(_write(tmp_path, features))
    assert needle in info.value.message
    assert info.value.status == 400


def test_bad_city_file_wholesale(tmp_path: Path) -> None:
    path = tmp_path / "x.geojson"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        read_city_file(path)
    path.write_text(json.dumps({"type": "Feature"}), encoding="utf-8")
    with pytest.raises(ValidationFailed, match="FeatureCollection"):
        read_city_file(path)
    with pytest.raises(ValidationFailed, match="cannot read"):
        read_city_file(tmp_path / "missing.geojson")
    with pytest.raises(ValidationFailed, match="city name"):
        read_city_file(_write(tmp_path, [_feature({"kind": "zone", "code": "a", "name_en": "A"})]),
                       city="Bad City")


def test_the_reference_city_round_trips_through_a_city_file(tmp_path: Path, places: list[Place]) -> None:
    from citydata.geo.model import geometry_to_geojson

    features = [{"type": "Feature", "geometry": geometry_to_geojson(p.geometry),
                 "properties": {"kind": p.kind, "code": p.code, "name_en": p.name_en, "name_th": p.name_th,
                                "parent_id": p.parent_id}} for p in places]
    got = read_city_file(_write(tmp_path, features), city="phuket")
    assert [(p.id, p.name_th, p.parent_id) for p in got] == [(p.id, p.name_th, p.parent_id) for p in places]
    assert all(a.geometry.equals_exact(b.geometry, 0) for a, b in zip(got, places, strict=True))


# -- H3 ------------------------------------------------------------------------------------------------------
def test_h3_helpers(geo: Geography) -> None:
    lon, lat = AIRPORT
    cell = h3_cell(lat, lon, 9)
    assert h3.get_resolution(cell) == 9 and h3.is_valid_cell(cell)
    c_lat, c_lon = cell_center(cell)
    assert haversine_m(lon, lat, c_lon, c_lat) < 400  # res 9 cells are ~0.35 km across
    poly = shapely.geometry.shape(cell_polygon(cell))
    assert poly.is_valid and poly.contains(shapely.Point(lon, lat))
    stops = [(s.lat, s.lon) for s in geo.by_kind("bus_stop")]
    counts = count_by_cell(stops, 8)
    assert sum(counts.values()) == 100
    coarse = rollup(counts, 6)
    assert sum(coarse.values()) == 100 and len(coarse) <= len(counts)
    assert all(h3.get_resolution(c) == 6 for c in coarse)
    kept = suppress_small(counts, 3)
    assert all(n >= 3 for n in kept.values()) and set(kept) <= set(counts)
    assert len(counts_to_geojson(kept)["features"]) == len(kept)
    with pytest.raises(ValidationFailed):
        rollup(coarse, 8)
    with pytest.raises(ValidationFailed):
        h3_cell(lat, lon, 16)


def test_h3_cells_in_an_area(geo: Geography) -> None:
    kathu = geo.require("district:8302")
    cells = cells_in(kathu.geometry, 7)
    assert cells
    for cell in cells:
        c_lat, c_lon = cell_center(cell)
        assert kathu.geometry.contains(shapely.Point(c_lon, c_lat))
    # Kathu is ~67 km²; res 7 hexagons are ~5.2 km², so roughly a dozen cells
    assert 6 <= len(cells) <= 20
