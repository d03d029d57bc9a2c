"""Tourist problem reports: submit and follow up (public), list and read (responders; reads audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from citydata.api.deps import Allowed, PlatformDep, client_key
from citydata.auth import Principal
from citydata.errors import Unavailable
from citydata.reports import ReportIn, ReportService

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Code = Annotated[str, Path(pattern=r"^[Rr]-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}$")]


def _service(platform: Any) -> ReportService:
    service: ReportService | None = platform.reports
    if service is None:
        raise Unavailable("reports are not running on this node", code="reports_unavailable")
    return service


@router.post("", summary="Send a problem report (category, text, optional photo and location); returns the "
                         "follow-up code", status_code=201)
async def submit_report(body: ReportIn, request: Request, platform: PlatformDep,
                        caller: Annotated[Principal, Allowed("reports.submit")]) -> dict[str, Any]:
    return await _service(platform).submit(body, client_key(request))


@router.get("/status/{code}", summary="Follow a report up by its code (state only, never the content)")
async def report_status(code: Code, platform: PlatformDep,
                        caller: Annotated[Principal, Allowed("reports.submit")]) -> dict[str, Any]:
    return await _service(platform).status(code)


@router.get("", summary="List reports (no text or photo)")
async def list_reports(platform: PlatformDep, caller: Annotated[Principal, Allowed("reports.read")],
                       since: Annotated[datetime | None, Query()] = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, list[dict[str, Any]]]:
    return {"items": await _service(platform).list(since, limit)}


@router.get("/{code}", summary="One report with its text (audited)")
async def get_report(code: Code, platform: PlatformDep,
                     caller: Annotated[Principal, Allowed("reports.read")]) -> dict[str, Any]:
    return await _service(platform).detail(code, caller)


@router.get("/{code}/photo", summary="The report's photo, JPEG (audited)", response_class=Response)
async def report_photo(code: Code, platform: PlatformDep,
                       caller: Annotated[Principal, Allowed("reports.read")]) -> Response:
    data = await _service(platform).photo(code, caller)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store",
                                                            "X-Content-Type-Options": "nosniff"})
