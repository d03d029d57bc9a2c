"""Open data: the catalogue as data, the CKAN-compatible action API, DCAT export, downloads (CSV, GeoJSON,
Parquet), anonymisation (aggregates only, small cells suppressed) and API keys with rate limits.
See docs/opendata.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from citydata.app import Platform
    from citydata.opendata.service import OpenDataService

__all__ = ["start_opendata"]


async def start_opendata(platform: Platform) -> OpenDataService:
    """Build the planning analytics (``platform.analytics``) and the open-data service (``platform.opendata``:
    catalogue, keys, rate limits) over a started platform's store and geography. Both compute on request
    (with short caches); the only background task writes the keys' usage counts."""
    from citydata.analytics import AnalyticsService
    from citydata.opendata.keys import KeyService
    from citydata.opendata.service import OpenDataService

    assert platform.geography is not None, "the reference city must be loaded first"
    s = platform.settings
    analytics = AnalyticsService(platform.store, platform.geography, s, platform.clock)
    keys = KeyService(platform.store, platform.clock, platform.secret_key, default_rate=s.opendata_key_rate_per_min,
                      anonymous_rate=s.opendata_anonymous_rate_per_min)
    service = OpenDataService(analytics, platform.geography, s, platform.clock, keys)
    keys.start()                  # writes the usage counts every few seconds; stop() flushes the rest
    platform.analytics, platform.opendata = analytics, service
    return service
