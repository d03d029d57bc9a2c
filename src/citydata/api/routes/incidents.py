"""Incidents over HTTP (the 191 workflow): create, list, read, dispatch, move, notes, attachments, history.

Agency members (police, tourist_police, marine_police, health, hotel) see only incidents assigned to their
agency; others answer 404 for them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from citydata.api.deps import Allowed, PlatformDep, RowId
from citydata.auth import Principal
from citydata.incidents.attachments import TooLarge
from citydata.incidents.ioc import ioc_of
from citydata.incidents.workflow import DispatchIn, IncidentCreate, NoteIn, TransitionIn

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.get("", summary="List incidents (newest first)")
async def list_incidents(platform: PlatformDep, caller: Annotated[Principal, Allowed("incidents.read")],
                         state: Annotated[str | None, Query(
                             pattern=r"^(open|(new|acknowledged|dispatched|on_scene|resolved|closed)"
                                     r"(,(new|acknowledged|dispatched|on_scene|resolved|closed))*)$")] = None,
                         agency: Annotated[str | None, Query(max_length=80)] = None,
                         since: Annotated[datetime | None, Query()] = None,
                         limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                         offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, list[dict[str, Any]]]:
    return {"items": await ioc_of(platform).incidents.list(caller, state=state, agency=agency, since=since,
                                                           limit=limit, offset=offset)}


@router.post("", summary="Open an incident from alerts or by hand (a phone call)", status_code=201)
async def create_incident(body: IncidentCreate, platform: PlatformDep,
                          caller: Annotated[Principal, Allowed("incidents.write")]) -> dict[str, Any]:
    return await ioc_of(platform).incidents.create(caller, body)


@router.get("/{incident_id}", summary="One incident with notes, attachments and alerts")
async def get_incident(incident_id: RowId, platform: PlatformDep,
                       caller: Annotated[Principal, Allowed("incidents.read")]) -> dict[str, Any]:
    return await ioc_of(platform).incidents.detail(incident_id, caller)


@router.get("/{incident_id}/history", summary="The incident's audit trail")
async def incident_history(incident_id: RowId, platform: PlatformDep,
                           caller: Annotated[Principal, Allowed("incidents.read")]) -> dict[str, Any]:
    return {"items": await ioc_of(platform).incidents.history(incident_id, caller)}


@router.post("/{incident_id}/dispatch", summary="Assign to an agency and notify it")
async def dispatch_incident(incident_id: RowId, body: DispatchIn, platform: PlatformDep,
                            caller: Annotated[Principal, Allowed("incidents.dispatch")]) -> dict[str, Any]:
    return await ioc_of(platform).incidents.dispatch(incident_id, caller, body)


@router.post("/{incident_id}/transition", summary="Move the incident to another state (409 if not allowed)")
async def transition_incident(incident_id: RowId, body: TransitionIn, platform: PlatformDep,
                              caller: Annotated[Principal, Allowed("incidents.write")]) -> dict[str, Any]:
    return await ioc_of(platform).incidents.move(incident_id, caller, body)


@router.post("/{incident_id}/notes", summary="Add a note", status_code=201)
async def add_note(incident_id: RowId, body: NoteIn, platform: PlatformDep,
                   caller: Annotated[Principal, Allowed("incidents.write")]) -> dict[str, Any]:
    return await ioc_of(platform).incidents.add_note(incident_id, caller, body)


@router.post("/{incident_id}/attachments", summary="Attach a file (the request body; ?filename=)",
             status_code=201)
async def add_attachment(incident_id: RowId, request: Request, platform: PlatformDep,
                         caller: Annotated[Principal, Allowed("incidents.write")],
                         filename: Annotated[str, Query(min_length=1, max_length=200)] = "attachment") \
        -> dict[str, Any]:
    ioc = ioc_of(platform)
    limit = ioc.attachments.max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"attachments are limited to {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"attachments are limited to {limit} bytes")
        chunks.append(chunk)
    content_type = request.headers.get("content-type", "application/octet-stream")
    return await ioc.attachments.add(incident_id, caller, filename, content_type, b"".join(chunks))


@router.get("/{incident_id}/attachments/{attachment_id}", summary="Download an attachment")
async def get_attachment(incident_id: RowId, attachment_id: RowId, platform: PlatformDep,
                         caller: Annotated[Principal, Allowed("incidents.read")]) -> Response:
    row, data = await ioc_of(platform).attachments.open(incident_id, attachment_id, caller)
    return Response(data, media_type=row["content_type"], headers={
        "Content-Disposition": f'attachment; filename="{row["filename"]}"',
        "X-Content-Type-Options": "nosniff"})
