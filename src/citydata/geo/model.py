"""The ``Place`` record and the small metric helpers every geo module shares.

Geometries are shapely 2 objects in WGS84 lon/lat. Distances and buffers in metres use a local equirectangular
projection centred on the point of interest: at city scale (tens of kilometres) its error is far below the
precision of the shipped boundaries (~1 m rounding, coastlines generalised by hundreds of metres).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0  # metres per degree of latitude (of longitude at the equator)

POLYGONAL = frozenset({"Polygon", "MultiPolygon"})


@dataclass(frozen=True)
class Place:
    """One named place of a city: an administrative area, a checkpoint, a pier, a beach, a bus stop ...

    ``id`` is ``"<kind>:<code>"`` (``province:83``, ``checkpoint:HKT``). ``properties`` holds the source's
    other attributes; it takes part in ``==`` but not in ``hash``."""

    id: str
    kind: str
    code: str
    name_en: str
    name_th: str | None
    parent_id: str | None
    city: str
    geometry: BaseGeometry
    properties: dict[str, Any] = field(default_factory=dict, hash=False)
    source: str | None = None

    @property
    def is_area(self) -> bool:
        """True for polygonal places (administrative areas, zones), which can contain points."""
        return self.geometry.geom_type in POLYGONAL

    @property
    def lon(self) -> float:
        """Longitude of the point (or of the representative point of an area)."""
        return float(self._anchor().x)

    @property
    def lat(self) -> float:
        """Latitude of the point (or of the representative point of an area)."""
        return float(self._anchor().y)

    def _anchor(self) -> Any:
        geom = self.geometry
        return geom if geom.geom_type == "Point" else geom.representative_point()


def place_id(kind: str, code: str) -> str:
    return f"{kind}:{code}"


def geometry_to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """The GeoJSON geometry mapping (plain lists, ready for JSON columns and API bodies)."""
    value: dict[str, Any] = orjson.loads(shapely.to_geojson(geom))
    return value


def geometry_from_geojson(value: dict[str, Any]) -> BaseGeometry:
    """A shapely geometry from a GeoJSON geometry mapping."""
    return shapely.from_geojson(orjson.dumps(value).decode())


# -- metric approximations -----------------------------------------------------------------------------------
def metres_per_degree(lat: float) -> tuple[float, float]:
    """(metres per degree of longitude, metres per degree of latitude) at ``lat``."""
    return M_PER_DEG * math.cos(math.radians(lat)), M_PER_DEG


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two lon/lat points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def to_local(geom: BaseGeometry, lon0: float, lat0: float) -> BaseGeometry:
    """``geom`` in metres on a local equirectangular plane whose origin is (``lon0``, ``lat0``)."""
    kx, ky = metres_per_degree(lat0)

    def fwd(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        return (xy - (lon0, lat0)) * (kx, ky)

    return shapely.transform(geom, fwd)


def from_local(geom: BaseGeometry, lon0: float, lat0: float) -> BaseGeometry:
    """The inverse of :func:`to_local`."""
    kx, ky = metres_per_degree(lat0)

    def back(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        return xy / (kx, ky) + (lon0, lat0)

    return shapely.transform(geom, back)


def degrees_for_metres(metres: float, lat: float) -> tuple[float, float]:
    """(degrees of longitude, degrees of latitude) spanning ``metres`` at ``lat``."""
    kx, ky = metres_per_degree(lat)
    return metres / max(kx, 1e-9), metres / ky


def distance_m(geom: BaseGeometry, lon: float, lat: float) -> float:
    """Metres from (``lon``, ``lat``) to the nearest part of ``geom`` (0 inside a polygon)."""
    local = to_local(geom, lon, lat)
    return float(shapely.distance(local, shapely.Point(0.0, 0.0)))


def buffer_m(geom: BaseGeometry, metres: float, *, quad_segs: int = 8) -> BaseGeometry:
    """``geom`` grown (or shrunk, for negative ``metres``) by ``metres``, computed in a local metric plane."""
    centre = geom.centroid if not geom.is_empty else shapely.Point(0.0, 0.0)
    lon0, lat0 = float(centre.x), float(centre.y)
    grown = to_local(geom, lon0, lat0).buffer(metres, quad_segs=quad_segs)
    return from_local(grown, lon0, lat0)
