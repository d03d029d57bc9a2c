"""Tourist safety (the 191 "Sandbox" center): arrivals at the checkpoints, 30-minute location reports, the
province geofence, the silent-tracker timer and the PDPA privacy model. See docs/privacy.md.

``await start_tracking(platform)`` builds and starts the ``TrackingService`` from a started platform's parts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from citydata.tracking.privacy import DenyIncidentAccess, IdentityVault, IncidentAccess
from citydata.tracking.service import TrackingService

if TYPE_CHECKING:
    from citydata.app import Platform

__all__ = ["DenyIncidentAccess", "IdentityVault", "IncidentAccess", "TrackingService", "build_tracking",
           "start_tracking"]


def build_tracking(platform: Platform, incident_access: IncidentAccess | None = None) -> TrackingService:
    assert platform.geography is not None, "the reference city must be loaded first"
    return TrackingService(settings=platform.settings, store=platform.store, bus=platform.bus,
                           clock=platform.clock, geography=platform.geography, audit=platform.audit,
                           tokens=platform.tokens, pii_keys=platform.pii_keys, secret_key=platform.secret_key,
                           incident_access=incident_access)


async def start_tracking(platform: Platform, incident_access: IncidentAccess | None = None, *,
                         timers: bool = True, shared: bool = False) -> TrackingService:
    """Build, start and attach (``platform.tracking``) the tracking service (``shared``: on a node of a
    multi-node deployment, ``citydata.tracking.shared``; the partitions' work is ``citydata.tracking.partition``)."""
    service = build_tracking(platform, incident_access)
    await service.start(timers=timers, shared=shared)
    platform.tracking = service
    return service
