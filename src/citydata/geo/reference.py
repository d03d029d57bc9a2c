"""Reading cities: the shipped reference city (package data) and any other city's GeoJSON file.

A shipped city is one folder under ``citydata/geo/data/`` with a ``city.json`` naming its files (see
``data/phuket/city.json`` and ``data/ATTRIBUTION.md``). Another city is one GeoJSON FeatureCollection whose
features carry ``kind``, ``code``, ``name_en`` and optionally ``name_th`` and ``parent_id``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, NoReturn

import orjson
import shapely
from shapely.errors import GEOSException, ShapelyError
from shapely.geometry.base import BaseGeometry

from citydata.errors import ConfigError, ValidationFailed
from citydata.geo.model import Place, geometry_from_geojson, place_id

log = logging.getLogger(__name__)

#: tolerance used to give offshore points (piers, the Sarasin bridge) a parent province
PARENT_TOLERANCE_M = 2000.0
#: what ``kind``, ``code`` and city names may look like (they end up in ids, URLs and MQTT topics)
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
CITY_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,79}$")
RESERVED = ("kind", "code", "name_en", "name_th", "parent_id")
ADMIN_ORDER = ("subdistrict", "district", "province")


# -- the shipped reference cities ----------------------------------------------------------------------------
def _data_root() -> Traversable:
    return resources.files("citydata.geo").joinpath("data")


def available_cities() -> list[str]:
    """Names of the reference cities shipped as package data."""
    return sorted(item.name for item in _data_root().iterdir()
                  if item.is_dir() and item.joinpath("city.json").is_file())


def read_city_manifest(name: str = "phuket") -> dict[str, Any]:
    """The ``city.json`` of a shipped reference city."""
    folder = _city_folder(name)
    manifest: dict[str, Any] = orjson.loads(folder.joinpath("city.json").read_bytes())
    return manifest


def _city_folder(name: str) -> Traversable:
    known = available_cities()
    if not CITY_RE.match(name) or name not in known:
        raise ConfigError(f"CITYDATA_CITY: no shipped reference city {name!r} "
                          f"(available: {', '.join(known)})",
                          code="unknown_city")
    return _data_root().joinpath(name)


def read_reference_city(name: str = "phuket") -> list[Place]:
    """Every place of a shipped reference city: the country's provinces, the city's districts and
    sub-districts, checkpoints, piers, key places and bus stops."""
    folder = _city_folder(name)
    manifest = read_city_manifest(name)
    files: dict[str, str] = manifest["files"]
    city = str(manifest["name"])

    def geojson(key: str) -> list[dict[str, Any]]:
        doc = orjson.loads(folder.joinpath(files[key]).read_bytes())
        return list(doc["features"])

    def rows(key: str) -> list[dict[str, str]]:
        text = folder.joinpath(files[key]).read_text(encoding="utf-8")
        return list(csv.DictReader(io.StringIO(text)))

    areas: list[Place] = []
    for feat in geojson("provinces"):
        p = feat["properties"]
        areas.append(Place(
            id=place_id("province", p["pro_code"]), kind="province", code=p["pro_code"], name_en=p["pro_en"],
            name_th=p.get("pro_th"), parent_id=None, city=city,
            geometry=geometry_from_geojson(feat["geometry"]),
            properties={k: v for k, v in p.items() if k not in ("pro_code", "pro_en", "pro_th")},
            source=files["provinces"]))
    home = place_id("province", str(manifest["province_code"]))
    if home not in {a.id for a in areas}:
        raise ConfigError(f"{name}/city.json: province_code {manifest['province_code']} is not in "
                          f"{files['provinces']}")
    outline = geojson("province")
    if [f["properties"].get("pro_code") for f in outline] != [manifest["province_code"]]:
        raise ConfigError(f"{name}/{files['province']}: expected one feature with pro_code "
                          f"{manifest['province_code']}")
    for feat in geojson("districts"):
        p = feat["properties"]
        areas.append(Place(
            id=place_id("district", p["amp_code"]), kind="district", code=p["amp_code"], name_en=p["amp_en"],
            name_th=p.get("amp_th"), parent_id=place_id("province", p["pro_code"]), city=city,
            geometry=geometry_from_geojson(feat["geometry"]), properties={}, source=files["districts"]))
    for feat in geojson("subdistricts"):
        p = feat["properties"]
        areas.append(Place(
            id=place_id("subdistrict", p["tam_code"]), kind="subdistrict", code=p["tam_code"],
            name_en=p["tam_en"], name_th=p.get("tam_th"), parent_id=place_id("district", p["amp_code"]),
            city=city, geometry=geometry_from_geojson(feat["geometry"]), properties={},
            source=files["subdistricts"]))

    from citydata.geo.index import Geography

    admin = Geography.from_places(areas)
    points: list[Place] = []
    points += _key_places(manifest, rows("key_places"), files["key_places"], city, home, admin)
    points += _piers(manifest, rows("piers"), files["piers"], city, admin)
    points += _bus_stops(rows("bus_stops"), files["bus_stops"], city, admin)
    places = areas + points
    _check_unique(places, f"{name}/city.json")
    log.debug("reference city %s: %d places", city, len(places))
    return places


def _point(row: dict[str, str], where: str) -> BaseGeometry:
    try:
        lat, lon = float(row["lat"]), float(row["lon"])
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{where}: lat/lon missing or not a number") from err
    return shapely.Point(lon, lat)


def _parent(admin: Any, geom: BaseGeometry) -> str | None:
    """The smallest administrative area holding the point, else the nearest province within the tolerance."""
    lon, lat = float(geom.x), float(geom.y)
    for kind in ADMIN_ORDER:
        hits = admin.containing(lon, lat, kind)
        if hits:
            return str(hits[0].id)
    near = admin.nearest_province(lon, lat, PARENT_TOLERANCE_M)
    return str(near[0].id) if near else None


def _key_places(manifest: dict[str, Any], rows: list[dict[str, str]], file: str, city: str, home: str,
                admin: Any) -> list[Place]:
    checkpoints = {c["name"]: c for c in manifest["checkpoints"]}
    others = {k["name"]: k for k in manifest["key_places"]}
    kinds: dict[str, str] = manifest["categories"]
    out: list[Place] = []
    for i, row in enumerate(rows, start=2):
        where = f"{file} line {i}"
        extra = {k: v for k, v in row.items() if k not in ("category", "name", "lat", "lon")}
        extra["source_name"] = row["name"]
        geom = _point(row, where)
        if row["category"] == "immigration_checkpoint":
            spec = checkpoints.get(row["name"])
            if spec is None:
                raise ConfigError(f"{where}: checkpoint {row['name']!r} has no code in city.json")
            out.append(Place(
                id=place_id("checkpoint", spec["code"]), kind="checkpoint", code=spec["code"],
                name_en=spec["name_en"], name_th=spec["name_th"], parent_id=home, city=city, geometry=geom,
                properties={"mode": spec["mode"], **extra}, source=file))
            continue
        kind = kinds.get(row["category"])
        spec = others.get(row["name"])
        if kind is None or spec is None:
            raise ConfigError(f"{where}: {row['category']} {row['name']!r} is not described in city.json")
        out.append(Place(
            id=place_id(kind, spec["code"]), kind=kind, code=spec["code"], name_en=row["name"],
            name_th=spec.get("name_th"), parent_id=_parent(admin, geom), city=city, geometry=geom,
            properties=extra, source=file))
    missing = set(checkpoints) - {r["name"] for r in rows}
    if missing:
        raise ConfigError(f"{file}: checkpoints named in city.json but absent: {sorted(missing)}")
    return out


def _piers(manifest: dict[str, Any], rows: list[dict[str, str]], file: str, city: str,
           admin: Any) -> list[Place]:
    codes = {p["name"]: p["code"] for p in manifest["piers"]}
    out: list[Place] = []
    for i, row in enumerate(rows, start=2):
        code = codes.get(row["name_en"])
        if code is None:
            raise ConfigError(f"{file} line {i}: pier {row['name_en']!r} has no code in city.json")
        geom = _point(row, f"{file} line {i}")
        out.append(Place(
            id=place_id("pier", code), kind="pier", code=code, name_en=row["name_en"],
            name_th=row.get("name_th") or None, parent_id=_parent(admin, geom), city=city, geometry=geom,
            properties={"province_by_polygon": row.get("province_by_polygon")}, source=file))
    return out


def _bus_stops(rows: list[dict[str, str]], file: str, city: str, admin: Any) -> list[Place]:
    out: list[Place] = []
    for i, row in enumerate(rows, start=2):
        geom = _point(row, f"{file} line {i}")
        code = row["stop_no"].strip()
        out.append(Place(
            id=place_id("bus_stop", code), kind="bus_stop", code=code, name_en=row["name_en"].strip(),
            name_th=(row.get("name_th") or "").strip() or None, parent_id=_parent(admin, geom), city=city,
            geometry=geom, properties={"route": row["route"], "direction": row["direction"].strip()},
            source=file))
    return out


def _check_unique(places: Iterable[Place], where: str) -> None:
    seen: set[str] = set()
    for place in places:
        if place.id in seen:
            raise ConfigError(f"{where}: duplicate place id {place.id}")
        seen.add(place.id)


# -- another city's file -------------------------------------------------------------------------------------
def read_city_file(path: str | Path, *, city: str | None = None) -> list[Place]:
    """Places from a GeoJSON FeatureCollection.

    Each feature needs ``properties.kind`` and ``properties.code`` (the id becomes ``kind:code``) and
    ``properties.name_en``; ``name_th`` and ``parent_id`` are optional; other properties are kept. The city
    name is ``city``, else the collection's ``city`` (or ``name``) member, else the file name without
    extension. Raises ``ValidationFailed`` naming the feature index and the field at fault."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ValidationFailed(f"{path.name}: cannot read the file ({err.strerror})",
                               code="city_file") from err
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ValidationFailed(f"{path.name}: not valid JSON ({err})", code="city_file") from err
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ValidationFailed(f"{path.name}: expected a GeoJSON FeatureCollection", code="city_file")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise ValidationFailed(f"{path.name}: 'features' must be a non-empty list", code="city_file")
    name = city or doc.get("city") or doc.get("name") or re.sub(r"[^a-z0-9_\-]+", "_", path.stem.lower())
    if not isinstance(name, str) or not CITY_RE.match(name):
        raise ValidationFailed(f"{path.name}: city name {name!r} must be lower-case letters, digits, _ or -",
                               code="city_file", field="city")
    places: list[Place] = []
    first_seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        place = _feature_place(feature, index, name, path.name)
        if place.id in first_seen:
            _fail(path.name, index, "code", f"duplicate id {place.id} (also feature {first_seen[place.id]})")
        first_seen[place.id] = index
        places.append(place)
    return places


def _fail(file: str, index: int, field: str, problem: str) -> NoReturn:
    raise ValidationFailed(f"{file}: feature {index}: {field}: {problem}", code="city_file",
                           feature=index, field=field)


def _text(props: dict[str, Any], key: str, file: str, index: int, *, required: bool, max_len: int,
          pattern: re.Pattern[str] | None = None) -> str | None:
    value = props.get(key)
    if value is None or value == "":
        if required:
            _fail(file, index, key, "missing")
        return None
    if isinstance(value, int) and not isinstance(value, bool) and key == "code":
        value = str(value)
    if not isinstance(value, str):
        _fail(file, index, key, f"must be a string, not {type(value).__name__}")
    value = value.strip()
    if not value or len(value) > max_len:
        _fail(file, index, key, f"must be 1 to {max_len} characters")
    if pattern is not None and not pattern.match(value):
        _fail(file, index, key, f"{value!r} does not match {pattern.pattern}")
    return str(value)


def _feature_place(feature: Any, index: int, city: str, file: str) -> Place:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        _fail(file, index, "type", "expected a GeoJSON Feature")
    props = feature.get("properties")
    if not isinstance(props, dict):
        _fail(file, index, "properties", "missing or not an object")
    kind = _text(props, "kind", file, index, required=True, max_len=40, pattern=KIND_RE)
    code = _text(props, "code", file, index, required=True, max_len=40, pattern=CODE_RE)
    name_en = _text(props, "name_en", file, index, required=True, max_len=200)
    name_th = _text(props, "name_th", file, index, required=False, max_len=200)
    parent_id = _text(props, "parent_id", file, index, required=False, max_len=80)
    if parent_id is not None and ":" not in parent_id:
        _fail(file, index, "parent_id", f"{parent_id!r} is not a place id like 'district:8301'")
    assert kind is not None and code is not None and name_en is not None
    geometry = _geometry(feature.get("geometry"), file, index)
    extra = {k: v for k, v in props.items() if k not in RESERVED}
    return Place(id=place_id(kind, code), kind=kind, code=code, name_en=name_en, name_th=name_th,
                 parent_id=parent_id, city=city, geometry=geometry, properties=extra, source=file)


def _geometry(value: Any, file: str, index: int) -> BaseGeometry:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        _fail(file, index, "geometry", "missing or not a GeoJSON geometry object")
    try:
        geom = geometry_from_geojson(value)
    except (GEOSException, ShapelyError, ValueError, TypeError) as err:
        _fail(file, index, "geometry", f"not a valid GeoJSON geometry ({str(err)[:120]})")
    if geom.is_empty:
        _fail(file, index, "geometry", "is empty")
    coords = shapely.get_coordinates(geom)
    if not all(math.isfinite(float(v)) for v in coords.ravel()):
        _fail(file, index, "geometry", "coordinates must be finite numbers")
    xmin, ymin, xmax, ymax = geom.bounds
    if xmin < -180 or xmax > 180 or ymin < -90 or ymax > 90:
        _fail(file, index, "geometry", "coordinates must be WGS84 longitude, latitude (lon in -180..180, "
                                       "lat in -90..90)")
    if not geom.is_valid:
        _fail(file, index, "geometry", f"invalid ({shapely.is_valid_reason(geom)})")
    return geom
