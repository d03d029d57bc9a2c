"""The one write path for Observations: HTTP POST, data arrays, MQTT publishes, the simulator and the CSV import
all call ``ObservationIngest.create``. It validates, stores in one transaction (idempotent on datastream and
phenomenon time), keeps each stream's latest value and time ranges, then publishes ``observation.received`` on
the bus and notifies MQTT subscribers (``sta.changed``)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import bindparam, case, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.errors import CityDataError, NotFound, ValidationFailed
from citydata.events import Event, make_event
from citydata.sensorthings import schema as s
from citydata.sensorthings.model import FEATURE_OF_INTEREST, OBSERVATION
from citydata.sensorthings.serialize import entity_json
from citydata.sensorthings.validate import link_id_of, observation_time_defaults, parse_entity
from citydata.store.schema import latest_observations, observations

if TYPE_CHECKING:
    from citydata.bus import Bus
    from citydata.clock import Clock
    from citydata.ops.metrics import Metrics
    from citydata.store import Store

log = logging.getLogger(__name__)
MAX_FLUSH = 2000   # items per ingest transaction


@dataclass
class Created:
    id: int
    created: bool          # False: an identical observation (stream, phenomenonTime) was already stored
    stream_id: int
    multi: bool
    foi_id: int
    row: dict[str, Any] | None = None   # the stored columns (new observations), to answer without a re-read


@dataclass
class _Item:
    index: int
    columns: dict[str, Any]
    stream_id: int
    multi_hint: bool | None          # True: given as MultiDatastream, False: as Datastream, None: from the path
    foi_id: int | None
    foi_new: dict[str, Any] | None   # a nested FeatureOfInterest to create


class ObservationIngest:
    def __init__(self, store: Store, bus: Bus, clock: Clock, metrics: Metrics, base_url: str) -> None:
        self.store, self.bus, self.clock, self.metrics = store, bus, clock, metrics
        self.base_url = base_url
        self._pending: list[tuple[list[_Item], asyncio.Future[list[Created | CityDataError]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def create(self, bodies: Sequence[Any], *, stream_id: int | None = None, multi: bool | None = None,
                     foi_id: int | None = None, channel: str = "http") -> list[Created | CityDataError]:
        """Create Observations. ``stream_id``/``multi`` and ``foi_id`` come from the path or topic
        (``Datastreams(1)/Observations``). Returns, per body, what was stored or why it was refused."""
        now = self.clock.now()
        results: list[Created | CityDataError] = [ValidationFailed("not processed")] * len(bodies)
        items: list[_Item] = []
        for index, body in enumerate(bodies):
            try:
                items.append(self._parse(index, body, stream_id, multi, foi_id, now))
            except CityDataError as err:
                results[index] = err
        if items:
            stored = await self._submit(items)
            events: list[Event] = []
            changed: list[Event] = []
            for item, outcome in zip(items, stored, strict=True):
                results[item.index] = outcome
                if isinstance(outcome, Created) and outcome.created:
                    events.append(self._received(item, outcome))
                    changed.append(self._changed(item, outcome))
            if events:
                await self.bus.publish_many(events)
                await self.bus.broadcast(changed)
        for outcome in results:
            if isinstance(outcome, Created):
                self.metrics.ingested.labels("observation", channel).inc()
            else:
                self.metrics.rejected.labels("observation", outcome.code).inc()
        return results

    # -- micro-batching: concurrent callers share one transaction ----------------------------------------------
    async def _submit(self, items: list[_Item]) -> list[Created | CityDataError]:
        """Queue ``items`` for the next flush and wait until they are committed. While one flush is in the
        writer, new calls gather; the next flush takes them all (up to ``MAX_FLUSH`` items), so the number of
        statements per commit stays constant however many requests arrive."""
        fut: asyncio.Future[list[Created | CityDataError]] = asyncio.get_running_loop().create_future()
        self._pending.append((items, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="sta-ingest-flush")
        return await fut

    async def _flush(self) -> None:
        while self._pending:
            batch: list[tuple[list[_Item], asyncio.Future[list[Created | CityDataError]]]] = []
            count = 0
            while self._pending and (not batch or count + len(self._pending[0][0]) <= MAX_FLUSH):
                batch.append(self._pending.pop(0))
                count += len(batch[-1][0])
            items = [item for call, _ in batch for item in call]
            try:
                ids = await self.store.allocate_ids(observations, len(items))
                now = self.clock.now()
                stored = await self.store.write(functools.partial(self._flush_op, items, ids, now), rows=len(items))
            except Exception as err:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            start = 0
            for part, fut in batch:
                if not fut.done():
                    fut.set_result(stored[start:start + len(part)])
                start += len(part)

    async def _flush_op(self, items: list[_Item], ids: list[int], now: datetime,
                        conn: AsyncConnection) -> list[Created | CityDataError]:
        return await self._store(conn, items, ids, now)

    # -- parsing -------------------------------------------------------------------------------------------
    def _parse(self, index: int, body: Any, stream_id: int | None, multi: bool | None, foi_id: int | None,
               now: datetime) -> _Item:
        parsed = parse_entity(OBSERVATION, body)
        if parsed.link_id is not None:
            raise ValidationFailed("an Observation cannot be created by reference", code="invalid_entity",
                                   field="@iot.id")
        observation_time_defaults(parsed.columns, now)
        sid, hint = stream_id, multi
        for name, is_multi in (("Datastream", False), ("MultiDatastream", True)):
            if name in parsed.navs:
                ident = link_id_of(parsed.navs[name], name)
                if ident is None:
                    raise ValidationFailed(f"{name}: link an existing {name} by @iot.id",
                                           code="invalid_entity", field=name)
                if sid is not None and (ident != sid or hint not in (None, is_multi)):
                    raise ValidationFailed(f"{name}: conflicts with the stream in the path", code="invalid_entity",
                                           field=name)
                sid, hint = ident, is_multi
        if sid is None:
            raise ValidationFailed("Datastream: is required (link it by @iot.id)", code="invalid_entity",
                                   field="Datastream")
        fid, foi_new = foi_id, None
        if "FeatureOfInterest" in parsed.navs:
            raw = parsed.navs["FeatureOfInterest"]
            ident = link_id_of(raw, "FeatureOfInterest")
            if ident is not None:
                fid = ident
            else:
                foi = parse_entity(FEATURE_OF_INTEREST, raw, where="FeatureOfInterest.")
                if foi.navs:
                    raise ValidationFailed("FeatureOfInterest: nested links are not allowed here",
                                           code="invalid_entity", field="FeatureOfInterest")
                foi_new = foi.columns
        return _Item(index, parsed.columns, sid, hint, fid, foi_new)

    # -- the transaction -------------------------------------------------------------------------------------
    async def _store(self, conn: AsyncConnection, items: list[_Item], ids: list[int],
                     now: datetime) -> list[Created | CityDataError]:
        stream_ids = sorted({i.stream_id for i in items})
        streams: dict[int, tuple[bool, int, int]] = {}   # id -> (multi, thing_id, components)
        for ds_id, thing in (await conn.execute(select(s.datastreams.c.id, s.datastreams.c.thing_id)
                                                .where(s.datastreams.c.id.in_(stream_ids)))).all():
            streams[ds_id] = (False, thing, 1)
        md = s.multi_datastreams
        for md_id, thing, types in (await conn.execute(select(md.c.id, md.c.thing_id, md.c.multi_observation_data_types)
                                                       .where(md.c.id.in_(stream_ids)))).all():
            streams[md_id] = (True, thing, len(types or []))
        results: list[Created | CityDataError] = []
        rows: list[dict[str, Any]] = []
        foi_cache: dict[int, int | None] = {}
        explicit_fois = {i.foi_id for i in items if i.foi_id is not None}
        existing_fois = {r[0] for r in (await conn.execute(
            select(s.features_of_interest.c.id).where(s.features_of_interest.c.id.in_(explicit_fois)))).all()} \
            if explicit_fois else set()
        pending: list[tuple[_Item, int, bool, int]] = []
        for item, oid in zip(items, ids, strict=True):
            info = streams.get(item.stream_id)
            if info is None or (item.multi_hint is not None and info[0] != item.multi_hint):
                label = "MultiDatastream" if item.multi_hint else "Datastream"
                results.append(NotFound(f"{label}({item.stream_id}) does not exist (deleted?)",
                                        code="stream_not_found"))
                continue
            is_multi, thing_id, comps = info
            result = item.columns.get("result_json") if item.columns.get("result_number") is None else None
            if is_multi and (not isinstance(result, list) or len(result) != comps):
                results.append(ValidationFailed(f"result: a MultiDatastream observation needs an array of "
                                                f"{comps} values", code="invalid_entity", field="result"))
                continue
            try:
                foi = await self._foi(conn, item, thing_id, foi_cache, existing_fois)
            except CityDataError as err:
                results.append(err)
                continue
            row = {**item.columns, "id": oid, "datastream_id": item.stream_id, "foi_id": foi}
            for col in ("phenomenon_time_end", "result_time", "result_number", "result_json", "result_quality",
                        "valid_time_start", "valid_time_end", "parameters"):
                row.setdefault(col, None)
            row["dedup_key"] = content_key(row)
            rows.append(row)
            pending.append((item, oid, is_multi, foi))
            results.append(Created(oid, True, item.stream_id, is_multi, foi, row))
        if rows:
            assert self.store.writer is not None
            bulk = self.store.writer.bulk
            columns = tuple(rows[0].keys())
            # exact: duplicates are expected (redelivery), so no optimistic COPY that would abort the transaction
            new = (await bulk.insert_parts(conn, observations, columns, [bulk.prepare(observations, columns, rows)],
                                           "ignore", exact=True))[0]
            if new < len(rows):
                await self._mark_duplicates(conn, rows, results)
            created = {x.id for x in results if isinstance(x, Created) and x.created}
            fresh = [r for r in rows if r["id"] in created]
            if fresh:
                await self._maintain_streams(conn, fresh, {p[1]: p[2] for p in pending}, now)
        return results

    async def _foi(self, conn: AsyncConnection, item: _Item, thing_id: int, cache: dict[int, int | None],
                   existing: set[int]) -> int:
        t = s.features_of_interest
        if item.foi_new is not None:
            return int((await conn.execute(t.insert().values(**item.foi_new).returning(t.c.id))).scalar_one())
        if item.foi_id is not None:
            if item.foi_id not in existing:
                raise NotFound(f"FeatureOfInterest({item.foi_id}) does not exist", code="foi_not_found")
            return item.foi_id
        if thing_id not in cache:
            cache[thing_id] = await generated_foi(conn, thing_id)
        foi = cache[thing_id]
        if foi is None:
            raise ValidationFailed("FeatureOfInterest: is required, because the Datastream's Thing has no "
                                   "Location to generate it from", code="invalid_entity", field="FeatureOfInterest")
        return foi

    async def _mark_duplicates(self, conn: AsyncConnection, rows: list[dict[str, Any]],
                               results: list[Created | CityDataError]) -> None:
        ids = [r["id"] for r in rows]
        stored = {r[0] for r in (await conn.execute(select(observations.c.id).where(observations.c.id.in_(ids))))}
        for row in rows:
            if row["id"] in stored:
                continue
            existing = (await conn.execute(select(observations.c.id).where(
                observations.c.datastream_id == row["datastream_id"],
                observations.c.phenomenon_time == row["phenomenon_time"],
                observations.c.dedup_key == row["dedup_key"]))).scalar()
            for i, res in enumerate(results):
                if isinstance(res, Created) and res.id == row["id"]:
                    results[i] = Created(int(existing) if existing is not None else res.id, False, res.stream_id,
                                         res.multi, res.foi_id)

    async def _maintain_streams(self, conn: AsyncConnection, rows: list[dict[str, Any]], multi: dict[int, bool],
                                now: datetime) -> None:
        """Each stream's latest value, time ranges and observedArea, a few statements per flush whatever the
        number of streams in it (one upsert, one executemany per stream table, the area reads)."""
        by_stream: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            by_stream.setdefault(row["datastream_id"], []).append(row)
        latest: list[dict[str, Any]] = []
        ranges: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        fois: dict[bool, dict[int, set[int]]] = {False: {}, True: {}}
        for sid, group in by_stream.items():
            newest = max(group, key=lambda r: (r["phenomenon_time"], r["id"]))
            latest.append({"datastream_id": sid, "observation_id": newest["id"],
                           "phenomenon_time": newest["phenomenon_time"], "result_number": newest["result_number"],
                           "result_json": newest["result_json"], "updated_at": now})
            rtimes = [r["result_time"] for r in group if r["result_time"] is not None]
            is_multi = multi[group[0]["id"]]
            ranges[is_multi].append({
                "b_id": sid, "b_start": min(r["phenomenon_time"] for r in group),
                "b_end": max(r["phenomenon_time_end"] or r["phenomenon_time"] for r in group),
                "b_rs": min(rtimes) if rtimes else None, "b_re": max(rtimes) if rtimes else None})
            fois[is_multi][sid] = {r["foi_id"] for r in group}
        insert = sqlite_dialect.insert if conn.dialect.name == "sqlite" else pg_dialect.insert
        stmt = insert(latest_observations).values(latest)
        stmt = stmt.on_conflict_do_update(
            index_elements=[latest_observations.c.datastream_id],
            set_={"observation_id": stmt.excluded.observation_id, "phenomenon_time": stmt.excluded.phenomenon_time,
                  "result_number": stmt.excluded.result_number, "result_json": stmt.excluded.result_json,
                  "updated_at": stmt.excluded.updated_at},
            where=latest_observations.c.phenomenon_time <= stmt.excluded.phenomenon_time)
        await conn.execute(stmt)
        for is_multi, params in ranges.items():
            if params:
                table = s.multi_datastreams if is_multi else s.datastreams
                await conn.execute(_widen_ranges(table), params)
                await _grow_observed_areas(conn, table, fois[is_multi])

    # -- events ------------------------------------------------------------------------------------------------
    def _received(self, item: _Item, created: Created) -> Event:
        cols = item.columns
        from citydata.sensorthings.serialize import prop_value

        return make_event("observation.received", str(created.stream_id), cols["phenomenon_time"], {
            "datastream_id": created.stream_id, "observation_id": created.id,
            "phenomenon_time": cols["phenomenon_time"].isoformat(),
            "result": prop_value(OBSERVATION.prop("result"), cols)})  # type: ignore[arg-type]

    def _changed(self, item: _Item, created: Created) -> Event:
        row = {**item.columns, "id": created.id}
        body = entity_json(OBSERVATION, row, self.base_url)
        links = {"MultiDatastream" if created.multi else "Datastream": created.stream_id,
                 "FeatureOfInterest": created.foi_id}
        return make_event("sta.changed", f"Observation:{created.id}", self.clock.now(), {
            "entity": "Observation", "id": created.id, "op": "created", "json": body, "links": links})


def _widen_ranges(table: Any) -> Any:
    """``UPDATE`` (for executemany) that widens a stream's phenomenon and result time ranges to cover
    ``b_start``..``b_end`` and ``b_rs``..``b_re`` (NULL: no result times). In SQL, so concurrent writers (nodes
    sharing PostgreSQL) never narrow what another widened."""
    c = table.c
    ts = c.phenomenon_time_start.type
    start, end, rs, re_ = (bindparam(n, type_=ts) for n in ("b_start", "b_end", "b_rs", "b_re"))

    def lower(col: Any, v: Any) -> Any:
        return case((col.is_(None), v), (col > v, v), else_=col)   # v NULL: col stays

    def upper(col: Any, v: Any) -> Any:
        return case((col.is_(None), v), (col < v, v), else_=col)

    return table.update().where(c.id == bindparam("b_id")).values(
        phenomenon_time_start=lower(c.phenomenon_time_start, start),
        phenomenon_time_end=upper(c.phenomenon_time_end, end),
        result_time_start=lower(c.result_time_start, rs), result_time_end=upper(c.result_time_end, re_))


async def _grow_observed_areas(conn: AsyncConnection, table: Any, fois: dict[int, set[int]]) -> None:
    """Grow each stream's observedArea to cover its new observations' FeaturesOfInterest: two reads for all
    the streams, and an update only where an area changed (a new place)."""
    t = s.features_of_interest
    wanted = set().union(*fois.values())
    boxes = {r[0]: tuple(r[1:]) for r in (await conn.execute(
        select(t.c.id, t.c.min_lon, t.c.min_lat, t.c.max_lon, t.c.max_lat).where(t.c.id.in_(wanted)))).all()
        if r[1] is not None}
    sids = [sid for sid, ids in fois.items() if any(f in boxes for f in ids)]
    if not sids:
        return
    current: dict[int, Any] = {r[0]: r[1] for r in (await conn.execute(
        select(table.c.id, table.c.observed_area).where(table.c.id.in_(sids)))).all()}
    updates = []
    for sid in sids:
        area = grown_area([boxes[f] for f in fois[sid] if f in boxes], current.get(sid))
        if area is not None:
            updates.append({"b_id": sid, "b_area": area})
    if updates:
        await conn.execute(table.update().where(table.c.id == bindparam("b_id")).values(
            observed_area=bindparam("b_area", type_=table.c.observed_area.type)), updates)


def grown_area(boxes: list[tuple[float, ...]], current: dict[str, Any] | None) -> dict[str, Any] | None:
    """The observedArea grown to cover these bounding boxes (a Point for one position, else a Polygon), or None
    when ``current`` already is that."""
    if current:
        from shapely.geometry import shape

        boxes = [*boxes, tuple(shape(current).bounds)]
    lo_x, lo_y = min(b[0] for b in boxes), min(b[1] for b in boxes)
    hi_x, hi_y = max(b[2] for b in boxes), max(b[3] for b in boxes)
    if lo_x == hi_x and lo_y == hi_y:
        area: dict[str, Any] = {"type": "Point", "coordinates": [lo_x, lo_y]}
    else:
        area = {"type": "Polygon", "coordinates": [[[lo_x, lo_y], [hi_x, lo_y], [hi_x, hi_y], [lo_x, hi_y],
                                                    [lo_x, lo_y]]]}
    return None if area == current else area


_CONTENT = ("phenomenon_time_end", "result_time", "result_number", "result_json", "result_quality", "valid_time_start",
            "valid_time_end", "parameters", "foi_id")


def content_key(row: dict[str, Any]) -> int:
    """A signed 64-bit hash of what an observation says besides its stream and phenomenon time."""
    payload = orjson.dumps([row.get(c) for c in _CONTENT], option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z,
                           default=str)
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big", signed=True)


async def generated_foi(conn: AsyncConnection, thing_id: int) -> int | None:
    """The FeatureOfInterest generated from the Thing's current Location (created on first use)."""
    loc = (await conn.execute(select(s.locations).join(
        s.thing_locations, s.thing_locations.c.location_id == s.locations.c.id)
        .where(s.thing_locations.c.thing_id == thing_id).order_by(s.locations.c.id.desc()).limit(1))).mappings().first()
    if loc is None:
        return None
    t = s.features_of_interest
    found = (await conn.execute(select(t.c.id).where(t.c.generated_from_location_id == loc["id"]))).scalar()
    if found is not None:
        return int(found)
    return int((await conn.execute(t.insert().values(
        name=loc["name"], description=loc["description"], encoding_type=loc["encoding_type"],
        feature=loc["location"], min_lon=loc["min_lon"], min_lat=loc["min_lat"], max_lon=loc["max_lon"],
        max_lat=loc["max_lat"], properties=None, generated_from_location_id=loc["id"]).returning(t.c.id))).scalar_one())
