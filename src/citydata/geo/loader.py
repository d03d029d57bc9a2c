"""Places in the store: loading a city into the ``places`` table, reading it back, first-start loading.

Writes go through the store's single writer (``store.write``), one transaction per load: the earlier rows of
the same city are replaced atomically, so readers see either the old city or the new one, never half of each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.clock import Clock
from citydata.config import Settings
from citydata.errors import Conflict, ValidationFailed
from citydata.geo.model import Place, geometry_from_geojson, geometry_to_geojson
from citydata.geo.reference import CITY_RE, read_reference_city
from citydata.store import schema

if TYPE_CHECKING:
    from citydata.store import Store

log = logging.getLogger(__name__)

META_KEY = "reference_city"
_CHUNK = 500


def place_to_row(place: Place, city: str) -> dict[str, Any]:
    """The ``places`` row for a place (geometry as a GeoJSON mapping plus its bounding box)."""
    xmin, ymin, xmax, ymax = (float(v) for v in place.geometry.bounds)
    return {
        "id": place.id, "kind": place.kind, "code": place.code, "name_en": place.name_en,
        "name_th": place.name_th, "parent_id": place.parent_id, "city": city,
        "geometry": geometry_to_geojson(place.geometry),
        "min_lon": xmin, "min_lat": ymin, "max_lon": xmax, "max_lat": ymax,
        "properties": place.properties or None, "source": place.source,
    }


def place_from_row(row: Any) -> Place:
    """A ``Place`` from a ``places`` row (a mapping)."""
    return Place(id=row["id"], kind=row["kind"], code=row["code"], name_en=row["name_en"],
                 name_th=row["name_th"], parent_id=row["parent_id"], city=row["city"],
                 geometry=geometry_from_geojson(row["geometry"]), properties=dict(row["properties"] or {}),
                 source=row["source"])


async def read_places(store: Store, *, city: str | None = None, kind: str | None = None) -> list[Place]:
    """Places from the store, optionally of one city and/or one kind, ordered by id."""
    stmt = select(schema.places).order_by(schema.places.c.id)
    if city is not None:
        stmt = stmt.where(schema.places.c.city == city)
    if kind is not None:
        stmt = stmt.where(schema.places.c.kind == kind)
    rows = await store.fetch_all(stmt)
    return [place_from_row(r) for r in rows]


async def load_places(store: Store, places: Sequence[Place], city: str, clock: Clock, *,
                      replace: bool = True) -> int:
    """Write ``places`` as city ``city`` in one transaction; returns the number of rows written.

    With ``replace`` (the default) every earlier place of that city is removed first, so loading the same city
    twice leaves one copy. Without it, places with the same ids are updated and the others kept. Ids held by
    another city raise ``Conflict``; duplicate ids in ``places`` raise ``ValidationFailed``."""
    if not CITY_RE.match(city):
        raise ValidationFailed(f"city name {city!r} must be lower-case letters, digits, _ or -",
                               code="city_name", field="city")
    if not places:
        raise ValidationFailed(f"no places to load for city {city}", code="city_empty")
    seen: set[str] = set()
    for place in places:
        if place.id in seen:
            raise ValidationFailed(f"duplicate place id {place.id}", code="duplicate_place", field="id")
        seen.add(place.id)
    rows = [place_to_row(p, city) for p in places]
    ids = [r["id"] for r in rows]
    table = schema.places
    started = clock.monotonic()

    async def op(conn: AsyncConnection) -> int:
        taken: list[str] = []
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            result = await conn.execute(select(table.c.id, table.c.city)
                                        .where(table.c.id.in_(chunk), table.c.city != city))
            taken += [f"{r.id} ({r.city})" for r in result]
        if taken:
            shown = ", ".join(sorted(taken)[:5]) + (" ..." if len(taken) > 5 else "")
            raise Conflict(f"{len(taken)} place ids already belong to another city: {shown}",
                           code="place_taken")
        if replace:
            await conn.execute(delete(table).where(table.c.city == city))
        else:
            for i in range(0, len(ids), _CHUNK):
                await conn.execute(delete(table).where(table.c.id.in_(ids[i:i + _CHUNK])))
        for i in range(0, len(rows), _CHUNK):
            await conn.execute(insert(table), rows[i:i + _CHUNK])
        return len(rows)

    written = int(await store.write(op, rows=len(rows)))
    log.info("loaded %d places for city %s in %.2fs", written, city, clock.monotonic() - started)
    return written


async def ensure_reference_city(store: Store, settings: Settings, clock: Clock) -> bool:
    """Load the shipped reference city ``settings.city`` unless it was loaded before; True when it loaded.

    What was loaded is remembered in the ``meta`` table (key ``reference_city``), so later starts (and edits
    an operator made since) are left alone. Changing ``settings.city`` to another shipped city
    loads that one."""
    current = await store.get_meta(META_KEY)
    if isinstance(current, dict) and current.get("name") == settings.city:
        return False
    places = await asyncio.to_thread(read_reference_city, settings.city)
    count = await load_places(store, places, settings.city, clock, replace=True)
    await store.set_meta(META_KEY, {"name": settings.city, "places": count,
                                    "loaded_at": clock.now().isoformat()})
    return True
