"""What the engine knows about each Datastream: its observed property, its Thing's properties (device id and
kind), its location and the sub-district (zone) containing it. Read from the SensorThings tables, cached, and
looked up again on a miss (a Datastream created after the engine started)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select

from citydata.rules.selector import norm_name
from citydata.sensorthings import schema as sta

if TYPE_CHECKING:
    from citydata.geo import Geography
    from citydata.store import Store

log = logging.getLogger(__name__)
ZONE_KIND = "subdistrict"
MISS_TTL_S = 30.0        # an unknown Datastream id is looked up again after this long
CATCH_UP_ROWS = 5000     # a miss beyond the newest id known reads up to this many newer Datastreams at once


@dataclass(frozen=True)
class StreamInfo:
    id: int
    observed_property: str = ""
    unit: str | None = None
    thing_id: int | None = None
    thing_properties: dict[str, Any] = field(default_factory=dict, hash=False)
    device_id: str | None = None
    device_kind: str | None = None
    lon: float | None = None
    lat: float | None = None
    zone_id: str | None = None
    zone_name: str | None = None
    zone_name_th: str | None = None


def zone_of(geography: Geography | None, lon: float | None, lat: float | None) -> Any:
    """The sub-district place containing the point (None at sea, abroad or without a geography)."""
    if geography is None or lon is None or lat is None:
        return None
    found = geography.containing(lon, lat, kind=ZONE_KIND)
    return found[0] if found else None


def _point(location: Any) -> tuple[float | None, float | None]:
    geom = location.get("geometry", location) if isinstance(location, dict) else None
    if isinstance(geom, dict) and geom.get("type") == "Point":
        coords = geom.get("coordinates") or []
        if len(coords) >= 2:
            return float(coords[0]), float(coords[1])
    return None, None


class Catalogue:
    """Datastream id → ``StreamInfo``."""

    def __init__(self, store: Store | None = None, geography: Geography | None = None) -> None:
        self.store, self.geography = store, geography
        self._streams: dict[int, StreamInfo | None] = {}
        self._misses: dict[int, float] = {}
        self._newest = 0      # every Datastream up to this id has been read (ids only grow)

    def put(self, info: StreamInfo) -> None:
        self._streams[info.id] = info

    def cached(self, stream_id: int) -> StreamInfo | None:
        return self._streams.get(stream_id)

    def known(self, stream_id: int) -> bool:
        return self._streams.get(stream_id) is not None

    def forget(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)

    def _query(self) -> Select[Any]:
        ds, th, op = sta.datastreams, sta.things, sta.observed_properties
        return (select(ds.c.id, ds.c.unit_of_measurement, th.c.id.label("thing_id"),
                       th.c.properties.label("thing_properties"), op.c.name.label("op_name"))
                .join(th, th.c.id == ds.c.thing_id).join(op, op.c.id == ds.c.observed_property_id))

    async def _locations(self, thing_ids: Iterable[int]) -> dict[int, Any]:
        assert self.store is not None
        tl, loc = sta.thing_locations, sta.locations
        ids = sorted(set(thing_ids))
        out: dict[int, Any] = {}
        for i in range(0, len(ids), 500):
            rows = await self.store.fetch_all(
                select(tl.c.thing_id, loc.c.location).join(loc, loc.c.id == tl.c.location_id)
                .where(tl.c.thing_id.in_(ids[i:i + 500])).order_by(loc.c.id))
            for row in rows:
                out[int(row["thing_id"])] = row["location"]
        return out

    def _info(self, row: Any, location: Any) -> StreamInfo:
        props = row["thing_properties"] or {}
        unit = row["unit_of_measurement"] or {}
        lon, lat = _point(location)
        zone = zone_of(self.geography, lon, lat)
        return StreamInfo(
            id=int(row["id"]), observed_property=norm_name(str(row["op_name"])),
            unit=unit.get("symbol") if isinstance(unit, dict) else None, thing_id=int(row["thing_id"]),
            thing_properties=dict(props), device_id=str(props["device_id"]) if props.get("device_id") else None,
            device_kind=str(props["kind"]) if props.get("kind") else None, lon=lon, lat=lat,
            zone_id=zone.id if zone else None, zone_name=zone.name_en if zone else None,
            zone_name_th=zone.name_th if zone else None)

    async def _cache_with_locations(self, rows: list[Any]) -> None:
        locations = await self._locations(int(r["thing_id"]) for r in rows)
        for row in rows:
            self._streams[int(row["id"])] = self._info(row, locations.get(int(row["thing_id"])))
            self._misses.pop(int(row["id"]), None)

    async def load_all(self) -> int:
        """Read every Datastream (start-up)."""
        if self.store is None:
            return 0
        rows = await self.store.fetch_all(self._query())
        await self._cache_with_locations(rows)
        if rows:
            self._newest = max(self._newest, max(int(r["id"]) for r in rows))
        return len(rows)

    async def _catch_up(self) -> None:
        """Read every Datastream newer than the newest one known, in one query (and one for their locations).

        Datastreams created after the engine started (a deployment registering its sensors) were otherwise
        read one at a time on their first observation, each a round trip to the store; under load (a busy
        SQLite) that took 0.2-1.5 s per Datastream, and the rules consumer, which applies every event of the
        bus in order, stalled behind them: its queue filled up and then every publisher waited."""
        assert self.store is not None
        ds = sta.datastreams
        rows = await self.store.fetch_all(self._query().where(ds.c.id > self._newest).order_by(ds.c.id)
                                          .limit(CATCH_UP_ROWS))
        if not rows:
            return
        await self._cache_with_locations(rows)
        self._newest = max(self._newest, int(rows[-1]["id"]))

    async def lookup(self, stream_id: int) -> StreamInfo | None:
        """The Datastream's info, read from the store when not cached (None when it does not exist)."""
        if stream_id in self._streams:
            return self._streams[stream_id]
        missed = self._misses.get(stream_id)
        if missed is not None and time.monotonic() - missed < MISS_TTL_S:
            return None
        info = None
        if self.store is not None and stream_id > self._newest:
            await self._catch_up()
            info = self._streams.get(stream_id)
            if info is not None:
                return info
        if self.store is not None:
            row = await self.store.fetch_one(self._query().where(sta.datastreams.c.id == stream_id))
            if row is not None:
                locations = await self._locations([int(row["thing_id"])])
                info = self._info(row, locations.get(int(row["thing_id"])))
        if info is not None:
            self._streams[stream_id] = info
            self._misses.pop(stream_id, None)
        else:
            self._misses[stream_id] = time.monotonic()
        return info

    async def missing(self, stream_ids: Iterable[int]) -> list[int]:
        """The ids among ``stream_ids`` that are not Datastreams (always asks the store again)."""
        for i in stream_ids:
            self._misses.pop(i, None)
        return [i for i in sorted(set(stream_ids)) if await self.lookup(i) is None]
