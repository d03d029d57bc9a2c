"""SensorThings rows for rule tests, written straight into a real store."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.sensorthings import schema as sta

# id, device id, kind, observed property, unit, lon, lat (Patong, Patong, Karon)
DEVICES = [
    (1, "rain-01", "rain_gauge", "Rainfall", "mm", 98.2965, 7.8961),
    (2, "level-01", "water_level", "Water level", "m", 98.2990, 7.8930),
    (3, "do-01", "dissolved_oxygen", "Dissolved oxygen", "mg/L", 98.2960, 7.8200),
]


async def create_streams(store: Any, devices: list[tuple[Any, ...]] = DEVICES) -> None:
    async def op(conn: AsyncConnection) -> None:
        await conn.execute(sta.sensors.insert().values(id=1, name="s", description="s", encoding_type="text/html",
                                                       metadata="-"))
        props: dict[str, int] = {}
        for sid, device, kind, prop, unit, lon, lat in devices:
            if prop not in props:
                props[prop] = len(props) + 1
                await conn.execute(sta.observed_properties.insert().values(
                    id=props[prop], name=prop, definition="-", description="-"))
            await conn.execute(sta.things.insert().values(id=sid, name=device, description=device,
                                                          properties={"device_id": device, "kind": kind}))
            await conn.execute(sta.locations.insert().values(
                id=sid, name=device, description=device, encoding_type="application/geo+json",
                location={"type": "Point", "coordinates": [lon, lat]}))
            await conn.execute(sta.thing_locations.insert().values(thing_id=sid, location_id=sid))
            await conn.execute(sta.datastreams.insert().values(
                id=sid, name=f"{prop} at {device}", description="-", observation_type="OM_Measurement",
                unit_of_measurement={"name": unit, "symbol": unit, "definition": "-"}, thing_id=sid, sensor_id=1,
                observed_property_id=props[prop]))

    await store.write(op)
