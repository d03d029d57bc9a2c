"""Request bodies to column values, per entity, with errors that name the field.

``parse_entity`` splits a JSON body into: the entity's own column values, and its navigation members (links by
``@iot.id`` or nested entities for deep insert). Annotations a client may echo back from a GET
(``@iot.selfLink``, ``...@iot.navigationLink``) are ignored; any other unknown member is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from citydata.sensorthings.model import OM_COMPLEX, Entity, Nav, Prop
from citydata.sensorthings.values import (
    bad,
    bbox_columns,
    parse_encoding,
    parse_geojson,
    parse_instant,
    parse_interval,
    parse_time_or_interval,
    split_result,
)


@dataclass
class Parsed:
    entity: Entity
    columns: dict[str, Any] = field(default_factory=dict)
    navs: dict[str, Any] = field(default_factory=dict)     # nav name -> raw member (dict or list)
    link_id: int | None = None                             # the body is only {"@iot.id": n}
    given: set[str] = field(default_factory=set)           # STA property names present in the body


def _is_annotation(key: str) -> bool:
    return key.startswith("@iot.") or key.endswith("@iot.navigationLink") or key.endswith("@iot.count") \
        or key.endswith("@iot.nextLink")


def link_id_of(value: Any, where: str) -> int | None:
    """The id when ``value`` is a link (``{"@iot.id": n}``, nothing else but annotations)."""
    if not isinstance(value, dict):
        raise bad(where, "must be a JSON object")
    if "@iot.id" in value and all(_is_annotation(k) for k in value):
        ident = value["@iot.id"]
        if isinstance(ident, str) and ident.isdigit():
            ident = int(ident)
        if not isinstance(ident, int) or isinstance(ident, bool):
            raise bad(f"{where}.@iot.id", "must be an integer")
        return ident
    return None


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise bad(name, "must be a string")
    return value


def _column_values(prop: Prop, value: Any, where: str) -> dict[str, Any]:
    name = f"{where}{prop.name}"
    col = prop.column
    if prop.kind == "string":
        if value is None and not prop.required:
            return {col: None}
        text = _string(value, name)
        return {col: parse_encoding(text, name) if col == "encoding_type" else text}
    if prop.kind == "json":
        if value is not None and not isinstance(value, (dict, list)):
            raise bad(name, "must be a JSON object")
        return {col: value}
    if prop.kind == "geo":
        geo, box = parse_geojson(value, name)
        return {col: geo, **bbox_columns(box)}
    if prop.kind == "time":
        return {col: None if value is None else parse_instant(value, name)}
    if prop.kind == "interval":
        if value is None:
            return {f"{col}_start": None, f"{col}_end": None}
        low, high = parse_interval(value, name)
        return {f"{col}_start": low, f"{col}_end": high}
    if prop.kind == "phenomenon":
        start, end = parse_time_or_interval(value, name)
        return {"phenomenon_time": start, "phenomenon_time_end": end}
    if prop.kind == "result":
        number, other = split_result(value)
        return {"result_number": number, "result_json": other}
    raise bad(name, "is not writable")


def parse_entity(entity: Entity, body: Any, *, where: str = "", partial: bool = False) -> Parsed:
    """Validate a body for ``entity``. ``partial`` (PATCH) skips the required-property check."""
    if not isinstance(body, dict):
        raise bad(where.rstrip(".") or entity.name, "must be a JSON object")
    ident = link_id_of(body, where.rstrip(".") or entity.name)
    if ident is not None:
        return Parsed(entity, link_id=ident)
    out = Parsed(entity)
    for key, value in body.items():
        if _is_annotation(key):
            continue
        prop = entity.prop(key)
        if prop is not None:
            if not prop.writable or prop.kind == "id":
                raise bad(f"{where}{key}", "is computed by the server and cannot be set")
            out.columns.update(_column_values(prop, value, where))
            out.given.add(key)
            continue
        nav = entity.nav(key)
        if nav is not None:
            if nav.many and not isinstance(value, list):
                raise bad(f"{where}{key}", "must be an array")
            if not nav.many and not isinstance(value, dict):
                raise bad(f"{where}{key}", "must be an object")
            out.navs[key] = value
            continue
        raise bad(f"{where}{key}", f"is not a property of {entity.name}")
    if not partial:
        for prop in entity.props:
            if prop.required and prop.name not in out.given:
                raise bad(f"{where}{prop.name}", "is required")
    _entity_rules(out, where, partial)
    return out


def _entity_rules(parsed: Parsed, where: str, partial: bool) -> None:
    e = parsed.entity
    c = parsed.columns
    if e.name == "MultiDatastream" and not partial:
        if c.get("observation_type") != OM_COMPLEX:
            raise bad(f"{where}observationType", f"must be {OM_COMPLEX}")
        units, types = c.get("unit_of_measurements"), c.get("multi_observation_data_types")
        if not isinstance(units, list) or not isinstance(types, list):
            raise bad(f"{where}unitOfMeasurements", "unitOfMeasurements and multiObservationDataTypes must be arrays")
        props = parsed.navs.get("ObservedProperties")
        if not isinstance(props, list) or not props:
            raise bad(f"{where}ObservedProperties", "is required (one per component)")
        if not (len(units) == len(types) == len(props)):
            raise bad(f"{where}multiObservationDataTypes",
                      "unitOfMeasurements, multiObservationDataTypes and ObservedProperties must have the same length")
    if e.name == "Datastream" and "unit_of_measurement" in c and not isinstance(c["unit_of_measurement"], dict):
        raise bad(f"{where}unitOfMeasurement", "must be an object with name, symbol and definition")


def required_navs(entity: Entity) -> list[Nav]:
    return [n for n in entity.navs if n.required]


def observation_time_defaults(columns: dict[str, Any], now: datetime) -> None:
    """phenomenonTime defaults to the time the server receives the Observation (18-088, Table 25)."""
    if columns.get("phenomenon_time") is None:
        columns["phenomenon_time"] = now
        columns.setdefault("phenomenon_time_end", None)
