"""Smart Safety CCTV analytics: cameras, frame sources, the face watchlist, the plate hotlist and traffic
discipline. See docs/vision.md (privacy rules, connecting cameras and vendor analytics, measured accuracy).

``await start_vision(platform)`` builds and starts the ``VisionService`` from a started platform's parts. The
plate reading models live in ``citydata.vision.plates``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from citydata.app import Platform
    from citydata.vision.service import VisionService

__all__ = ["build_vision", "start_vision"]


def build_vision(platform: Platform, *, workers: int | None = None) -> VisionService:
    from citydata.vision.service import VisionService

    return VisionService(settings=platform.settings, store=platform.store, bus=platform.bus, clock=platform.clock,
                         audit=platform.audit, pii_keys=platform.pii_keys, secret_key=platform.secret_key,
                         metrics=platform.metrics, workers=workers)


async def start_vision(platform: Platform, *, streams: bool = True) -> VisionService:
    """Build, start and attach (``platform.vision``) the vision service."""
    service = build_vision(platform)
    await service.start(streams=streams)
    platform.vision = service
    return service
