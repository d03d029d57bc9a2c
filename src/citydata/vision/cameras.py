"""The camera registry: where each camera is and looks, its stream, its analytics and its privacy masks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, select, update

from citydata.clock import Clock
from citydata.errors import Conflict, NotFound
from citydata.store import Store
from citydata.vision.frames import check_masks
from citydata.vision.schema import vision_cameras
from citydata.vision.traffic import check_lines

Analytic = Literal["faces", "plates", "traffic"]


class CameraIn(BaseModel):
    id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$",
                    description="Stable camera id, e.g. cam:patong-beach-01.")
    name: str = Field(min_length=1, max_length=200)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    heading_deg: float | None = Field(None, ge=0, lt=360, description="View direction, degrees from north.")
    zone_id: str | None = Field(None, max_length=80, description="The zone (e.g. subdistrict:830202) it watches.")
    stream_url: str | None = Field(None, max_length=2000,
                                   description="rtsp://, http(s):// (MJPEG/HLS) or a video file to loop; "
                                               "null when frames are pushed to the API.")
    analytics: list[Analytic] = Field(default_factory=lambda: list[Analytic](["faces", "plates"]))
    masks: list[list[list[float]]] = Field(default_factory=list,
                                           description="Privacy polygons in pixels, blacked out before analysis.")
    lines: list[dict[str, Any]] = Field(default_factory=list, description="Stop lines and direction zones.")
    enabled: bool = True

    @field_validator("masks")
    @classmethod
    def _masks(cls, v: list[list[list[float]]]) -> list[list[list[float]]]:
        return [[[float(x), float(y)] for x, y in poly] for poly in check_masks(v)]

    @field_validator("lines")
    @classmethod
    def _lines(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return check_lines(v)


def redact_url(url: str | None) -> str | None:
    """The stream URL with its password replaced by ``***`` (the registry keeps the real one)."""
    if not url or "://" not in url or "@" not in url.split("://", 1)[1].split("/", 1)[0]:
        return url
    scheme, rest = url.split("://", 1)
    userinfo, _, host = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def _out(row: Any) -> dict[str, Any]:
    d = dict(row)
    d["stream_url"] = redact_url(d.get("stream_url"))
    for k in ("status_since", "created_at", "updated_at"):
        if isinstance(d.get(k), datetime):
            d[k] = d[k].isoformat()
    return d


class CameraRegistry:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self.cameras: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        self.cameras = {r["id"]: dict(r) for r in await self.store.fetch_all(select(vision_cameras))}

    def get(self, camera_id: str) -> dict[str, Any]:
        cam = self.cameras.get(camera_id)
        if cam is None:
            raise NotFound(f"no camera {camera_id!r}", code="camera_not_found")
        return cam

    def list(self) -> list[dict[str, Any]]:
        return [_out(c) for c in sorted(self.cameras.values(), key=lambda c: str(c["id"]))]

    def public(self, camera_id: str) -> dict[str, Any]:
        return _out(self.get(camera_id))

    async def put(self, body: CameraIn, *, create_only: bool = False) -> tuple[dict[str, Any], bool]:
        """Create or replace; returns (camera, created)."""
        now = self.clock.now()
        old = self.cameras.get(body.id)
        if old is not None and create_only:
            raise Conflict(f"camera {body.id!r} exists", code="camera_exists")
        row = body.model_dump()
        row.update(updated_at=now, created_at=old["created_at"] if old else now,
                   status=old["status"] if old else "unknown", status_since=old["status_since"] if old else None)
        if old is None:
            await self.store.insert_rows(vision_cameras, [row])
        else:
            await self.store.execute(update(vision_cameras).where(vision_cameras.c.id == body.id).values(**row))
        self.cameras[body.id] = row
        return _out(row), old is None

    async def delete(self, camera_id: str) -> None:
        self.get(camera_id)
        await self.store.execute(delete(vision_cameras).where(vision_cameras.c.id == camera_id))
        del self.cameras[camera_id]

    async def set_status(self, camera_id: str, status: str) -> bool:
        """Record online/offline; returns True when it changed."""
        cam = self.cameras.get(camera_id)
        if cam is None or cam["status"] == status:
            return False
        now = self.clock.now()
        cam["status"], cam["status_since"] = status, now
        await self.store.execute(update(vision_cameras).where(vision_cameras.c.id == camera_id).values(
            status=status, status_since=now))
        return True
