"""CAP 1.2 public warnings: the public Atom feed and documents, and the operators' issue/update/cancel and
draft approval. Only operators (``cap.issue``) publish; drafts are never served publicly."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal
from citydata.incidents.cap import WarningSpec
from citydata.incidents.feed import build_feed
from citydata.incidents.ioc import ioc_of

router = APIRouter(tags=["cap"])
IDENT = r"^[A-Za-z0-9._@:-]{1,200}$"
WarningPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.get("/cap/feed.xml", summary="Atom feed of the current public warnings", response_class=Response)
async def cap_feed(platform: PlatformDep, caller: Annotated[Principal, Allowed("platform.read")]) -> Response:
    ioc = ioc_of(platform)
    s = platform.settings
    xml = build_feed(await ioc.cap.feed_entries(), base_url=s.base_url, now=platform.clock.now(),
                     title=f"{s.ioc_cap_sender_name}: public warnings", author=s.ioc_cap_sender_name, city=s.city)
    return Response(xml, media_type="application/atom+xml; charset=utf-8")


@router.get("/cap/alerts/{identifier}.xml", summary="One CAP 1.2 message", response_class=Response)
async def cap_alert(identifier: Annotated[str, Path(pattern=IDENT)], platform: PlatformDep,
                    caller: Annotated[Principal, Allowed("platform.read")]) -> Response:
    xml = await ioc_of(platform).cap.message_xml(identifier)
    return Response(xml.encode(), media_type="application/cap+xml; charset=utf-8")


@router.get("/api/v1/cap/warnings", summary="Warnings, drafts included")
async def list_warnings(platform: PlatformDep, caller: Annotated[Principal, Allowed("cap.issue")],
                        state: Annotated[str | None, Query(pattern="^(draft|active|cancelled|rejected)$")] = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    return {"items": await ioc_of(platform).cap.list(state, limit)}


@router.post("/api/v1/cap/warnings", summary="Issue a public warning now", status_code=201)
async def issue_warning(body: WarningSpec, platform: PlatformDep,
                        caller: Annotated[Principal, Allowed("cap.issue")]) -> dict[str, Any]:
    return await ioc_of(platform).cap.issue(caller, body)


@router.get("/api/v1/cap/warnings/{warning_id}", summary="One warning with its CAP messages")
async def get_warning(warning_id: WarningPath, platform: PlatformDep,
                      caller: Annotated[Principal, Allowed("cap.issue")]) -> dict[str, Any]:
    return await ioc_of(platform).cap.get(warning_id)


@router.put("/api/v1/cap/warnings/{warning_id}", summary="Edit a draft, or publish an Update")
async def update_warning(warning_id: WarningPath, body: WarningSpec, platform: PlatformDep,
                         caller: Annotated[Principal, Allowed("cap.issue")]) -> dict[str, Any]:
    return await ioc_of(platform).cap.update(warning_id, caller, body)


@router.post("/api/v1/cap/warnings/{warning_id}/approve", summary="Approve a draft: publish it")
async def approve_warning(warning_id: WarningPath, platform: PlatformDep,
                          caller: Annotated[Principal, Allowed("cap.issue")],
                          body: WarningSpec | None = None) -> dict[str, Any]:
    return await ioc_of(platform).cap.approve(warning_id, caller, body)


@router.post("/api/v1/cap/warnings/{warning_id}/cancel", summary="Cancel a warning (reject a draft)")
async def cancel_warning(warning_id: WarningPath, platform: PlatformDep,
                         caller: Annotated[Principal, Allowed("cap.issue")]) -> dict[str, Any]:
    return await ioc_of(platform).cap.cancel(warning_id, caller)
