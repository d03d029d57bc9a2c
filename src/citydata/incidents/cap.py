"""CAP 1.2 (OASIS Common Alerting Protocol) documents, built with lxml.

``WarningSpec`` is what an operator (or a rule's draft) says; ``resolve_areas`` turns its area (a GeoJSON
polygon, or places of the reference geography by id or name) into CAP ``<area>`` blocks; ``build_alert``
writes the ``<alert>`` with one ``<info>`` per language (th-TH and en-US). Times are written with a numeric
offset and no fraction (the CAP ``sent`` pattern). Polygons are ``lat,lon`` pairs, closed rings of at least
four points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from lxml import etree
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from citydata.alerts.events import Category, Certainty, Severity, Urgency
from citydata.errors import ValidationFailed
from citydata.geo import Geography
from citydata.geo.model import Place

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SIMPLIFY_DEG = 0.0005        # about 50 m: keeps district polygons to a few hundred points
POINT_RADIUS_KM = 1.0        # a place that is a point (a pier, a checkpoint) becomes a circle this wide
AREA_KINDS = ("subdistrict", "district", "province")
ResponseType = Literal["Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear",
                       "None"]


class WarningSpec(BaseModel):
    """The content of a public warning. Thai and English texts; the area as places and/or a polygon."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1, max_length=200)
    event_th: str | None = Field(None, max_length=200)
    category: Category = "Met"
    severity: Severity = "moderate"
    urgency: Urgency = "expected"
    certainty: Certainty = "likely"
    response_type: list[ResponseType] = Field(default_factory=list, max_length=9)
    headline_en: str = Field(min_length=1, max_length=300)
    headline_th: str | None = Field(None, max_length=300)
    description_en: str = Field("", max_length=8000)
    description_th: str | None = Field(None, max_length=8000)
    instruction_en: str | None = Field(None, max_length=8000)
    instruction_th: str | None = Field(None, max_length=8000)
    area_desc: str | None = Field(None, max_length=500)
    area_desc_th: str | None = Field(None, max_length=500)
    places: list[str] = Field(default_factory=list, max_length=100)
    polygon: dict[str, Any] | None = None
    effective: AwareDatetime | None = None
    onset: AwareDatetime | None = None
    expires: AwareDatetime | None = None
    note: str | None = Field(None, max_length=1000)

    def check_publishable(self) -> None:
        """What a warning needs before it goes public (a rule's draft may lack some of it)."""
        if not self.headline_th or not (self.description_th or not self.description_en):
            raise ValidationFailed("a public warning needs its Thai headline and description", code="thai_missing")
        if not self.places and self.polygon is None:
            raise ValidationFailed("a public warning needs an area: places or a polygon", code="area_missing")


@dataclass
class Area:
    desc_en: str
    desc_th: str
    polygons: list[str] = field(default_factory=list)
    circles: list[str] = field(default_factory=list)
    geocodes: list[tuple[str, str]] = field(default_factory=list)


def cap_time(value: datetime, tz: str = "Asia/Bangkok") -> str:
    """``2026-11-21T09:30:00+07:00``: the CAP dateTime form (offset, no fraction, never ``Z``)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(ZoneInfo(tz)).replace(microsecond=0).isoformat()


def _ring(coords: Any) -> str:
    pts = [(float(lon), float(lat)) for lon, lat, *_ in coords]
    if pts[0] != pts[-1]:
        pts.append(pts[0])
    if len(pts) < 4:
        raise ValidationFailed("a CAP polygon needs at least four points (a closed ring)", code="invalid_polygon")
    return " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in pts)


def polygons_of(geom: BaseGeometry, simplify: float = SIMPLIFY_DEG) -> list[str]:
    """CAP polygon strings (exterior rings) of a Polygon or MultiPolygon."""
    if simplify:
        geom = geom.simplify(simplify, preserve_topology=True)
    parts = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
    return [_ring(list(p.exterior.coords)) for p in parts if isinstance(p, Polygon) and not p.is_empty]


def find_place(geography: Geography, ref: str) -> Place:
    """A place by id (``subdistrict:830101``) or by English or Thai name (areas first)."""
    found = geography.get(ref)
    if found is not None:
        return found
    wanted = ref.strip().casefold()
    matches = [p for p in geography if wanted in (p.name_en.casefold(), (p.name_th or "").casefold())]
    if not matches:
        raise ValidationFailed(f"no place {ref!r} in the reference geography", code="place_not_found")
    matches.sort(key=lambda p: (AREA_KINDS.index(p.kind) if p.kind in AREA_KINDS else len(AREA_KINDS), p.id))
    return matches[0]


def resolve_areas(spec: WarningSpec, geography: Geography | None) -> list[Area]:
    areas: list[Area] = []
    if spec.polygon is not None:
        try:
            geom = shape(spec.polygon)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise ValidationFailed("polygon must be a GeoJSON Polygon or MultiPolygon", code="invalid_polygon") from err
        if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty or not geom.is_valid:
            raise ValidationFailed("polygon must be a valid GeoJSON Polygon or MultiPolygon", code="invalid_polygon")
        minx, miny, maxx, maxy = geom.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise ValidationFailed("polygon coordinates must be longitude, latitude", code="invalid_polygon")
        desc = spec.area_desc or "Area given by polygon"
        areas.append(Area(desc, spec.area_desc_th or desc, polygons=polygons_of(geom, simplify=0)))
    if spec.places:
        if geography is None:
            raise ValidationFailed("no reference geography is loaded", code="place_not_found")
        for ref in spec.places:
            place = find_place(geography, ref)
            area = Area(place.name_en, place.name_th or place.name_en)
            if place.is_area:
                area.polygons = polygons_of(place.geometry)
                area.geocodes.append(("TH-DOPA", place.code))
            else:
                area.circles.append(f"{place.lat:.6f},{place.lon:.6f} {POINT_RADIUS_KM}")
            areas.append(area)
    if not areas:
        raise ValidationFailed("a warning needs an area: places or a polygon", code="area_missing")
    return areas


@dataclass(frozen=True)
class Reference:
    sender: str
    identifier: str
    sent: str       # already in CAP form

    def __str__(self) -> str:
        return f"{self.sender},{self.identifier},{self.sent}"


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def _info(root: etree._Element, spec: WarningSpec, lang: str, areas: list[Area], *, sender_name: str, web: str,
          tz: str, cancelled: bool) -> None:
    th = lang == "th-TH"
    info = _sub(root, "info")
    _sub(info, "language", lang)
    _sub(info, "category", spec.category)
    _sub(info, "event", (spec.event_th or spec.event) if th else spec.event)
    for rt in (["AllClear"] if cancelled else spec.response_type):
        _sub(info, "responseType", rt)
    _sub(info, "urgency", "Past" if cancelled else spec.urgency.capitalize())
    _sub(info, "severity", spec.severity.capitalize())
    _sub(info, "certainty", spec.certainty.capitalize())
    for tag, when in (("effective", spec.effective), ("onset", spec.onset), ("expires", spec.expires)):
        if when is not None:
            _sub(info, tag, cap_time(when, tz))
    _sub(info, "senderName", sender_name)
    headline = (spec.headline_th or spec.headline_en) if th else spec.headline_en
    if cancelled:
        headline = ("ยกเลิก: " if th else "Cancelled: ") + headline
    _sub(info, "headline", headline)
    description = (spec.description_th or spec.description_en) if th else spec.description_en
    if cancelled:
        description = "ประกาศนี้ถูกยกเลิกแล้ว" if th else "This warning has been cancelled."
    if description:
        _sub(info, "description", description)
    instruction = (spec.instruction_th or spec.instruction_en) if th else spec.instruction_en
    if instruction and not cancelled:
        _sub(info, "instruction", instruction)
    if web:
        _sub(info, "web", web)
    for area in areas:
        el = _sub(info, "area")
        _sub(el, "areaDesc", area.desc_th if th else area.desc_en)
        for polygon in area.polygons:
            _sub(el, "polygon", polygon)
        for circle in area.circles:
            _sub(el, "circle", circle)
        for name, value in area.geocodes:
            geocode = _sub(el, "geocode")
            _sub(geocode, "valueName", name)
            _sub(geocode, "value", value)


def build_alert(*, identifier: str, sender: str, sent: datetime, status: str, msg_type: str, spec: WarningSpec,
                areas: list[Area], sender_name: str, web: str = "", references: list[Reference] | None = None,
                tz: str = "Asia/Bangkok", source: str = "CityData IOC") -> bytes:
    """One CAP 1.2 ``<alert>`` as UTF-8 XML bytes (with the XML declaration)."""
    for text, what in ((identifier, "identifier"), (sender, "sender")):
        if not text or any(c in text for c in " ,<&\t\n"):
            raise ValidationFailed(f"CAP {what} may not contain spaces, commas, < or &", code="invalid_cap")
    if msg_type in ("Update", "Cancel") and not references:
        raise ValidationFailed(f"a CAP {msg_type} must reference the messages it updates", code="invalid_cap")
    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(root, "identifier", identifier)
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(sent, tz))
    _sub(root, "status", status)
    _sub(root, "msgType", msg_type)
    _sub(root, "source", source)
    _sub(root, "scope", "Public")
    if spec.note:
        _sub(root, "note", spec.note)
    if references:
        _sub(root, "references", " ".join(str(r) for r in references))
    cancelled = msg_type == "Cancel"
    for lang in ("th-TH", "en-US"):
        _info(root, spec, lang, areas, sender_name=sender_name, web=web, tz=tz, cancelled=cancelled)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
