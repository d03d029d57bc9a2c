"""Alerts over HTTP: list (``?kind=&state=&since=``), read, acknowledge and clear."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from citydata.api.deps import Allowed, PlatformDep, RowId
from citydata.auth import Principal
from citydata.incidents.ioc import ioc_of

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


class ClearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=500)


@router.get("", summary="List alerts (newest first)")
async def list_alerts(platform: PlatformDep, caller: Annotated[Principal, Allowed("alerts.read")],
                      kind: Annotated[str | None, Query(max_length=100, description="a kind, or a prefix "
                                                        "ending in .* (env.*)")] = None,
                      state: Annotated[str | None, Query(pattern="^(open|acknowledged|cleared|active)$")] = None,
                      since: Annotated[datetime | None, Query(description="opened or changed since (ISO 8601 "
                                                              "with offset)")] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                      offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, list[dict[str, Any]]]:
    items = await ioc_of(platform).alerts.list(caller, kind=kind, state=state, since=since, limit=limit,
                                               offset=offset)
    return {"items": items}


@router.get("/{alert_id}", summary="One alert, with its evidence")
async def get_alert(alert_id: RowId, platform: PlatformDep,
                    caller: Annotated[Principal, Allowed("alerts.read")]) -> dict[str, Any]:
    return await ioc_of(platform).alerts.get(alert_id, caller)


@router.post("/{alert_id}/ack", summary="Acknowledge an alert")
async def ack_alert(alert_id: RowId, platform: PlatformDep, caller: Annotated[Principal, Allowed("alerts.ack")],
                    body: AckIn | None = None) -> dict[str, Any]:
    return await ioc_of(platform).alerts.acknowledge(alert_id, caller, body.note if body else None)


@router.post("/{alert_id}/clear", summary="Clear an alert by hand")
async def clear_alert(alert_id: RowId, platform: PlatformDep, caller: Annotated[Principal, Allowed("alerts.ack")],
                      body: ClearIn | None = None) -> dict[str, Any]:
    return await ioc_of(platform).alerts.clear(alert_id, caller, body.reason if body else None)
