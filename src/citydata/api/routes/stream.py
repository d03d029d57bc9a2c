"""``GET /api/v1/stream``: Server-Sent Events (``alert``, ``incident``, ``observation``), filtered by role.

``?events=alert,incident`` narrows the event names; ``Last-Event-ID`` resumes alerts and incidents from the
node's bounded buffer; a heartbeat comment is sent every ``ioc_stream_heartbeat_s``; ``?max_s=`` ends the
stream after that many seconds (scripts, tests). A client that reads too slowly is disconnected."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.responses import StreamingResponse

from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal
from citydata.errors import ValidationFailed
from citydata.incidents.ioc import ioc_of

router = APIRouter(tags=["stream"])
EVENT_NAMES = frozenset({"alert", "incident", "observation"})


@router.get("/api/v1/stream", summary="Live events (Server-Sent Events)", response_class=StreamingResponse)
async def stream(platform: PlatformDep, caller: Annotated[Principal, Allowed("sensors.read")],
                 events: Annotated[str, Query(max_length=100)] = "alert,incident,observation",
                 max_s: Annotated[float | None, Query(gt=0, le=86_400)] = None,
                 last_event_id: Annotated[str | None, Header(max_length=100)] = None) -> StreamingResponse:
    wanted = frozenset(e.strip() for e in events.split(",") if e.strip())
    if not wanted or not wanted <= EVENT_NAMES:
        raise ValidationFailed(f"events must be among {', '.join(sorted(EVENT_NAMES))}", code="invalid_events")
    ioc = ioc_of(platform)
    body = ioc.live.stream(caller, events=wanted, last_event_id=last_event_id,
                           heartbeat_s=platform.settings.ioc_stream_heartbeat_s, max_s=max_s)
    return StreamingResponse(body, media_type="text/event-stream", headers={
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"})
