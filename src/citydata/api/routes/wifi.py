"""WiFi footfall over HTTP: hotspots (registry, dashboard map, public locations), session events in, footfall
and stats out. See docs/wifi.md."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from citydata.api.deps import Allowed, PlatformDep
from citydata.api.hot_routes import HotRoute, NotHot
from citydata.auth import Principal
from citydata.errors import CityDataError, Unavailable, ValidationFailed
from citydata.wifi import WifiService, views
from citydata.wifi.parsers.base import formats
from citydata.wifi.registry import HotspotIn, HotspotPatch

if TYPE_CHECKING:
    from citydata.app import Platform

router = APIRouter(prefix="/api/v1/wifi", tags=["wifi"])
MAX_BODY = 32 * 1024 * 1024
MAX_FORMAT = 20


class PayloadTooLarge(CityDataError):
    status, code, title = 413, "payload_too_large", "Payload too large"


def _wifi(platform: Any) -> WifiService:
    if platform.wifi is None:
        raise Unavailable("WiFi footfall is not running on this node (CITYDATA_WIFI_ENABLED)", code="wifi_disabled")
    return platform.wifi  # type: ignore[no-any-return]


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationFailed(f"{name} needs a time zone (e.g. 2026-11-21T10:00:00+07:00)", code="naive_time")
    return value


@router.post("/events", summary="Ingest WiFi session events (JSON lines, or syslog / RADIUS lines)",
             status_code=202, openapi_extra={"requestBody": {"content": {
                 "application/x-ndjson": {"schema": {"type": "string"}},
                 "text/plain": {"schema": {"type": "string"}}}, "required": True}})
async def post_events(request: Request, platform: PlatformDep, caller: Annotated[Principal, Allowed("wifi.ingest")],
                      fmt: Annotated[str, Query(alias="format", max_length=MAX_FORMAT,
                                                description="jsonl (default), radius, hostapd, cisco, aruba, or "
                                                            "syslog to detect the format per line")] = "jsonl",
                      ) -> dict[str, Any]:
    return await ingest_events(platform, request, fmt)


async def ingest_events(platform: Platform, request: Request, fmt: str) -> dict[str, Any]:
    wifi = _wifi(platform)
    if fmt not in formats():
        raise ValidationFailed(f"unknown format {fmt!r} (known: {', '.join(formats())})", code="unknown_format")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise PayloadTooLarge(f"body larger than {MAX_BODY} bytes")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"body larger than {MAX_BODY} bytes")
    lines = body.decode("utf-8", "backslashreplace").splitlines()
    if len(lines) > platform.settings.wifi_max_lines:
        raise PayloadTooLarge(f"more than {platform.settings.wifi_max_lines} lines in one request "
                              "(CITYDATA_WIFI_MAX_LINES)", code="too_many_lines")
    result = await wifi.ingest_lines(lines, fmt, "http", refuse_when_busy=True)
    return result.as_dict()


async def post_events_hot(platform: Platform, caller: Principal, request: Request) -> Response:
    """``post_events`` as served by ``citydata.api.hot_routes``; a ``format`` that FastAPI's own validation
    refuses (longer than 20) is left to it."""
    fmt = request.query_params.get("format", "jsonl")
    if len(fmt) > MAX_FORMAT:
        raise NotHot
    return Response(orjson.dumps(await ingest_events(platform, request, fmt)), status_code=202,
                    media_type="application/json")


HOT_ROUTES = [HotRoute("POST", "/api/v1/wifi/events", "wifi.ingest", 202, post_events_hot)]


@router.get("/hotspots", summary="The hotspot registry (no footfall)")
async def list_hotspots(platform: PlatformDep, caller: Annotated[Principal, Allowed("wifi.hotspots")],
                        zone: Annotated[str | None, Query(max_length=64)] = None,
                        subdistrict: Annotated[str | None, Query(max_length=12)] = None,
                        active: bool | None = None,
                        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                        offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    wifi = _wifi(platform)
    return {"items": wifi.registry.list(zone=zone, subdistrict=subdistrict, active=active, limit=limit,
                                        offset=offset), "zones": wifi.registry.zones()}


@router.post("/hotspots", summary="Create or replace a hotspot (idempotent on id)", status_code=201,
             responses={200: {"description": "An existing hotspot was replaced"}})
async def put_hotspot(body: HotspotIn, response: Response, platform: PlatformDep,
                      caller: Annotated[Principal, Allowed("wifi.manage")]) -> dict[str, Any]:
    hotspot, created = await _wifi(platform).registry.upsert(body)
    if not created:
        response.status_code = 200
    return hotspot


@router.get("/hotspots/{hotspot_id}", summary="One hotspot")
async def get_hotspot(hotspot_id: str, platform: PlatformDep,
                      caller: Annotated[Principal, Allowed("wifi.hotspots")]) -> dict[str, Any]:
    from citydata.wifi.registry import public

    return public(_wifi(platform).registry.get_row(hotspot_id))


@router.patch("/hotspots/{hotspot_id}", summary="Change a hotspot (name, place, zone, operator, AP MAC, active)")
async def patch_hotspot(hotspot_id: str, body: HotspotPatch, platform: PlatformDep,
                        caller: Annotated[Principal, Allowed("wifi.manage")]) -> dict[str, Any]:
    return await _wifi(platform).registry.patch(hotspot_id, body)


@router.get("/map", summary="Hotspots as GeoJSON with the latest hour's footfall (dashboard map)")
async def footfall_map(platform: PlatformDep, caller: Annotated[Principal, Allowed("wifi.read")],
                       hour: Annotated[datetime | None, Query(description="an hour (default: the latest with "
                                                                          "data)")] = None) -> dict[str, Any]:
    hour = _aware(hour, "hour")
    if hour is not None:
        hour = hour.replace(minute=0, second=0, microsecond=0)
    return await views.map_geojson(_wifi(platform), hour=hour)


@router.get("/public/hotspots", summary="Free WiFi locations, nearest first (public; no footfall)")
async def public_hotspots(platform: PlatformDep, caller: Annotated[Principal, Allowed("platform.read")],
                          lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
                          lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict[str, Any]:
    if (lat is None) != (lon is None):
        raise ValidationFailed("give both lat and lon, or neither", code="invalid_point")
    return views.public_hotspots(_wifi(platform), lon=lon, lat=lat, limit=limit)


@router.get("/footfall", summary="Footfall rollups by hotspot, zone, sub-district or city, per hour or day")
async def get_footfall(platform: PlatformDep, caller: Annotated[Principal, Allowed("wifi.read")],
                       level: Annotated[str, Query(description="hotspot, zone, subdistrict or city")] = "zone",
                       area: Annotated[str | None, Query(max_length=64, description="one hotspot id, zone name or "
                                                         "tam_code (default: all)")] = None,
                       granularity: Annotated[str, Query(description="hour (UTC hours) or day (local days)")] = "hour",
                       start: Annotated[datetime | None, Query(alias="from")] = None,
                       end: Annotated[datetime | None, Query(alias="to")] = None,
                       limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000) -> dict[str, Any]:
    return await views.footfall(_wifi(platform), level=level, area=area, granularity=granularity,
                                start=_aware(start, "from"), end=_aware(end, "to"), limit=limit)


@router.get("/stats", summary="WiFi ingest figures: hotspots, events, randomised MACs, dead letters")
async def stats(platform: PlatformDep, caller: Annotated[Principal, Allowed("wifi.read")]) -> dict[str, Any]:
    return await _wifi(platform).stats()


@router.post("/rollups", summary="Write pending presence and rebuild the touched hours and days now",
             status_code=200)
async def rollup_now(platform: PlatformDep, caller: Annotated[Principal, Allowed("wifi.manage")]) -> dict[str, Any]:
    return await _wifi(platform).flush(days=True)
