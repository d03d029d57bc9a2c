"""The reference city over HTTP: places as GeoJSON, and point lookups."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from shapely.geometry import mapping

from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal
from citydata.errors import NotFound, Unavailable

router = APIRouter(prefix="/api/v1", tags=["geography"])


def _feature(place: Any, *, geometry: bool = True) -> dict[str, Any]:
    return {"type": "Feature", "id": place.id,
            "geometry": mapping(place.geometry) if geometry else None,
            "properties": {"id": place.id, "kind": place.kind, "code": place.code, "name_en": place.name_en,
                           "name_th": place.name_th, "parent_id": place.parent_id}}


def _geography(platform: Any) -> Any:
    if platform.geography is None:
        raise Unavailable("the reference city is not loaded", code="geography_unavailable")
    return platform.geography


@router.get("/places", summary="Places of the reference city as a GeoJSON FeatureCollection")
async def list_places(platform: PlatformDep, caller: Annotated[Principal, Allowed("platform.read")],
                      kind: Annotated[str | None, Query(max_length=40, description="province, district, "
                                                        "subdistrict, checkpoint, pier, beach, ...")] = None,
                      geometry: Annotated[bool, Query(description="include geometries")] = True,
                      ) -> dict[str, Any]:
    geo = _geography(platform)
    places = geo.by_kind(kind) if kind else list(geo)
    return {"type": "FeatureCollection", "features": [_feature(p, geometry=geometry) for p in places]}


@router.get("/places/{place_id}", summary="One place as a GeoJSON Feature")
async def get_place(place_id: str, platform: PlatformDep,
                    caller: Annotated[Principal, Allowed("platform.read")]) -> dict[str, Any]:
    place = _geography(platform).get(place_id)
    if place is None:
        raise NotFound(f"place {place_id!r} does not exist", code="place_not_found")
    return _feature(place)


@router.get("/geo/locate", summary="Which province, district and sub-district contain a point")
async def locate(platform: PlatformDep, caller: Annotated[Principal, Allowed("platform.read")],
                 lat: Annotated[float, Query(ge=-90, le=90)], lon: Annotated[float, Query(ge=-180, le=180)],
                 ) -> dict[str, Any]:
    geo = _geography(platform)
    province = geo.province_at(lon, lat)
    nearest = None
    if province is None:
        found = geo.nearest_province(lon, lat, 5000.0)
        if found is not None:
            nearest = {"id": found[0].id, "name_en": found[0].name_en, "name_th": found[0].name_th,
                       "distance_m": round(found[1], 1)}
    inside = [p for p in geo.containing(lon, lat) if p.kind in ("district", "subdistrict")]
    return {
        "lat": lat, "lon": lon,
        "province": None if province is None else {"id": province.id, "code": province.code,
                                                   "name_en": province.name_en, "name_th": province.name_th},
        "nearest_province": nearest,
        "within": [{"id": p.id, "kind": p.kind, "code": p.code, "name_en": p.name_en, "name_th": p.name_th}
                   for p in inside],
    }
