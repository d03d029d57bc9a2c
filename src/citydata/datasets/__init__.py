"""Government dataset imports: CSV, GeoJSON and Excel files as typed, versioned tables joined to the reference
geography (``citydata import dataset FILE --as NAME``). See docs/analytics.md."""

from citydata.datasets.geojoin import GeoJoin
from citydata.datasets.service import DatasetService, ImportOptions, ImportReport, Rejection

__all__ = ["DatasetService", "GeoJoin", "ImportOptions", "ImportReport", "Rejection"]
