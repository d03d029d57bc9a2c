"""Latest sensor values for dashboards: one cheap read of the ``latest_observations`` table (kept up to date by
the ingest path), never an ``$orderby`` scan of the observations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal
from citydata.sensorthings import schema as s
from citydata.sensorthings.values import fmt_time, join_result
from citydata.store.schema import latest_observations

router = APIRouter(prefix="/api/v1/sensors", tags=["sensors"])


@router.get("/latest", summary="Every Datastream with its latest value, Thing and position")
async def latest(platform: PlatformDep, caller: Annotated[Principal, Allowed("sensors.read")],
                 observed_property: Annotated[str | None, Query(max_length=200,
                                                                description="Only this ObservedProperty name")] = None,
                 ) -> dict[str, Any]:
    ds, th, op, lo = s.datastreams, s.things, s.observed_properties, latest_observations
    stmt = (select(ds.c.id, ds.c.name, ds.c.unit_of_measurement, th.c.id.label("thing_id"),
                   th.c.name.label("thing"), th.c.properties, op.c.name.label("observed_property"),
                   lo.c.phenomenon_time, lo.c.result_number, lo.c.result_json)
            .join(th, th.c.id == ds.c.thing_id).join(op, op.c.id == ds.c.observed_property_id)
            .outerjoin(lo, lo.c.datastream_id == ds.c.id).order_by(ds.c.id))
    if observed_property:
        stmt = stmt.where(op.c.name == observed_property)
    rows = await platform.store.fetch_all(stmt)
    places = {int(r["thing_id"]): r for r in await platform.store.fetch_all(
        select(s.thing_locations.c.thing_id, s.locations.c.location)
        .join(s.locations, s.locations.c.id == s.thing_locations.c.location_id))}
    items = []
    for r in rows:
        where = places.get(int(r["thing_id"]))
        geometry = where["location"] if where is not None else None
        if isinstance(geometry, dict) and geometry.get("type") == "Feature":
            geometry = geometry.get("geometry")
        items.append({
            "datastream_id": r["id"], "name": r["name"], "thing_id": r["thing_id"], "thing": r["thing"],
            "device_id": (r["properties"] or {}).get("device_id"), "observed_property": r["observed_property"],
            "unit": (r["unit_of_measurement"] or {}).get("symbol"), "geometry": geometry,
            "phenomenon_time": fmt_time(r["phenomenon_time"]),
            "result": join_result(r["result_number"], r["result_json"]) if r["phenomenon_time"] else None})
    return {"items": items}
