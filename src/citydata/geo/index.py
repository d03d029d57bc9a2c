"""The in-memory geography index: "which province is this point in", "what contains this point", buffers.

Built once from the places (``Geography.from_places`` or ``await Geography.from_store(store)``) and then read
only, so it is safe to share between tasks and threads. Each kind of place gets its own shapely 2 ``STRtree``
over prepared geometries; point-in-polygon for many points at once goes through ``STRtree.query`` on a points
array (one C call).

Where polygons overlap (the shipped provinces share edges, with slivers of a few square metres), the place
with the smallest code wins, the same way in the scalar and the vectorised lookups.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry.base import BaseGeometry

from citydata.errors import NotFound, ValidationFailed
from citydata.geo.model import Place, buffer_m, degrees_for_metres, distance_m, place_id

if TYPE_CHECKING:
    from citydata.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _KindIndex:
    """The places of one kind, sorted by code, with their geometries and an STRtree over them."""

    places: list[Place]
    geoms: NDArray[Any]
    tree: shapely.STRtree

    @classmethod
    def build(cls, places: list[Place]) -> _KindIndex:
        ordered = sorted(places, key=lambda p: (_code_key(p.code), p.id))
        geoms = np.array([p.geometry for p in ordered], dtype=object)
        shapely.prepare(geoms)
        return cls(ordered, geoms, shapely.STRtree(geoms))

    def first_containing(self, lon: float, lat: float) -> int | None:
        candidates = self.tree.query(shapely.Point(lon, lat))
        for i in sorted(int(c) for c in candidates):
            if shapely.intersects_xy(self.geoms[i], lon, lat):
                return i
        return None

    def nearest(self, lon: float, lat: float, max_m: float) -> tuple[int, float] | None:
        dx, dy = degrees_for_metres(max_m, lat)
        xmin, ymin, xmax, ymax = lon - dx, lat - dy, lon + dx, lat + dy
        best: tuple[int, float] | None = None
        for i in sorted(int(c) for c in self.tree.query(shapely.box(xmin, ymin, xmax, ymax))):
            geom = self.geoms[i]
            if geom.geom_type not in ("Point", "MultiPoint"):
                # only the part within max_m matters; clipping keeps the metric transform small
                geom = shapely.clip_by_rect(geom, xmin, ymin, xmax, ymax)
                if geom.is_empty:
                    continue
            d = distance_m(geom, lon, lat)
            if d <= max_m and (best is None or d < best[1]):
                best = (i, d)
        return best


def _code_key(code: str) -> tuple[int, int | str]:
    return (0, int(code)) if code.isdigit() else (1, code)


class Geography:
    """Read-only spatial index over a city's places."""

    def __init__(self, places: Sequence[Place]) -> None:
        self._by_id: dict[str, Place] = {}
        for place in places:
            if place.id in self._by_id:
                raise ValidationFailed(f"duplicate place id {place.id}", code="duplicate_place")
            self._by_id[place.id] = place
        groups: dict[str, list[Place]] = {}
        for place in places:
            groups.setdefault(place.kind, []).append(place)
        self._kinds = {kind: _KindIndex.build(group) for kind, group in groups.items()}
        self._empty = _KindIndex.build([])
        areas = [p for p in places if p.is_area]
        # smallest area first, so containing() lists sub-district, district, province in that order
        areas.sort(key=lambda p: (float(p.geometry.area), p.id))
        self._areas = _KindIndex(areas, np.array([p.geometry for p in areas], dtype=object),
                                 shapely.STRtree([p.geometry for p in areas]))
        self._buffers: dict[tuple[str, float], BaseGeometry] = {}

    # -- construction ----------------------------------------------------------------------------------------
    @classmethod
    def from_places(cls, places: Sequence[Place]) -> Geography:
        return cls(places)

    @classmethod
    async def from_store(cls, store: Store, *, city: str | None = None) -> Geography:
        """The index over every place in the store (or one city's)."""
        from citydata.geo.loader import read_places

        return cls(await read_places(store, city=city))

    # -- lookups ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Place]:
        return iter(self._by_id.values())

    def __contains__(self, item: object) -> bool:
        return item in self._by_id

    def get(self, id: str) -> Place | None:
        """The place with this id (``province:83``, ``checkpoint:HKT``), or None."""
        return self._by_id.get(id)

    def require(self, id: str) -> Place:
        """The place with this id; ``NotFound`` when there is none."""
        place = self._by_id.get(id)
        if place is None:
            raise NotFound(f"no place {id}", code="place_not_found")
        return place

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def by_kind(self, kind: str) -> list[Place]:
        """Every place of ``kind``, sorted by code (numerically where codes are numbers)."""
        return list(self._kinds.get(kind, self._empty).places)

    def checkpoint(self, code: str) -> Place | None:
        """The immigration checkpoint with this code (``HKT``, ``THA_CHATCHAI``, ``RASSADA`` ...)."""
        return self._by_id.get(place_id("checkpoint", code))

    def province(self, code: str) -> Place | None:
        """The province with this 2-digit DOPA code (Phuket is ``83``)."""
        return self._by_id.get(place_id("province", code))

    # -- point in polygon ------------------------------------------------------------------------------------
    def province_at(self, lon: float, lat: float) -> Place | None:
        """The province whose polygon contains (or touches) the point, or None (at sea, abroad)."""
        index = self._kinds.get("province", self._empty)
        hit = index.first_containing(lon, lat)
        return None if hit is None else index.places[hit]

    def provinces_at(self, lons: ArrayLike, lats: ArrayLike) -> list[str | None]:
        """Vectorised ``province_at``: the province id (``province:83``) for each point, or None."""
        x = np.asarray(lons, dtype=float).ravel()
        y = np.asarray(lats, dtype=float).ravel()
        if x.shape != y.shape:
            raise ValidationFailed(f"lons and lats differ in length ({x.size} and {y.size})")
        index = self._kinds.get("province", self._empty)
        if x.size == 0:
            return []
        points = shapely.points(x, y)
        pairs = index.tree.query(points, predicate="intersects")
        chosen = np.full(x.size, -1, dtype=np.int64)
        if pairs.shape[1]:
            inputs, hits = pairs[0], pairs[1]
            order = np.lexsort((hits, inputs))  # by point, then by province (lowest code first)
            inputs, hits = inputs[order], hits[order]
            first = np.unique(inputs, return_index=True)[1]
            chosen[inputs[first]] = hits[first]
        ids = [p.id for p in index.places]
        return [ids[i] if i >= 0 else None for i in chosen.tolist()]

    def containing(self, lon: float, lat: float, kind: str | None = None) -> list[Place]:
        """Every area (polygonal place) containing the point, smallest first; only of ``kind`` when given."""
        index = self._areas if kind is None else self._kinds.get(kind, self._empty)
        hits = index.tree.query(shapely.Point(lon, lat))
        found = [index.places[int(i)] for i in hits
                 if index.places[int(i)].is_area and shapely.intersects_xy(index.geoms[int(i)], lon, lat)]
        found.sort(key=lambda p: (float(p.geometry.area), p.id))
        return found

    # -- tolerance -------------------------------------------------------------------------------------------
    def nearest_province(self, lon: float, lat: float, max_m: float) -> tuple[Place, float] | None:
        """The province containing the point (distance 0), else the nearest one within ``max_m`` metres of it
        (for points just offshore of the generalised coastline: piers, bridges), else None."""
        return self.nearest(lon, lat, max_m, kind="province")

    def nearest(self, lon: float, lat: float, max_m: float, *, kind: str) -> tuple[Place, float] | None:
        """The place of ``kind`` nearest to the point within ``max_m`` metres, with its distance in metres."""
        index = self._kinds.get(kind, self._empty)
        inside = index.first_containing(lon, lat)
        if inside is not None:
            return index.places[inside], 0.0
        if max_m <= 0:
            return None
        best = index.nearest(lon, lat, max_m)
        return None if best is None else (index.places[best[0]], best[1])

    def buffered(self, place_id: str, metres: float) -> BaseGeometry:
        """The place's geometry grown by ``metres`` (negative shrinks), computed in a local metric plane
        centred on the place, so a 1 km tolerance is 1 km east-west as well as north-south.
        Cached and prepared."""
        key = (place_id, float(metres))
        cached = self._buffers.get(key)
        if cached is not None:
            return cached
        geom = buffer_m(self.require(place_id).geometry, metres)
        shapely.prepare(geom)
        self._buffers[key] = geom
        return geom

    def within_buffer(self, place_id: str, metres: float, lon: float, lat: float) -> bool:
        """True when the point lies inside the place grown by ``metres``."""
        return bool(shapely.intersects_xy(self.buffered(place_id, metres), lon, lat))
