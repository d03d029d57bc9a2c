"""H3 helpers (h3 4.x): cells for points and areas, and counting points per cell for maps and open data.

Argument order follows h3: latitude first. Cells are h3 string indexes (``"8965..."``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import h3
from shapely.geometry.base import BaseGeometry

from citydata.errors import ValidationFailed
from citydata.geo.model import geometry_to_geojson

#: a street-block scale cell (~0.1 km²) for footfall and heat maps; res 7 (~5 km²) for district-level views
DEFAULT_RES = 9


def _check_res(res: int) -> None:
    if not 0 <= res <= 15:
        raise ValidationFailed(f"H3 resolution must be 0 to 15, not {res}", code="h3_resolution", field="res")


def h3_cell(lat: float, lon: float, res: int = DEFAULT_RES) -> str:
    """The H3 cell containing (``lat``, ``lon``) at resolution ``res``."""
    _check_res(res)
    try:
        return str(h3.latlng_to_cell(lat, lon, res))
    except (h3.H3BaseException, ValueError, TypeError) as err:
        raise ValidationFailed(f"not a valid latitude/longitude: {lat}, {lon}", code="h3_latlng") from err


def cell_center(cell: str) -> tuple[float, float]:
    """(lat, lon) of the cell's centre."""
    lat, lon = h3.cell_to_latlng(cell)
    return float(lat), float(lon)


def cell_polygon(cell: str) -> dict[str, Any]:
    """The cell as a GeoJSON Polygon geometry (lon/lat, closed ring)."""
    ring = [[float(lon), float(lat)] for lat, lon in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def cells_in(geometry: BaseGeometry, res: int = DEFAULT_RES) -> set[str]:
    """Cells whose centre lies inside a (Multi)Polygon, e.g. a district or a zone."""
    _check_res(res)
    shape = h3.geo_to_h3shape(geometry_to_geojson(geometry))
    return {str(c) for c in h3.h3shape_to_cells(shape, res)}


def count_by_cell(points: Iterable[tuple[float, float]], res: int = DEFAULT_RES) -> dict[str, int]:
    """How many (lat, lon) points fall in each cell."""
    _check_res(res)
    counts: Counter[str] = Counter()
    for lat, lon in points:
        counts[h3_cell(lat, lon, res)] += 1
    return dict(counts)


def rollup(counts: Mapping[str, int], res: int) -> dict[str, int]:
    """Counts re-aggregated to the coarser resolution ``res`` (each cell's parent)."""
    _check_res(res)
    out: Counter[str] = Counter()
    for cell, n in counts.items():
        if h3.get_resolution(cell) < res:
            raise ValidationFailed(f"cell {cell} is coarser than resolution {res}", code="h3_resolution")
        out[str(h3.cell_to_parent(cell, res))] += n
    return dict(out)


def suppress_small(counts: Mapping[str, int], k: int) -> dict[str, int]:
    """Only the cells counting at least ``k`` (the open-data rule: cells under k are not published)."""
    return {cell: n for cell, n in counts.items() if n >= k}


def counts_to_geojson(counts: Mapping[str, int]) -> dict[str, Any]:
    """A FeatureCollection of cell polygons with ``cell`` and ``count`` properties, ordered by cell."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": cell_polygon(cell), "properties": {"cell": cell, "count": n}}
        for cell, n in sorted(counts.items())]}
