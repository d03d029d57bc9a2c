"""Tourist problem reports (issue 7): the tourist app's "report a problem" with category, text, an optional
photo (EXIF stripped except the location) and the browser's location. Each report gets a follow-up code and
becomes an alert in the IOC through the rule pack (``report.submitted`` -> ``citizen-report``).

``await start_reports(platform)`` builds and starts the ``ReportService``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from citydata.reports.service import CATEGORIES, ReportIn, ReportService

if TYPE_CHECKING:
    from citydata.app import Platform

__all__ = ["CATEGORIES", "ReportIn", "ReportService", "start_reports"]


async def start_reports(platform: Platform) -> ReportService:
    service = ReportService(settings=platform.settings, store=platform.store, bus=platform.bus,
                            clock=platform.clock, audit=platform.audit, metrics=platform.metrics,
                            pii_keys=platform.pii_keys, geography=platform.geography)
    service.start()
    platform.reports = service
    return service
