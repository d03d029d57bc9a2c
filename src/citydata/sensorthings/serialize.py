"""Rows to SensorThings JSON: ``@iot.id``, ``@iot.selfLink``, navigation links, ``$select`` and expansions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from citydata.sensorthings.model import Entity, Prop
from citydata.sensorthings.values import GEOJSON, fmt_interval, fmt_time, join_result


def prop_value(prop: Prop, row: Any) -> Any:
    col = prop.column
    if prop.kind == "interval":
        return fmt_interval(row.get(f"{col}_start"), row.get(f"{col}_end"))
    if prop.kind == "phenomenon":
        return fmt_interval(row.get("phenomenon_time"), row.get("phenomenon_time_end"))
    if prop.kind == "time":
        return fmt_time(row.get(col))
    if prop.kind == "result":
        return join_result(row.get("result_number"), row.get("result_json"))
    if prop.kind == "string" and col == "encoding_type" and row.get(col) == "application/vnd.geo+json":
        return GEOJSON
    return row.get(col)


def self_link(base: str, entity: Entity, ident: int) -> str:
    return f"{base}/{entity.set_name}({ident})"


def entity_json(entity: Entity, row: Any, base: str, *, select: set[str] | None = None,
                expanded: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One entity. ``select`` limits properties and navigation links (None: all); ``expanded`` maps navigation
    names to the already serialised related entity (dict or None) or collection (dict with value/count/next)."""
    ident = int(row["id"])
    link = self_link(base, entity, ident)
    out: dict[str, Any] = {}
    if select is None or "id" in select:
        out["@iot.id"] = ident
    if select is None or "selfLink" in select or "@iot.selfLink" in select:
        out["@iot.selfLink"] = link
    for prop in entity.props:
        if prop.name == "id" or (select is not None and prop.name not in select):
            continue
        out[prop.name] = prop_value(prop, row)
    expanded = expanded or {}
    for nav in entity.navs:
        if nav.name in expanded:
            value = expanded[nav.name]
            if nav.many:
                out[nav.name] = value["value"]
                if "count" in value:
                    out[f"{nav.name}@iot.count"] = value["count"]
                if value.get("next"):
                    out[f"{nav.name}@iot.nextLink"] = value["next"]
            elif value is not None:
                out[nav.name] = value
            continue
        if select is None or nav.name in select:
            out[f"{nav.name}@iot.navigationLink"] = f"{link}/{nav.name}"
    return out
