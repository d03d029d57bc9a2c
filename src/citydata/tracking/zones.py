"""Zones (extra fences besides the home province): add, delete, list. In multi-node mode the change is
broadcast (``tracking.zones_changed``) and every node reloads the zones from the store."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from citydata.auth import Principal
from citydata.errors import Conflict, NotFound, ValidationFailed
from citydata.geo.model import geometry_from_geojson, geometry_to_geojson
from citydata.tracking.arrivals import ZoneIn, iso
from citydata.tracking.schema import tracking_fence_state, tracking_zones

if TYPE_CHECKING:
    from citydata.tracking.service import TrackingService


async def add_zone(svc: TrackingService, principal: Principal, body: ZoneIn) -> dict[str, Any]:
    try:
        geom = geometry_from_geojson(body.geometry)
    except Exception as err:
        raise ValidationFailed("geometry is not valid GeoJSON", code="invalid_geometry") from err
    if geom.geom_type not in ("Polygon", "MultiPolygon") or not geom.is_valid or geom.is_empty:
        raise ValidationFailed("a zone is a valid Polygon or MultiPolygon", code="invalid_geometry")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise ValidationFailed("zone coordinates out of range", code="coordinates_out_of_range")
    zid = f"zone:{body.id or secrets.token_hex(6)}"
    if zid in svc.zones:
        raise Conflict(f"zone {zid} exists", code="zone_exists")
    row = {"id": zid, "name": body.name, "geometry": geometry_to_geojson(geom), "buffer_m": body.buffer_m,
           "created_by": principal.subject[:100], "created_at": svc.clock.now()}
    await svc.store.execute(tracking_zones.insert().values(**row))
    svc.zones[zid] = row
    svc._rebuild_fences()
    await _changed(svc, zid)
    return {k: (iso(v) if isinstance(v, datetime) else v) for k, v in row.items()}


async def delete_zone(svc: TrackingService, zone_id: str) -> None:
    if zone_id not in svc.zones:
        raise NotFound(f"no zone {zone_id}", code="zone_not_found")
    await svc.store.execute(tracking_zones.delete().where(tracking_zones.c.id == zone_id))
    await svc.store.execute(tracking_fence_state.delete().where(tracking_fence_state.c.fence_id == zone_id))
    del svc.zones[zone_id]
    svc._rebuild_fences()
    await _changed(svc, zone_id)
    for rt in svc.travellers.values():
        rt.fences.states.pop(zone_id, None)
        rt.fences.base.pop(zone_id, None)


def list_zones(svc: TrackingService) -> list[dict[str, Any]]:
    return [{k: (iso(v) if isinstance(v, datetime) else v) for k, v in z.items()} for z in svc.zones.values()]


async def _changed(svc: TrackingService, zone_id: str) -> None:
    if svc.shared:
        from citydata.tracking.shared import zones_changed

        await zones_changed(svc, zone_id)
