"""The camera registry over HTTP, single-frame upload and traffic-signal states. Thin: the logic is in
``citydata.vision``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal
from citydata.errors import Unavailable, ValidationFailed
from citydata.vision.cameras import CameraIn
from citydata.vision.frames import MAX_IMAGE_BYTES, decode_image

if TYPE_CHECKING:
    from citydata.app import Platform
    from citydata.vision.service import VisionService

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])


def vision_of(platform: Platform) -> VisionService:
    service: VisionService | None = getattr(platform, "vision", None)
    if service is None:
        raise Unavailable("CCTV analytics are not running on this node", code="vision_unavailable")
    return service


class SignalIn(BaseModel):
    state: str = Field(description="red, amber, green or off")


@router.get("", summary="List cameras")
async def list_cameras(platform: PlatformDep,
                       _: Annotated[Principal, Allowed("cameras.read")]) -> list[dict[str, Any]]:
    return vision_of(platform).cameras.list()


@router.post("", status_code=201, summary="Register a camera")
async def create_camera(body: CameraIn, platform: PlatformDep,
                        _: Annotated[Principal, Allowed("cameras.write")]) -> dict[str, Any]:
    out, _created = await vision_of(platform).put_camera(body, create_only=True)
    return out


@router.get("/{camera_id}", summary="One camera")
async def get_camera(camera_id: str, platform: PlatformDep,
                     _: Annotated[Principal, Allowed("cameras.read")]) -> dict[str, Any]:
    return vision_of(platform).cameras.public(camera_id)


@router.put("/{camera_id}", summary="Create or replace a camera (stream, analytics, privacy masks, lines)")
async def put_camera(camera_id: str, body: CameraIn, platform: PlatformDep, response: Response,
                     _: Annotated[Principal, Allowed("cameras.write")]) -> dict[str, Any]:
    if body.id != camera_id:
        raise ValidationFailed("the body's id must match the path", code="id_mismatch")
    out, created = await vision_of(platform).put_camera(body)
    response.status_code = 201 if created else 200
    return out


@router.delete("/{camera_id}", status_code=204, summary="Remove a camera")
async def delete_camera(camera_id: str, platform: PlatformDep,
                        _: Annotated[Principal, Allowed("cameras.write")]) -> Response:
    await vision_of(platform).delete_camera(camera_id)
    return Response(status_code=204)


@router.post("/{camera_id}/frames", summary="Analyse one image from this camera (JPEG/PNG body)")
async def post_frame(camera_id: str, request: Request, platform: PlatformDep,
                     _: Annotated[Principal, Allowed("cameras.frames")]) -> dict[str, Any]:
    service = vision_of(platform)
    service.cameras.get(camera_id)
    body = await request.body()
    if len(body) > MAX_IMAGE_BYTES:
        raise ValidationFailed("the image is too large", code="image_too_large", status=413)
    try:
        image = decode_image(body)
    except ValidationFailed:
        platform.metrics.rejected.labels("camera_frame", "image_corrupt").inc()
        raise
    return await service.submit_image(camera_id, image)


@router.put("/{camera_id}/signals/{signal}", summary="Set a traffic signal's state (for red-light detection)")
async def put_signal(camera_id: str, signal: str, body: SignalIn, platform: PlatformDep,
                     _: Annotated[Principal, Allowed("cameras.frames")]) -> dict[str, Any]:
    vision_of(platform).set_signal(camera_id, signal, body.state)
    return {"camera_id": camera_id, "signal": signal, "state": body.state}
