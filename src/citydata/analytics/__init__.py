"""Planning analytics: tourism density, flood risk, safety hotspots and real estate against footfall, as
documented queries over the store (``citydata.analytics.queries``), with plots for the CLI and JSON for the
dashboard. See docs/analytics.md."""

from citydata.analytics.model import QUERIES, Query, Result, get_query
from citydata.analytics.service import AnalyticsService

__all__ = ["QUERIES", "AnalyticsService", "Query", "Result", "get_query"]
