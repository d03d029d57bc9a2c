"""Joining dataset rows to the reference geography: by code, by name (Thai or English) or by point.

    by code:  830202, 8302, 83 (DOPA codes) or a place id (subdistrict:830202)
    by name:  "Patong", "Pa Tong", "ป่าตอง", "ต.ป่าตอง", "Tambon Pa Tong" (prefixes and spaces ignored)
    by point: lat/lon columns, or the GeoJSON feature geometry (its representative point for areas)

The level (``subdistrict``, ``district``, ``province``) says which kind of area a name or point means; a code
says it by itself. A value that matches nothing is a rejected row with the reason."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import shapely

from citydata.errors import ValidationFailed
from citydata.geo import Geography, Place
from citydata.geo.model import geometry_from_geojson

LEVELS = ("subdistrict", "district", "province")
_PREFIXES = ("tambon", "amphoe", "changwat", "khwaeng", "khet", "ตำบล", "อำเภอ", "จังหวัด", "แขวง", "เขต",
             "ต.", "อ.", "จ.")
# spellings seen in Thai government files that the reference names spell differently (normalised form)
ALIASES = {"kohkaew": "kokaeo", "kohkaeo": "kokaeo", "kokaew": "kokaeo", "cherngtalay": "choengthale",
           "choengtalay": "choengthale", "thepkasattri": "thepkrasattri", "sisoonthorn": "sisunthon",
           "srisoonthorn": "sisunthon", "srisunthon": "sisunthon", "ratsada": "ratsada", "rassada": "ratsada",
           "talatyai": "talatyai", "taladyai": "talatyai", "taladnuea": "talatnuea", "talatnua": "talatnuea",
           "muangphuket": "mueangphuket", "mueang": "mueangphuket", "maikhao": "maikhao"}


@functools.lru_cache(maxsize=65536)
def norm(name: str) -> str:
    """Case, spaces, dashes, dots and administrative prefixes removed."""
    value = name.strip().lower()
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if value.startswith(prefix):
                value = value[len(prefix):].lstrip()
                changed = True
    value = re.sub(r"[\s\-_.'’]", "", value)
    return ALIASES.get(value, value)


@dataclass(frozen=True)
class GeoJoin:
    """How to join: ``by`` is code, name, point or geometry; ``columns`` the source column(s)."""

    by: str
    columns: tuple[str, ...] = ()
    level: str = "subdistrict"

    def describe(self) -> dict[str, Any]:
        return {"by": self.by, "columns": list(self.columns), "level": self.level}


class Joiner:
    def __init__(self, geography: Geography, join: GeoJoin) -> None:
        if join.level not in LEVELS:
            raise ValidationFailed(f"unknown level {join.level!r} ({', '.join(LEVELS)})", code="bad_level")
        self.geo, self.join = geography, join
        self._names: dict[str, list[Place]] = {}
        for place in (p for kind in LEVELS for p in geography.by_kind(kind)):
            for label in (place.name_en, place.name_th):
                if label:
                    self._names.setdefault(norm(label), []).append(place)

    def place_for(self, values: dict[str, Any], geometry: dict[str, Any] | None) -> Place:
        """The place the row refers to; raises ``ValueError`` with the rejection reason."""
        by, cols = self.join.by, self.join.columns
        if by == "code":
            return self._by_code(values.get(cols[0]))
        if by == "name":
            return self._by_name(values.get(cols[0]))
        if by == "point":
            lat, lon = values.get(cols[0]), values.get(cols[1])
            if lat is None or lon is None or lat == "" or lon == "":
                raise ValueError(f"no point ({cols[0]}, {cols[1]} empty)")
            try:
                return self._at(float(lon), float(lat))
            except (TypeError, ValueError) as err:
                if "outside" in str(err):
                    raise
                raise ValueError(f"bad coordinates {lat!r}, {lon!r}") from err
        if by == "geometry":
            if geometry is None:
                raise ValueError("the feature has no geometry")
            try:
                geom = geometry_from_geojson(geometry)
            except Exception as err:   # shapely raises GEOSException / ValueError for broken geometries
                raise ValueError(f"invalid geometry ({type(err).__name__})") from err
            if geom.is_empty:
                raise ValueError("the feature has an empty geometry")
            point = geom if geom.geom_type == "Point" else shapely.Point(geom.representative_point())
            return self._at(float(point.x), float(point.y))
        raise ValueError(f"unknown join {by!r}")

    def _by_code(self, value: Any) -> Place:
        if value is None or str(value).strip() == "":
            raise ValueError(f"no {self.join.columns[0]}")
        text = str(value).strip()
        if isinstance(value, float) and value.is_integer():
            text = str(int(value))
        if ":" in text:
            place = self.geo.get(text)
        else:
            kind = {6: "subdistrict", 4: "district", 2: "province"}.get(len(text))
            place = self.geo.get(f"{kind}:{text}") if kind else None
        if place is None:
            raise ValueError(f"unknown area code {text!r}")
        return place

    def _by_name(self, value: Any) -> Place:
        if value is None or str(value).strip() == "":
            raise ValueError(f"no {self.join.columns[0]}")
        matches = [p for p in self._names.get(norm(str(value)), []) if p.kind == self.join.level]
        if not matches:
            raise ValueError(f"unknown {self.join.level} name {str(value)[:60]!r}")
        if len(matches) > 1:
            raise ValueError(f"ambiguous {self.join.level} name {value!r} "
                             f"({', '.join(p.id for p in matches)})")
        return matches[0]

    def _at(self, lon: float, lat: float) -> Place:
        found = self.geo.containing(lon, lat, kind=self.join.level)
        if not found:
            near = self.geo.nearest(lon, lat, 500.0, kind=self.join.level)   # shoreline generalisation
            if near is None:
                raise ValueError(f"point {lat:.5f}, {lon:.5f} is outside every {self.join.level}")
            return near[0]
        return found[0]
