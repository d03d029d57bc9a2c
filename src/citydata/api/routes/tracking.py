"""Tourist tracking over HTTP: the checkpoint API (immigration), the app API (enrol, pings), the 191 view,
hotels, health, zones and data-subject requests. Thin: the logic is in ``citydata.tracking``.

Reads of personal data need a purpose: the ``purpose`` query parameter or the ``X-Purpose`` header.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response

from citydata.api.deps import Allowed, PlatformDep, client_key, resolve_principal
from citydata.api.hot_routes import HotRoute
from citydata.auth import Principal, roles_for
from citydata.errors import Unavailable, ValidationFailed
from citydata.tracking.arrivals import ArrivalIn, ArrivalOut, DepartureIn, EnrolIn, EnrolOut, ZoneIn
from citydata.tracking.pings import PingIn, PingsAccepted

if TYPE_CHECKING:
    from citydata.app import Platform
    from citydata.tracking.service import TrackingService

router = APIRouter(prefix="/api/v1/tracking", tags=["tracking"])
PurposeQ = Annotated[str | None, Query(max_length=300, description="Why the personal data is read (audited).")]
PurposeH = Annotated[str | None, Header(alias="X-Purpose", max_length=300)]


def tracking_of(platform: Platform) -> TrackingService:
    service: TrackingService | None = getattr(platform, "tracking", None)
    if service is None:
        raise Unavailable("tracking is not running on this node", code="tracking_unavailable")
    return service


async def _anyone(request: Request) -> Principal:
    """Enrolment is open: the one-time code is the credential (a presented token must still be valid)."""
    return await resolve_principal(request)


_anyone.permission = "platform.read"  # type: ignore[attr-defined]
_anyone.roles = roles_for("platform.read")  # type: ignore[attr-defined]


def _purpose(query: str | None, header: str | None) -> str | None:
    return query or header


# -- checkpoint integration (immigration) ----------------------------------------------------------------------
@router.post("/arrivals", status_code=201, response_model=ArrivalOut,
             summary="Register an arrival at a checkpoint; returns the pseudonymous id and the app enrolment code")
async def arrival(body: ArrivalIn, platform: PlatformDep,
                  caller: Annotated[Principal, Allowed("tracking.arrivals")]) -> ArrivalOut:
    return await tracking_of(platform).arrive(caller, body)


@router.post("/departures", summary="Close a traveller's stay")
async def departure(body: DepartureIn, platform: PlatformDep,
                    caller: Annotated[Principal, Allowed("tracking.arrivals")]) -> dict[str, Any]:
    return await tracking_of(platform).depart(caller, body)


@router.get("/travellers/lookup", summary="Find travellers by passport number (blind index; audited)")
async def lookup(request: Request, platform: PlatformDep,
                 caller: Annotated[Principal, Allowed("tracking.read_identity")],
                 passport_no: Annotated[str, Query(min_length=3, max_length=30)],
                 purpose: PurposeQ = None, x_purpose: PurposeH = None) -> dict[str, Any]:
    ids = await tracking_of(platform).vault.lookup_passport(caller, passport_no, _purpose(purpose, x_purpose),
                                                           client=client_key(request))
    return {"traveller_ids": ids}


@router.get("/travellers/{traveller_id}/identity", summary="A traveller's identity (audited; purpose required)")
async def identity(traveller_id: str, request: Request, platform: PlatformDep,
                   caller: Annotated[Principal, Allowed("tracking.read_identity")],
                   purpose: PurposeQ = None, x_purpose: PurposeH = None) -> dict[str, Any]:
    return await tracking_of(platform).vault.read(caller, traveller_id, _purpose(purpose, x_purpose),
                                                  client=client_key(request))


@router.get("/incident/travellers/{traveller_id}/identity",
            summary="Police roles: a traveller's identity within an incident assigned to the caller (audited)")
async def incident_identity(traveller_id: str, request: Request, platform: PlatformDep,
                            caller: Annotated[Principal, Allowed("tracking.read_identity_incident")],
                            purpose: PurposeQ = None, x_purpose: PurposeH = None) -> dict[str, Any]:
    return await tracking_of(platform).vault.read(caller, traveller_id, _purpose(purpose, x_purpose),
                                                  client=client_key(request))


# -- the tourist app ---------------------------------------------------------------------------------------------
@router.post("/enrol", response_model=EnrolOut, summary="Exchange the one-time enrolment code for a device token")
async def enrol(body: EnrolIn, platform: PlatformDep, caller: Annotated[Principal, Depends(_anyone)]) -> EnrolOut:
    return await tracking_of(platform).enrol(body.enrolment_code)


_PINGS_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [{"type": "object", "required": ["pings"],
               "properties": {"pings": {"type": "array", "items": PingIn.model_json_schema()}}},
              PingIn.model_json_schema()]}}}}}


@router.post("/pings", status_code=202, response_model=PingsAccepted, openapi_extra=_PINGS_BODY,
             summary="Report one location or a batch (device token of an enrolled app)",
             description="Items are checked one by one: a bad item is rejected with its index and a code, the "
                         "rest is kept. Duplicates (same time) are idempotent. When no item is accepted the "
                         "answer is 400 problem+json with the first item's code. Impossible-speed fixes are "
                         "stored flagged and listed as rejected (code impossible_speed).")
async def pings(request: Request, platform: PlatformDep,
                caller: Annotated[Principal, Allowed("tracking.ping")]) -> PingsAccepted:
    return await accept_pings(platform, caller, request)


async def accept_pings(platform: Platform, caller: Principal, request: Request) -> PingsAccepted:
    """The pings handler; also served by ``citydata.api.hot_routes`` ahead of the router (the hottest route)."""
    service = tracking_of(platform)
    traveller_id = await service.traveller_for(caller)
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ValidationFailed("the body is not JSON", code="invalid_body") from err
    return await service.report(traveller_id, body)


HOT_ROUTES = [HotRoute("POST", "/api/v1/tracking/pings", "tracking.ping", 202, accept_pings)]


# -- the 191 view ------------------------------------------------------------------------------------------------
@router.get("/positions", summary="Last seen of every active traveller, with the fix age (no identity)")
async def positions(platform: PlatformDep, caller: Annotated[Principal, Allowed("tracking.read_positions")],
                    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
                    offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    return await tracking_of(platform).views.read_positions(limit=limit, offset=offset)


@router.get("/attention", summary="Travellers outside the province or overdue")
async def attention(platform: PlatformDep,
                    caller: Annotated[Principal, Allowed("tracking.read_positions")]) -> dict[str, Any]:
    return await tracking_of(platform).views.read_attention()


@router.get("/travellers/{traveller_id}/track",
            summary="One traveller's fixes: admin, or police roles within an assigned incident (audited)")
async def track(traveller_id: str, request: Request, platform: PlatformDep,
                caller: Annotated[Principal, Allowed("tracking.read_positions")],
                purpose: PurposeQ = None, x_purpose: PurposeH = None, since: datetime | None = None,
                until: datetime | None = None,
                limit: Annotated[int, Query(ge=1, le=50_000)] = 5000) -> dict[str, Any]:
    return await tracking_of(platform).views.track(caller, traveller_id, _purpose(purpose, x_purpose),
                                                   since=since, until=until, limit=limit,
                                                   client=client_key(request))


@router.get("/density", summary="Active travellers per sub-district or H3 cell (counts under k suppressed "
                                "below police)")
async def density(platform: PlatformDep, caller: Annotated[Principal, Allowed("tracking.read_positions")],
                  by: Annotated[str, Query(pattern="^(subdistrict|h3)$")] = "subdistrict",
                  res: Annotated[int, Query(ge=5, le=10)] = 8) -> dict[str, Any]:
    return await tracking_of(platform).views.read_density(caller, by=by, res=res)


@router.get("/aggregates", summary="Hourly distinct travellers per sub-district (k-anonymous; kept after purges)")
async def aggregates(platform: PlatformDep, caller: Annotated[Principal, Allowed("analytics.read")],
                     since: datetime | None = None) -> dict[str, Any]:
    return await tracking_of(platform).views.aggregates(since=since)


# -- zones --------------------------------------------------------------------------------------------------------
@router.get("/zones", summary="Operator-drawn zones (fences)")
async def zones(platform: PlatformDep,
                caller: Annotated[Principal, Allowed("tracking.read_positions")]) -> dict[str, Any]:
    return {"items": tracking_of(platform).list_zones()}


@router.post("/zones", status_code=201, summary="Draw a zone (GeoJSON Polygon); travellers get entered/left events")
async def add_zone(body: ZoneIn, platform: PlatformDep,
                   caller: Annotated[Principal, Allowed("rules.write")]) -> dict[str, Any]:
    return await tracking_of(platform).add_zone(caller, body)


@router.delete("/zones/{zone_id}", status_code=204, summary="Delete a zone")
async def delete_zone(zone_id: str, platform: PlatformDep,
                      caller: Annotated[Principal, Allowed("rules.write")]) -> Response:
    await tracking_of(platform).delete_zone(zone_id)
    return Response(status_code=204)


# -- hotels and health ---------------------------------------------------------------------------------------
@router.get("/hotel/guests", summary="The caller's hotel's booked guests (names only with a purpose; audited)")
async def hotel_guests(request: Request, platform: PlatformDep,
                       caller: Annotated[Principal, Allowed("tracking.hotel_guests")],
                       hotel_id: Annotated[str | None, Query(max_length=80)] = None,
                       with_names: bool = False, purpose: PurposeQ = None,
                       x_purpose: PurposeH = None) -> dict[str, Any]:
    return await tracking_of(platform).views.hotel_guests(
        caller, hotel_id=hotel_id, purpose=_purpose(purpose, x_purpose), with_names=with_names,
        client=client_key(request))


@router.post("/hotel/guests/{traveller_id}/check-in", summary="Confirm a guest's check-in")
async def check_in(traveller_id: str, platform: PlatformDep,
                   caller: Annotated[Principal, Allowed("tracking.hotel_guests")]) -> dict[str, Any]:
    return await tracking_of(platform).hotel_stay(caller, traveller_id, "check-in")


@router.post("/hotel/guests/{traveller_id}/check-out", summary="Confirm a guest's check-out")
async def check_out(traveller_id: str, platform: PlatformDep,
                    caller: Annotated[Principal, Allowed("tracking.hotel_guests")]) -> dict[str, Any]:
    return await tracking_of(platform).hotel_stay(caller, traveller_id, "check-out")


@router.get("/screening", summary="Screening results by pseudonymous traveller (health, immigration)")
async def screening(platform: PlatformDep, caller: Annotated[Principal, Allowed("screening.read")],
                    failed: bool = False, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
    return await tracking_of(platform).views.screening(failed_only=failed, limit=limit)


# -- data-subject requests (PDPA) -------------------------------------------------------------------------------
@router.get("/travellers/{traveller_id}/export", summary="Everything held about one traveller (admin; audited)")
async def export(traveller_id: str, request: Request, platform: PlatformDep,
                 caller: Annotated[Principal, Allowed("users.manage")],
                 purpose: PurposeQ = None, x_purpose: PurposeH = None) -> dict[str, Any]:
    return await tracking_of(platform).retention.export(caller, traveller_id, _purpose(purpose, x_purpose),
                                                        client=client_key(request))


@router.delete("/travellers/{traveller_id}", summary="Erase everything held about one traveller (admin; audited)")
async def erase(traveller_id: str, request: Request, platform: PlatformDep,
                caller: Annotated[Principal, Allowed("users.manage")],
                purpose: PurposeQ = None, x_purpose: PurposeH = None) -> dict[str, Any]:
    deleted = await tracking_of(platform).retention.erase(caller, traveller_id, _purpose(purpose, x_purpose),
                                                          client=client_key(request))
    return {"traveller_id": traveller_id, "erased": deleted}
