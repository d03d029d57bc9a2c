"""Create (with deep insert and links by id), update (PATCH, PUT) and delete (with the standard's cascades)
for every SensorThings entity except the Observation hot path, which is ``ingest.ObservationIngest``.

Nested Observations in a deep insert are created through ``ObservationIngest`` after the enclosing entities
commit, so there is one write path for Observations."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.errors import CityDataError, NotFound, ValidationFailed
from citydata.events import Event, make_event
from citydata.sensorthings import schema as s
from citydata.sensorthings.model import ENTITIES, Entity, Nav, reverse_nav
from citydata.sensorthings.serialize import entity_json
from citydata.sensorthings.validate import Parsed, link_id_of, parse_entity
from citydata.sensorthings.values import bad
from citydata.store.schema import latest_observations, observations

if TYPE_CHECKING:
    from citydata.bus import Bus
    from citydata.clock import Clock
    from citydata.sensorthings.ingest import Created, ObservationIngest
    from citydata.store import Store

log = logging.getLogger(__name__)
STREAM_TABLES = ("sta_datastreams", "sta_multi_datastreams")


@dataclass
class _Ctx:
    now: datetime
    stream_ids: list[int]
    changes: list[tuple[str, int, str]] = field(default_factory=list)       # (entity, id, op)
    observations: list[tuple[int, bool, list[Any]]] = field(default_factory=list)   # (stream, multi, bodies)


def _count_streams(entity: Entity, body: Any) -> int:
    """How many new Datastreams/MultiDatastreams a deep insert creates (their ids are allocated up front)."""
    if not isinstance(body, dict) or link_id_of(body, entity.name) is not None:
        return 0
    n = 1 if entity.name in ("Datastream", "MultiDatastream") else 0
    for nav in entity.navs:
        member = body.get(nav.name)
        target = ENTITIES[nav.target]
        if isinstance(member, list):
            n += sum(_count_streams(target, m) for m in member)
        elif isinstance(member, dict):
            n += _count_streams(target, member)
    return n


class EntityWriter:
    def __init__(self, store: Store, bus: Bus, clock: Clock, ingest: ObservationIngest, base_url: str) -> None:
        self.store, self.bus, self.clock, self.ingest = store, bus, clock, ingest
        self.base_url = base_url

    # -- create -------------------------------------------------------------------------------------------------
    async def create(self, entity: Entity, body: Any, *, parent: tuple[Entity, Nav, int] | None = None) -> int:
        """Create ``entity`` from ``body``; ``parent`` is the entity and navigation the POST came through
        (``Things(1)/Datastreams``: (Thing, Thing.Datastreams, 1)). Returns the new id."""
        if entity.name == "Observation":
            out = await self.create_observation(body, parent=parent)
            return out.id
        n_streams = _count_streams(entity, body)
        stream_ids = await self.store.allocate_ids(s.datastreams, n_streams) if n_streams else []
        ctx = _Ctx(self.clock.now(), stream_ids)

        async def op(conn: AsyncConnection) -> int:
            ctx.changes.clear()
            ctx.observations.clear()
            ids = list(stream_ids)
            local = _Ctx(ctx.now, ids, ctx.changes, ctx.observations)
            fixed: dict[str, Any] = {}
            links: list[tuple[Nav, int]] = []
            if parent is not None:
                _, nav, pid = parent
                back = reverse_nav(nav)
                if back.kind == "fk_here":
                    fixed[back.column] = pid
                else:
                    links.append((back, pid))
            return await self._create(conn, entity, body, local, fixed=fixed, extra_links=links)

        new_id = int(await self.store.write(op))
        for stream, multi, bodies in ctx.observations:
            results = await self.ingest.create(bodies, stream_id=stream, multi=multi)
            failed = next((r for r in results if isinstance(r, CityDataError)), None)
            if failed is not None:
                raise failed
        await self._notify(ctx.changes)
        return new_id

    async def create_observation(self, body: Any, *, parent: tuple[Entity, Nav, int] | None = None) -> Created:
        """One Observation through the ingest path; ``parent`` is the Datastream, MultiDatastream or
        FeatureOfInterest the POST came through."""
        stream_id = foi = None
        multi: bool | None = None
        if parent is not None:
            owner, _, pid = parent
            if owner.name == "FeatureOfInterest":
                foi = pid
            else:
                stream_id, multi = pid, owner.name == "MultiDatastream"
        out = (await self.ingest.create([body], stream_id=stream_id, multi=multi, foi_id=foi))[0]
        if isinstance(out, CityDataError):
            raise out
        return out

    async def _create(self, conn: AsyncConnection, entity: Entity, body: Any, ctx: _Ctx, *,
                      fixed: dict[str, Any] | None = None, extra_links: list[tuple[Nav, int]] | None = None,
                      where: str = "") -> int:
        parsed = parse_entity(entity, body, where=where)
        if parsed.link_id is not None:
            await self._must_exist(conn, entity, parsed.link_id, where)
            for nav, pid in extra_links or []:
                await self._link(conn, entity, parsed.link_id, nav, pid, ctx)
            return parsed.link_id
        values = dict(parsed.columns)
        values.update(fixed or {})
        # to-one links first: they give this row its foreign keys
        for nav in entity.navs:
            if nav.kind != "fk_here" or nav.column in values:
                if nav.name in parsed.navs and nav.kind == "fk_here" and nav.column in (fixed or {}):
                    raise bad(f"{where}{nav.name}", "is already given by the path")
                continue
            if nav.name in parsed.navs:
                values[nav.column] = await self._create(conn, ENTITIES[nav.target], parsed.navs[nav.name], ctx,
                                                        where=f"{where}{nav.name}.")
            elif nav.required:
                raise bad(f"{where}{nav.name}", "is required")
        if entity.name == "Observation":
            raise ValidationFailed("Observations are created through the Observations path", code="invalid_entity")
        table = entity.table
        if table.name in STREAM_TABLES:
            values["id"] = ctx.stream_ids.pop(0)
            await conn.execute(table.insert().values(**values))
            new_id = int(values["id"])
        else:
            new_id = int((await conn.execute(table.insert().values(**values).returning(table.c.id))).scalar_one())
        ctx.changes.append((entity.name, new_id, "created"))
        for nav, pid in extra_links or []:
            await self._link(conn, entity, new_id, nav, pid, ctx)
        await self._children(conn, entity, new_id, parsed, ctx, where)
        return new_id

    async def _children(self, conn: AsyncConnection, entity: Entity, new_id: int, parsed: Parsed, ctx: _Ctx,
                        where: str) -> None:
        for nav in entity.navs:
            if nav.kind == "fk_here" or nav.name not in parsed.navs:
                continue
            members = parsed.navs[nav.name]
            target = ENTITIES[nav.target]
            if target.name == "Observation":
                bodies = []
                for i, m in enumerate(members):
                    if link_id_of(m, f"{where}{nav.name}[{i}]") is not None:
                        raise bad(f"{where}{nav.name}[{i}]", "existing Observations cannot be re-linked")
                    bodies.append(m)
                if entity.name == "FeatureOfInterest":
                    raise bad(f"{where}{nav.name}", "create Observations through their Datastream")
                ctx.observations.append((new_id, entity.name == "MultiDatastream", bodies))
                continue
            if nav.kind == "fk_there":
                back = reverse_nav(nav)
                for i, m in enumerate(members):
                    await self._create(conn, target, m, ctx, fixed={back.column: new_id},
                                       where=f"{where}{nav.name}[{i}].")
            else:  # link table
                for i, m in enumerate(members):
                    tid = await self._create(conn, target, m, ctx, where=f"{where}{nav.name}[{i}].")
                    await self._link(conn, entity, new_id, nav, tid, ctx, position=i)
        if entity.name == "Thing" and parsed.navs.get("Locations"):
            await self._history(conn, new_id, ctx)

    async def _link(self, conn: AsyncConnection, entity: Entity, ident: int, nav: Nav, other: int, ctx: _Ctx,
                    *, position: int = 0) -> None:
        """Link ``entity(ident)`` to ``other`` through a link-table navigation."""
        assert nav.link is not None
        if nav.link is s.multi_datastream_observed_properties:
            mds, op = (ident, other) if entity.name == "MultiDatastream" else (other, ident)
            await conn.execute(nav.link.insert().values(multi_datastream_id=mds, observed_property_id=op,
                                                        position=position))
            return
        if nav.link is s.thing_locations:
            thing, loc = (ident, other) if entity.name == "Thing" else (other, ident)
            exists = (await conn.execute(select(func.count()).select_from(nav.link).where(
                nav.link.c.thing_id == thing, nav.link.c.location_id == loc))).scalar()
            if not exists:
                await conn.execute(nav.link.insert().values(thing_id=thing, location_id=loc))
            if entity.name == "Location":   # a Location added to a Thing: record the Thing's history
                await self._history(conn, thing, ctx)
            return
        await conn.execute(nav.link.insert().values(**{nav.this_column: ident, nav.target_column: other}))

    async def _history(self, conn: AsyncConnection, thing_id: int, ctx: _Ctx) -> None:
        """A HistoricalLocation with the Thing's current Locations (18-088 10.2.1: created by the service)."""
        hl = s.historical_locations
        hid = int((await conn.execute(hl.insert().values(thing_id=thing_id, time=ctx.now).returning(hl.c.id)))
                  .scalar_one())
        locs = [r[0] for r in (await conn.execute(select(s.thing_locations.c.location_id)
                                                  .where(s.thing_locations.c.thing_id == thing_id))).all()]
        for loc in locs:
            await conn.execute(s.historical_location_locations.insert().values(historical_location_id=hid,
                                                                                location_id=loc))
        ctx.changes.append(("HistoricalLocation", hid, "created"))

    async def _must_exist(self, conn: AsyncConnection, entity: Entity, ident: int, where: str) -> None:
        found = (await conn.execute(select(entity.table.c.id).where(entity.table.c.id == ident))).scalar()
        if found is None:
            raise NotFound(f"{where.rstrip('.') or entity.name}: {entity.name}({ident}) does not exist",
                           code="linked_entity_not_found")

    # -- update -------------------------------------------------------------------------------------------------
    async def update(self, entity: Entity, ident: int, body: Any, *, replace: bool = False) -> None:
        """PATCH (``replace=False``) or PUT: properties and to-one links; a Thing's Locations are replaced."""
        parsed = parse_entity(entity, body, partial=not replace)
        if parsed.link_id is not None:
            raise bad("@iot.id", "cannot be changed")
        ctx = _Ctx(self.clock.now(), [])

        async def op(conn: AsyncConnection) -> None:
            ctx.changes.clear()
            await self._must_exist(conn, entity, ident, "")
            values = dict(parsed.columns)
            if replace:
                for prop in entity.props:
                    if prop.writable and prop.kind != "id" and prop.name not in parsed.given:
                        if prop.kind == "interval":
                            values.setdefault(f"{prop.column}_start", None)
                            values.setdefault(f"{prop.column}_end", None)
                        elif prop.kind not in ("phenomenon", "result", "geo"):
                            values.setdefault(prop.column, None)
            for name, member in parsed.navs.items():
                nav = entity.nav(name)
                assert nav is not None
                if nav.kind == "fk_here":
                    target = ENTITIES[nav.target]
                    values[nav.column] = await self._create(conn, target, member, ctx, where=f"{name}.")
                elif entity.name == "Thing" and name == "Locations":
                    await conn.execute(delete(s.thing_locations).where(s.thing_locations.c.thing_id == ident))
                    for i, m in enumerate(member):
                        lid = await self._create(conn, ENTITIES["Location"], m, ctx, where=f"Locations[{i}].")
                        await conn.execute(s.thing_locations.insert().values(thing_id=ident, location_id=lid))
                    await self._history(conn, ident, ctx)
                else:
                    raise bad(name, "only to-one links and a Thing's Locations can be changed by update")
            if entity.name == "Observation" and "result_number" in values:
                await self._check_multi_result(conn, ident, values)
            if values:
                await conn.execute(entity.table.update().where(entity.table.c.id == ident).values(**values))
            ctx.changes.append((entity.name, ident, "updated"))
            if entity.name == "Observation":
                await _refresh_latest(conn, ident, ctx.now)

        await self.store.write(op)
        await self._notify(ctx.changes, changed_props=sorted(parsed.given))

    async def _check_multi_result(self, conn: AsyncConnection, ident: int, values: dict[str, Any]) -> None:
        sid = (await conn.execute(select(observations.c.datastream_id).where(observations.c.id == ident))).scalar()
        types = (await conn.execute(select(s.multi_datastreams.c.multi_observation_data_types)
                                    .where(s.multi_datastreams.c.id == sid))).scalar()
        if types is not None and (not isinstance(values.get("result_json"), list)
                                  or len(values["result_json"]) != len(types)):
            raise bad("result", f"a MultiDatastream observation needs an array of {len(types)} values")

    # -- delete -------------------------------------------------------------------------------------------------
    async def delete(self, entity: Entity, ident: int) -> None:
        ctx = _Ctx(self.clock.now(), [])

        async def op(conn: AsyncConnection) -> None:
            ctx.changes.clear()
            await self._must_exist(conn, entity, ident, "")
            stream = None
            if entity.name == "Observation":
                stream = (await conn.execute(select(observations.c.datastream_id)
                                             .where(observations.c.id == ident))).scalar()
            await self._cascade(conn, entity, ident)
            await conn.execute(delete(entity.table).where(entity.table.c.id == ident))
            ctx.changes.append((entity.name, ident, "deleted"))
            if stream is not None:
                was_latest = (await conn.execute(select(latest_observations.c.observation_id).where(
                    latest_observations.c.datastream_id == stream))).scalar() == ident
                if was_latest:
                    await _recompute_latest(conn, ctx.now, [int(stream)])

        await self.store.write(op)
        await self._notify(ctx.changes)

    async def _cascade(self, conn: AsyncConnection, entity: Entity, ident: int) -> None:
        """What the standard deletes with an entity, beyond the foreign keys' ON DELETE CASCADE."""
        ds, mds = s.datastreams, s.multi_datastreams
        streams: list[int] = []
        if entity.name == "Thing":
            streams = await _ids(conn, select(ds.c.id).where(ds.c.thing_id == ident)) + \
                await _ids(conn, select(mds.c.id).where(mds.c.thing_id == ident))
        elif entity.name in ("Datastream", "MultiDatastream"):
            streams = [ident]
        elif entity.name == "Sensor":
            streams = await _ids(conn, select(ds.c.id).where(ds.c.sensor_id == ident)) + \
                await _ids(conn, select(mds.c.id).where(mds.c.sensor_id == ident))
        elif entity.name == "ObservedProperty":
            link = s.multi_datastream_observed_properties
            multi = await _ids(conn, select(link.c.multi_datastream_id).where(link.c.observed_property_id == ident))
            streams = await _ids(conn, select(ds.c.id).where(ds.c.observed_property_id == ident)) + multi
            if multi:
                await conn.execute(delete(mds).where(mds.c.id.in_(multi)))
        elif entity.name == "FeatureOfInterest":
            affected = await _ids(conn, select(observations.c.datastream_id).distinct()
                                  .where(observations.c.foi_id == ident))
            await conn.execute(delete(observations).where(observations.c.foi_id == ident))
            await conn.execute(delete(latest_observations).where(latest_observations.c.datastream_id.in_(affected)))
            await _recompute_latest(conn, self.clock.now(), affected)
        elif entity.name == "Location":
            hll, hl = s.historical_location_locations, s.historical_locations
            mine = await _ids(conn, select(hll.c.historical_location_id).where(hll.c.location_id == ident))
            shared = await _ids(conn, select(hll.c.historical_location_id).where(
                hll.c.historical_location_id.in_(mine), hll.c.location_id != ident))
            only = sorted(set(mine) - set(shared))
            if only:
                await conn.execute(delete(hl).where(hl.c.id.in_(only)))
            foi = s.features_of_interest
            await conn.execute(foi.update().where(foi.c.generated_from_location_id == ident)
                               .values(generated_from_location_id=None))
        if streams:
            await conn.execute(delete(observations).where(observations.c.datastream_id.in_(streams)))
            await conn.execute(delete(latest_observations).where(latest_observations.c.datastream_id.in_(streams)))

    # -- notifications ------------------------------------------------------------------------------------------
    async def _notify(self, changes: list[tuple[str, int, str]], changed_props: list[str] | None = None) -> None:
        """Tell live subscribers (MQTT, SSE) what changed, with the entity as it is now."""
        if not changes:
            return
        from citydata.sensorthings.read import load_rows

        events: list[Event] = []
        by_entity: dict[str, list[int]] = {}
        for name, ident, op in changes:
            if op != "deleted":
                by_entity.setdefault(name, []).append(ident)
        rows = {name: {int(r["id"]): r for r in await load_rows(self.store, ENTITIES[name], ids)}
                for name, ids in by_entity.items()}
        for name, ident, op in changes:
            entity = ENTITIES[name]
            row = rows.get(name, {}).get(ident)
            body = entity_json(entity, row, self.base_url) if row is not None else {"@iot.id": ident}
            links = {n.name: row[n.column] for n in entity.navs if n.kind == "fk_here" and row is not None}
            events.append(make_event("sta.changed", f"{name}:{ident}", self.clock.now(), {
                "entity": name, "id": ident, "op": op, "json": body, "links": links,
                "changed": changed_props or []}))
        await self.bus.broadcast(events)


async def _ids(conn: AsyncConnection, stmt: Any) -> list[int]:
    return [int(r[0]) for r in (await conn.execute(stmt)).all()]


async def _refresh_latest(conn: AsyncConnection, observation_id: int, now: datetime) -> None:
    sid = (await conn.execute(select(observations.c.datastream_id).where(observations.c.id == observation_id)))\
        .scalar()
    if sid is not None:
        await conn.execute(delete(latest_observations).where(latest_observations.c.datastream_id == sid))
        await _recompute_latest(conn, now, [int(sid)])


async def _recompute_latest(conn: AsyncConnection, now: datetime, streams: list[int]) -> None:
    """Rebuild the latest values of ``streams`` (after deletes or edits)."""
    o, lo = observations, latest_observations
    for sid in streams:
        row = (await conn.execute(select(o.c.id, o.c.phenomenon_time, o.c.result_number, o.c.result_json)
                                  .where(o.c.datastream_id == sid).order_by(o.c.phenomenon_time.desc(), o.c.id.desc())
                                  .limit(1))).first()
        await conn.execute(delete(lo).where(lo.c.datastream_id == sid))
        if row is not None:
            await conn.execute(lo.insert().values(datastream_id=sid, observation_id=row[0], phenomenon_time=row[1],
                                                  result_number=row[2], result_json=row[3], updated_at=now))
