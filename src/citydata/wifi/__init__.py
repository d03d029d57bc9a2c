"""WiFi-hotspot footfall: the hotspot registry, session events over HTTP and syslog (parser plugins), MACs
pseudonymised at the edge with a daily-rotated key, and footfall rollups per hotspot, zone, sub-district and
city, per hour and per day. See docs/wifi.md.

``await start_wifi(platform)`` builds and starts the ``WifiService`` from a started platform's parts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from citydata.wifi.service import IngestResult, WifiService

if TYPE_CHECKING:
    from citydata.app import Platform

__all__ = ["IngestResult", "WifiService", "build_wifi", "start_wifi"]


def build_wifi(platform: Platform) -> WifiService:
    assert platform.geography is not None, "the reference city must be loaded first"
    return WifiService(settings=platform.settings, store=platform.store, clock=platform.clock,
                       metrics=platform.metrics, geography=platform.geography, dead_letters=platform.dead_letters,
                       secret_key=platform.secret_key)


async def start_wifi(platform: Platform, *, timers: bool = True) -> WifiService:
    """Build, start and attach (``platform.wifi``) the WiFi service."""
    service = build_wifi(platform)
    await service.start(timers=timers)
    platform.wifi = service
    return service
