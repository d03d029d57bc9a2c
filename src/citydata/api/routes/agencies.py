"""Agencies (dispatch targets and their notification endpoints) and the notification deliveries (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from citydata.api.deps import Allowed, PlatformDep, RowId
from citydata.auth import Principal
from citydata.incidents.agencies import AGENCY_ID, AgencyIn
from citydata.incidents.ioc import ioc_of

router = APIRouter(tags=["agencies"])
AgencyPath = Annotated[str, Path(pattern=AGENCY_ID)]


@router.get("/api/v1/agencies", summary="List agencies")
async def list_agencies(platform: PlatformDep,
                        caller: Annotated[Principal, Allowed("incidents.dispatch")]) -> dict[str, Any]:
    return {"items": await ioc_of(platform).agencies.list()}


@router.get("/api/v1/agencies/{agency_id}", summary="One agency")
async def get_agency(agency_id: AgencyPath, platform: PlatformDep,
                     caller: Annotated[Principal, Allowed("incidents.dispatch")]) -> dict[str, Any]:
    return await ioc_of(platform).agencies.get(agency_id)


@router.put("/api/v1/agencies/{agency_id}", summary="Create or replace an agency and its endpoints",
            responses={201: {"description": "A new agency was created"}})
async def put_agency(agency_id: AgencyPath, body: AgencyIn, response: Response, platform: PlatformDep,
                     caller: Annotated[Principal, Allowed("users.manage")]) -> dict[str, Any]:
    ioc = ioc_of(platform)
    agency, created = await ioc.agencies.put(agency_id, body)
    await platform.audit.record(caller, "agency.put", subject_type="agency", subject_id=agency_id,
                                detail={"created": created, "webhook_url": agency["webhook_url"],
                                        "secret_changed": body.webhook_secret is not None})
    if created:
        response.status_code = 201
    return agency


@router.delete("/api/v1/agencies/{agency_id}", summary="Disable an agency", status_code=204)
async def delete_agency(agency_id: AgencyPath, platform: PlatformDep,
                        caller: Annotated[Principal, Allowed("users.manage")]) -> Response:
    await ioc_of(platform).agencies.delete(agency_id)
    await platform.audit.record(caller, "agency.disable", subject_type="agency", subject_id=agency_id)
    return Response(status_code=204)


@router.get("/api/v1/admin/deliveries", summary="Notification deliveries (?state=dead for the dead-lettered)")
async def list_deliveries(platform: PlatformDep, caller: Annotated[Principal, Allowed("admin.deadletters")],
                          state: Annotated[str | None, Query(pattern="^(pending|sending|delivered|dead)$")] = None,
                          agency: Annotated[str | None, Query(max_length=80)] = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                          offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    return {"items": await ioc_of(platform).deliveries.list(state=state, agency_id=agency, limit=limit,
                                                            offset=offset)}


@router.post("/api/v1/admin/deliveries/{delivery_id}/retry", summary="Retry a dead delivery")
async def retry_delivery(delivery_id: RowId, platform: PlatformDep,
                         caller: Annotated[Principal, Allowed("admin.deadletters")]) -> dict[str, Any]:
    out = await ioc_of(platform).deliveries.retry(delivery_id)
    await platform.audit.record(caller, "delivery.retry", subject_type="delivery", subject_id=str(delivery_id))
    return out
