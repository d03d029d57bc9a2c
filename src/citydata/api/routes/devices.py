"""The device registry over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal
from citydata.devices import DeviceIn, HeartbeatIn
from citydata.errors import Forbidden

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("", summary="List devices")
async def list_devices(platform: PlatformDep, caller: Annotated[Principal, Allowed("devices.read")],
                       kind: Annotated[str | None, Query(max_length=40)] = None,
                       limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                       offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, list[dict[str, Any]]]:
    return {"items": await platform.devices.list(kind=kind, limit=limit, offset=offset)}


@router.post("", summary="Register or update a device (idempotent on id)", status_code=201)
async def register_device(body: DeviceIn, response: Response, platform: PlatformDep,
                          caller: Annotated[Principal, Allowed("devices.write")]) -> dict[str, Any]:
    if caller.device_id and caller.device_id != body.id:
        raise Forbidden("this token is bound to another device", code="device_mismatch")
    device = await platform.devices.register(body)
    if not device.pop("created"):
        response.status_code = 200
    return device


@router.get("/{device_id}", summary="One device")
async def get_device(device_id: str, platform: PlatformDep,
                     caller: Annotated[Principal, Allowed("devices.read")]) -> dict[str, Any]:
    return await platform.devices.get(device_id)


@router.post("/{device_id}/heartbeat", summary="Report that a device is alive", status_code=202)
async def heartbeat(device_id: str, platform: PlatformDep,
                    caller: Annotated[Principal, Allowed("devices.write")],
                    body: HeartbeatIn | None = None) -> dict[str, Any]:
    if caller.device_id and caller.device_id != device_id:
        raise Forbidden("this token is bound to another device", code="device_mismatch")
    at = await platform.devices.heartbeat(device_id, body or HeartbeatIn())
    platform.metrics.ingested.labels("heartbeat", "http").inc()
    return {"device_id": device_id, "recorded_at": at.isoformat()}
