"""Values as SensorThings writes and reads them: ISO 8601 instants and intervals, GeoJSON, encoding types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import shapely
from shapely.geometry import shape

from citydata.errors import ValidationFailed

GEOJSON_TYPES = {"application/geo+json", "application/vnd.geo+json", "application/json"}
GEOJSON = "application/geo+json"   # what we emit (1.1); the 1.0 vnd. type is accepted on input


def bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", code="invalid_entity", field=field)


def parse_instant(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise bad(field, "must be an ISO 8601 date-time string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as err:
        raise bad(field, f"{value!r} is not an ISO 8601 date-time") from err
    if parsed.tzinfo is None:
        raise bad(field, "must carry a time zone (e.g. Z or +07:00)")
    return parsed.astimezone(UTC)


def parse_time_or_interval(value: Any, field: str) -> tuple[datetime, datetime | None]:
    """An instant, or an interval ``start/end`` (end strictly after start)."""
    if isinstance(value, str) and "/" in value:
        start_text, _, end_text = value.partition("/")
        start, end = parse_instant(start_text, field), parse_instant(end_text, field)
        if end < start:
            raise bad(field, "the interval ends before it starts")
        return start, end
    return parse_instant(value, field), None


def parse_interval(value: Any, field: str) -> tuple[datetime, datetime]:
    if not isinstance(value, str) or "/" not in value:
        raise bad(field, "must be an ISO 8601 interval 'start/end'")
    start, end = parse_time_or_interval(value, field)
    assert end is not None
    return start, end


def fmt_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(UTC)
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def fmt_interval(start: datetime | None, end: datetime | None) -> str | None:
    if start is None:
        return None
    if end is None or end == start:
        return fmt_time(start)
    return f"{fmt_time(start)}/{fmt_time(end)}"


def parse_encoding(value: Any, field: str = "encodingType") -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad(field, "must be a non-empty string")
    value = value.strip()
    return GEOJSON if value.lower() in GEOJSON_TYPES else value


def parse_geojson(value: Any, field: str) -> tuple[dict[str, Any], tuple[float, float, float, float]]:
    """A GeoJSON geometry or Feature; returns it with its bounding box (min_lon, min_lat, max_lon, max_lat)."""
    if not isinstance(value, dict) or "type" not in value:
        raise bad(field, "must be a GeoJSON object")
    geometry = value.get("geometry") if value.get("type") == "Feature" else value
    if not isinstance(geometry, dict):
        raise bad(field, "the Feature has no geometry")
    try:
        geom = shape(geometry)
    except (ValueError, TypeError, AttributeError, KeyError, shapely.errors.GEOSException) as err:
        raise bad(field, f"invalid GeoJSON geometry ({err})") from err
    if geom.is_empty:
        raise bad(field, "the geometry is empty")
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise bad(field, "coordinates must be longitude, latitude in WGS84")
    return value, (min_lon, min_lat, max_lon, max_lat)


def bbox_columns(box: tuple[float, float, float, float]) -> dict[str, float]:
    return dict(zip(("min_lon", "min_lat", "max_lon", "max_lat"), box, strict=True))


def split_result(value: Any) -> tuple[float | None, Any]:
    """(result_number, result_json): numbers go to the numeric column (filters and aggregates), the rest to
    JSON. Booleans are JSON, not numbers."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    return None, value


def join_result(number: float | None, other: Any) -> Any:
    if number is not None:
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return other
