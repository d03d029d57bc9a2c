"""``geofence``: where the newest position of the instance is, against a place or a polygon.

    geofence: {place: subdistrict:830202, when: outside, buffer_m: 200}     # left Patong (200 m tolerance)
    geofence: {polygon: {type: Polygon, coordinates: [...]}, when: inside}
    geofence: {place: beach:PATONG, when: inside, lon_field: position.lon, lat_field: position.lat}

For position events (the tracking issue's ``tracking.position``/``tracking.ping`` kinds, or any event whose
payload has a longitude and a latitude): ``lon_field``/``lat_field`` default to ``lon``/``lat``. Places are
the reference city's ids (``subdistrict:830202``, ``checkpoint:HKT`` ...), looked up in the Geography; an
unknown place is refused. The newest position by event time wins (a late one is counted and ignored).
"""

from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from citydata.rules.conditions.base import BindContext, Condition, Fact
from citydata.rules.spec import Reader, RuleInvalid


class Geofence(Condition):
    kind = "geofence"

    def configure(self, spec: Reader) -> None:
        self.place = spec.text("place", max_len=80)
        polygon = spec.raw("polygon")
        if (self.place is None) == (polygon is None):
            raise RuleInvalid(spec.path, "needs exactly one of place or polygon")
        self.geometry: BaseGeometry | None = None
        if polygon is not None:
            try:
                geom = shape(polygon)
            except Exception as err:
                raise RuleInvalid(spec.at("polygon"), "must be a GeoJSON Polygon or MultiPolygon") from err
            if geom.geom_type not in ("Polygon", "MultiPolygon") or not geom.is_valid:
                raise RuleInvalid(spec.at("polygon"), "must be a valid GeoJSON Polygon or MultiPolygon")
            self.geometry = geom
        self.buffer_m = spec.number("buffer_m", 0.0) or 0.0
        self.inside = spec.choice("when", ("inside", "outside"), "outside") == "inside"
        self.lon_field = spec.text("lon_field", "lon") or "lon"
        self.lat_field = spec.text("lat_field", "lat") or "lat"
        self._place_path = spec.at("place")

    def bind(self, ctx: BindContext) -> None:
        super().bind(ctx)
        if self.place is not None:
            if ctx.geography is None:
                raise RuleInvalid(self._place_path, "places need the reference geography (none loaded)")
            if self.place not in ctx.geography:
                raise RuleInvalid(self._place_path, f"unknown place {self.place!r}")
            self.geometry = ctx.geography.buffered(self.place, self.buffer_m) if self.buffer_m else \
                ctx.geography.require(self.place).geometry
        elif self.buffer_m and self.geometry is not None:
            from citydata.geo import buffer_m

            self.geometry = buffer_m(self.geometry, self.buffer_m)
        if self.geometry is not None:
            shapely.prepare(self.geometry)

    def accepts(self, fact: Fact) -> bool:
        return super().accepts(fact) and fact.number(self.lon_field) is not None \
            and fact.number(self.lat_field) is not None

    def update(self, st: dict[str, Any], fact: Fact) -> None:
        lon, lat = fact.number(self.lon_field), fact.number(self.lat_field)
        if lon is None or lat is None or self.geometry is None:
            return
        if fact.t < st.get("t", float("-inf")):
            self.limits.late_points += 1
            return
        st["t"], st["lon"], st["lat"] = fact.t, lon, lat
        st["in"] = bool(shapely.intersects_xy(self.geometry, lon, lat))

    def evaluate(self, states: dict[str, dict[str, Any]], now: float) -> bool:
        st = states.setdefault(self.path, {})
        if "in" not in st:
            return False
        on = bool(st["in"]) == self.inside
        st["on"] = on
        return on
