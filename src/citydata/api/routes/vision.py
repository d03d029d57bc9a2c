"""Watchlists, face search and hits, the plate hotlist, vendor analytics and the analytics status.

Every watchlist enrolment, search, hit listing and snapshot read is audited (``platform.audit``); snapshot
reads need a purpose. Thin: the logic is in ``citydata.vision``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from citydata.api.deps import Allowed, PlatformDep, client_key
from citydata.api.hot_routes import HotRoute, NotHot
from citydata.api.routes.cameras import vision_of
from citydata.auth import Principal
from citydata.errors import ValidationFailed
from citydata.vision.frames import decode_image
from citydata.vision.schema import vision_plate_hits, vision_plate_sightings

if TYPE_CHECKING:
    from citydata.app import Platform

router = APIRouter(prefix="/api/v1/vision", tags=["vision"])


class WatchlistIn(BaseModel):
    name: str | None = Field(None, max_length=200)
    threshold: float | None = Field(None, gt=0, lt=1, description="Cosine distance at or below which faces match.")


class EnrolIn(BaseModel):
    subject_id: str = Field(min_length=1, max_length=80, description="Case reference (not a name).")
    reason: str = Field(min_length=3, max_length=500)
    expires_at: datetime
    images: list[str] = Field(min_length=1, max_length=20, description="Base64 JPEG/PNG photos, one face each.")


class ReviewIn(BaseModel):
    verdict: str = Field(description="wrong or confirmed")


class HotlistIn(BaseModel):
    plate: str = Field(min_length=1, max_length=40)
    province: str | None = Field(None, max_length=80)
    list: str = Field("wanted", min_length=1, max_length=40)
    reason: str = Field(min_length=3, max_length=500)
    expires_at: datetime | None = None


@router.get("/status", summary="Analytics readiness (faces, plates), camera states and counters")
async def status(platform: PlatformDep, _: Annotated[Principal, Allowed("cameras.read")]) -> dict[str, Any]:
    service = vision_of(platform)
    return {**service.readiness(), "counters": service.counters()}


@router.get("/watchlists", summary="Watchlists with their thresholds and live subject counts")
async def watchlists(platform: PlatformDep,
                     _: Annotated[Principal, Allowed("vision.watchlist")]) -> list[dict[str, Any]]:
    return vision_of(platform).watchlists.describe()


@router.put("/watchlists/{watchlist}", summary="Create a watchlist or set its threshold (audited)")
async def put_watchlist(watchlist: str, body: WatchlistIn, platform: PlatformDep,
                        caller: Annotated[Principal, Allowed("vision.watchlist")]) -> dict[str, Any]:
    out = await vision_of(platform).watchlists.ensure_watchlist(caller, watchlist, name=body.name,
                                                                threshold=body.threshold)
    return {**out, "created_at": out["created_at"].isoformat()}


@router.post("/watchlists/{watchlist}/subjects", status_code=201,
             summary="Enrol a subject with several photos, a reason and an expiry (audited)")
async def enrol(watchlist: str, body: EnrolIn, request: Request, platform: PlatformDep,
                caller: Annotated[Principal, Allowed("vision.watchlist")]) -> dict[str, Any]:
    service = vision_of(platform)
    images = []
    for i, b64 in enumerate(body.images):
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as err:
            raise ValidationFailed(f"images[{i}] is not base64", code="image_corrupt") from err
        images.append(decode_image(raw))
    from citydata.vision.enrol import embeddings_for_enrolment

    embeddings = await embeddings_for_enrolment(service, images)
    return await service.watchlists.enrol(caller, watchlist, body.subject_id, embeddings, reason=body.reason,
                                          expires_at=body.expires_at, client=client_key(request))


@router.delete("/watchlists/{watchlist}/subjects/{subject_id}", status_code=204,
               summary="Remove a subject and its photos (audited)")
async def unenrol(watchlist: str, subject_id: str, platform: PlatformDep,
                  caller: Annotated[Principal, Allowed("vision.watchlist")],
                  reason: Annotated[str, Query(min_length=3, max_length=300)]) -> Response:
    await vision_of(platform).watchlists.remove(caller, watchlist, subject_id, reason=reason)
    return Response(status_code=204)


@router.post("/search", summary="Match the faces of an image against the watchlists (audited; nothing stored)")
async def search(request: Request, platform: PlatformDep, caller: Annotated[Principal, Allowed("vision.watchlist")],
                 watchlist: Annotated[list[str] | None, Query()] = None) -> list[dict[str, Any]]:
    image = decode_image(await request.body())
    return await vision_of(platform).search(caller, image, watchlist, client=client_key(request))


@router.get("/hits", summary="Recent watchlist hits (audited)")
async def hits(request: Request, platform: PlatformDep, caller: Annotated[Principal, Allowed("vision.watchlist")],
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    return await vision_of(platform).list_hits(caller, limit=limit, client=client_key(request))


@router.get("/hits/{hit_id}/snapshot", summary="A hit's cropped snapshot, JPEG (audited; purpose required)",
            response_class=Response)
async def snapshot(hit_id: str, request: Request, platform: PlatformDep,
                   caller: Annotated[Principal, Allowed("vision.watchlist")],
                   purpose: Annotated[str, Query(min_length=3, max_length=300)]) -> Response:
    data = await vision_of(platform).snapshot(caller, hit_id, purpose, client=client_key(request))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.post("/hits/{hit_id}/review", summary="Mark a hit wrong (becomes a negative sample) or confirmed")
async def review(hit_id: str, body: ReviewIn, request: Request, platform: PlatformDep,
                 caller: Annotated[Principal, Allowed("vision.review")]) -> dict[str, Any]:
    return await vision_of(platform).watchlists.mark(caller, hit_id, body.verdict, client=client_key(request))


@router.get("/hotlist", summary="The plate hotlist")
async def hotlist(platform: PlatformDep, _: Annotated[Principal, Allowed("vision.hotlist")]) -> list[dict[str, Any]]:
    rows = vision_of(platform).hotlist.entries.values()
    return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]


@router.post("/hotlist", status_code=201, summary="Add a plate to the hotlist (audited)")
async def add_hotlist(body: HotlistIn, platform: PlatformDep,
                      caller: Annotated[Principal, Allowed("vision.hotlist")]) -> dict[str, Any]:
    return await vision_of(platform).hotlist.add(caller, body.plate, list_name=body.list, reason=body.reason,
                                                 province=body.province, expires_at=body.expires_at)


@router.delete("/hotlist/{plate}", status_code=204, summary="Remove a plate from the hotlist (audited)")
async def remove_hotlist(plate: str, platform: PlatformDep,
                         caller: Annotated[Principal, Allowed("vision.hotlist")]) -> Response:
    await vision_of(platform).hotlist.remove(caller, plate)
    return Response(status_code=204)


@router.get("/plate-hits", summary="Recent hotlist hits")
async def plate_hits(platform: PlatformDep, _: Annotated[Principal, Allowed("vision.hotlist")],
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    rows = await vision_of(platform).store.fetch_all(
        select(vision_plate_hits).order_by(vision_plate_hits.c.t.desc()).limit(limit))
    return [{**dict(r), "t": r["t"].isoformat()} for r in rows]


@router.get("/traffic/counts", summary="Vehicles (distinct keyed plate hashes) per camera since a time")
async def traffic_counts(platform: PlatformDep, _: Annotated[Principal, Allowed("cameras.read")],
                         since: datetime) -> list[dict[str, Any]]:
    if since.tzinfo is None:
        raise ValidationFailed("since needs a time zone", code="invalid_time")
    t = vision_plate_sightings
    rows = await vision_of(platform).store.fetch_all(
        select(t.c.camera_id, func.count().label("sightings"), func.count(t.c.plate_hash.distinct()).label("vehicles"))
        .where(t.c.t >= since).group_by(t.c.camera_id).order_by(t.c.camera_id))
    return [dict(r) for r in rows]


@router.post("/vendor/{vendor}", summary="Ingest a vendor's edge-analytics event (ONVIF-style or vendor JSON)")
async def vendor_event(vendor: str, body: dict[str, Any], platform: PlatformDep,
                       _: Annotated[Principal, Allowed("cameras.frames")]) -> dict[str, Any]:
    return await vision_of(platform).vendor_event(vendor, body)


class VendorAccepted(BaseModel):
    camera_id: str
    events: list[str]


async def vendor_event_hot(platform: Platform, caller: Principal, request: Request) -> VendorAccepted:
    """``vendor_event`` as served by ``citydata.api.hot_routes`` (50 camera events a second at 10x peak); a body
    that is not a JSON object is left to FastAPI, whose validation answers it."""
    vendor = request.scope["path"][len(VENDOR_PREFIX):]
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise NotHot from None
    if not isinstance(body, dict):
        raise NotHot
    return VendorAccepted(**await vision_of(platform).vendor_event(vendor, body))


VENDOR_PREFIX = "/api/v1/vision/vendor/"
HOT_ROUTES = [HotRoute("POST", "/api/v1/vision/vendor/{vendor}", "cameras.frames", 200, vendor_event_hot,
                       prefix=VENDOR_PREFIX, segment=True)]
