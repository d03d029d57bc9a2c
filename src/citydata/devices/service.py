"""Device registry service: register, list, heartbeat, silence. HTTP, MQTT and the CLI call these."""

from __future__ import annotations

import builtins
import logging
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.bus import Bus
from citydata.clock import Clock
from citydata.devices.kinds import DEVICE_KINDS
from citydata.errors import NotFound
from citydata.events import make_event
from citydata.store import Store
from citydata.store.schema import devices

log = logging.getLogger(__name__)


class DeviceIn(BaseModel):
    """A device as an integrator registers it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
                    description="Stable device id, chosen by the owner (e.g. 'rain-ptg-01').")
    kind: str = Field(description="One of the device kinds (rain_gauge, water_level, dissolved_oxygen, ...).")
    name: str = Field(min_length=1, max_length=200)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    agency: str | None = Field(None, max_length=80, description="Owner agency.")
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in DEVICE_KINDS:
            raise ValueError(f"unknown device kind; one of {', '.join(sorted(DEVICE_KINDS))}")
        return value


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    t: AwareDatetime | None = Field(None, description="Time of the heartbeat (default: arrival time).")
    battery: float | None = Field(None, ge=0, le=100, description="Battery in percent.")
    rssi: float | None = Field(None, ge=-200, le=0, description="Signal strength in dBm.")
    status: str = Field("ok", max_length=40)


class DeviceService:
    def __init__(self, store: Store, bus: Bus, clock: Clock, *, silence_s: int = 900) -> None:
        self.store, self.bus, self.clock, self.silence_s = store, bus, clock, silence_s

    async def register(self, device: DeviceIn) -> dict[str, Any]:
        """Create or update a device (idempotent on its id)."""
        now = self.clock.now()
        values = device.model_dump()

        async def op(conn: AsyncConnection) -> bool:
            exists = (await conn.execute(select(devices.c.id).where(devices.c.id == device.id))).first()
            if exists:
                await conn.execute(devices.update().where(devices.c.id == device.id)
                                   .values(**{k: v for k, v in values.items() if k != "id"}, updated_at=now))
                return False
            await conn.execute(devices.insert().values(**values, status="unknown", created_at=now,
                                                       updated_at=now))
            return True

        created = await self.store.write(op)
        await self.bus.publish(make_event("device.registered", device.id, now, {
            "device_id": device.id, "kind": device.kind, "name": device.name, "lat": device.lat,
            "lon": device.lon, "agency": device.agency}))
        log.info("device %s %s", device.id, "registered" if created else "updated")
        return {**(await self.get(device.id)), "created": created}

    async def get(self, device_id: str) -> dict[str, Any]:
        row = await self.store.fetch_one(select(devices).where(devices.c.id == device_id))
        if row is None:
            raise NotFound(f"device {device_id!r} does not exist", code="device_not_found")
        return self._public(dict(row))

    async def list(self, *, kind: str | None = None, limit: int = 1000,
                   offset: int = 0) -> builtins.list[dict[str, Any]]:
        stmt = select(devices).order_by(devices.c.id).limit(limit).offset(offset)
        if kind:
            stmt = stmt.where(devices.c.kind == kind)
        return [self._public(dict(r)) for r in await self.store.fetch_all(stmt)]

    async def heartbeat(self, device_id: str, beat: HeartbeatIn) -> datetime:
        """Record a heartbeat; returns the time recorded. Unknown devices get NotFound."""
        at = beat.t or self.clock.now()
        data = beat.model_dump(mode="json", exclude={"t"})

        async def op(conn: AsyncConnection) -> int:
            result = await conn.execute(
                devices.update().where(devices.c.id == device_id)
                .where((devices.c.last_seen_at.is_(None)) | (devices.c.last_seen_at <= at))
                .values(last_seen_at=at, last_heartbeat=data, status=beat.status))
            if result.rowcount:
                return 1
            exists = (await conn.execute(select(devices.c.id).where(devices.c.id == device_id))).first()
            return 0 if exists else -1   # 0: an older heartbeat arriving late, kept out of last_seen

        outcome = await self.store.write(op)
        if outcome < 0:
            raise NotFound(f"device {device_id!r} is not registered", code="device_not_found")
        await self.bus.publish(make_event("device.heartbeat", device_id, at, {"device_id": device_id, **data}))
        return at

    async def silent(self, now: datetime | None = None) -> builtins.list[dict[str, Any]]:
        """Devices whose last heartbeat is older than the silence threshold (or that never reported)."""
        cutoff = (now or self.clock.now()) - timedelta(seconds=self.silence_s)
        stmt = select(devices).where((devices.c.last_seen_at.is_(None)) | (devices.c.last_seen_at < cutoff)) \
            .order_by(devices.c.id)
        return [self._public(dict(r)) for r in await self.store.fetch_all(stmt)]

    def _public(self, row: dict[str, Any]) -> dict[str, Any]:
        last = row.get("last_seen_at")
        silent = last is None or (self.clock.now() - last).total_seconds() > self.silence_s
        row["online"] = not silent
        return row
