"""The one Observation write path, on SQLite and PostgreSQL: idempotence, rejections, latest values, events."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from citydata.errors import CityDataError
from citydata.events import Event
from citydata.sensorthings.ingest import Created
from citydata.sensorthings.model import DATASTREAM, MULTI_DATASTREAM, OBSERVATION, OM_COMPLEX, OM_MEASUREMENT, THING
from citydata.store.schema import latest_observations, observations

UNIT = {"name": "metre", "symbol": "m", "definition": "http://qudt.org/vocab/unit/M"}


def thing(with_location: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "level Bang Yai", "description": "canal",
        "Datastreams": [{"name": "level", "description": "d", "unitOfMeasurement": UNIT,
                         "observationType": OM_MEASUREMENT,
                         "Sensor": {"name": "s", "description": "s", "encodingType": "text/plain", "metadata": "m"},
                         "ObservedProperty": {"name": "water_level", "definition": "x", "description": "d"}}]}
    if with_location:
        body["Locations"] = [{"name": "Bang Yai", "description": "canal", "encodingType": "application/geo+json",
                              "location": {"type": "Point", "coordinates": [98.3905, 7.889]}}]
    return body


async def _stream(p: Any, with_location: bool = True) -> int:
    tid = await p.sta.writer.create(THING, thing(with_location))
    rows = await p.store.fetch_all(select(DATASTREAM.table.c.id).where(DATASTREAM.table.c.thing_id == tid))
    return int(rows[0]["id"])


async def test_same_stream_and_time_is_stored_once(backend_platform: Any) -> None:
    p = backend_platform
    ds = await _stream(p)
    body = {"phenomenonTime": "2026-11-21T01:00:00Z", "result": 1.25}
    first = (await p.sta.ingest.create([body], stream_id=ds))[0]
    again = (await p.sta.ingest.create([body, body], stream_id=ds))
    assert isinstance(first, Created) and first.created
    assert all(isinstance(r, Created) and not r.created and r.id == first.id for r in again)
    count = await p.store.scalar(select(func.count()).select_from(observations)
                                 .where(observations.c.datastream_id == ds))
    assert count == 1


async def test_batch_keeps_good_items_and_names_bad_ones(backend_platform: Any) -> None:
    p = backend_platform
    ds = await _stream(p)
    results = await p.sta.ingest.create([
        {"phenomenonTime": "2026-11-21T01:00:00Z", "result": 1},
        {"phenomenonTime": "yesterday", "result": 2},
        {"phenomenonTime": "2026-11-21T02:00:00Z"},
        {"phenomenonTime": "2026-11-21T03:00:00Z", "result": 3, "colour": "red"},
        {"phenomenonTime": "2026-11-21T04:00:00Z", "result": 4},
    ], stream_id=ds)
    assert [type(r).__name__ for r in results] == ["Created", "ValidationFailed", "ValidationFailed",
                                                    "ValidationFailed", "Created"]
    assert "phenomenonTime" in str(results[1]) and "result" in str(results[2]) and "colour" in str(results[3])


async def test_deleted_stream_gets_a_clear_rejection(backend_platform: Any) -> None:
    p = backend_platform
    ds = await _stream(p)
    await p.sta.writer.delete(DATASTREAM, ds)
    result = (await p.sta.ingest.create([{"result": 1}], stream_id=ds))[0]
    assert isinstance(result, CityDataError) and result.code == "stream_not_found"


async def test_foi_is_required_when_the_thing_has_no_location(backend_platform: Any) -> None:
    p = backend_platform
    ds = await _stream(p, with_location=False)
    result = (await p.sta.ingest.create([{"result": 1}], stream_id=ds))[0]
    assert isinstance(result, CityDataError) and "FeatureOfInterest" in result.message
    ok = (await p.sta.ingest.create([{"result": 1, "FeatureOfInterest": {
        "name": "f", "description": "f", "encodingType": "application/geo+json",
        "feature": {"type": "Point", "coordinates": [98.3, 7.9]}}}], stream_id=ds))[0]
    assert isinstance(ok, Created)


async def test_latest_value_follows_inserts_out_of_order_and_deletes(backend_platform: Any) -> None:
    p = backend_platform
    ds = await _stream(p)
    made = await p.sta.ingest.create([{"phenomenonTime": "2026-11-21T03:00:00Z", "result": 3},
                                      {"phenomenonTime": "2026-11-21T01:00:00Z", "result": 1}], stream_id=ds)
    await p.sta.ingest.create([{"phenomenonTime": "2026-11-21T02:00:00Z", "result": 2}], stream_id=ds)

    async def latest() -> Any:
        return await p.store.fetch_one(select(latest_observations).where(latest_observations.c.datastream_id == ds))

    assert (await latest())["result_number"] == 3          # a late, older observation does not replace it
    newest = made[0]
    assert isinstance(newest, Created)
    await p.sta.writer.delete(OBSERVATION, newest.id)
    assert (await latest())["result_number"] == 2
    await p.sta.writer.update(OBSERVATION, (await latest())["observation_id"], {"result": 20})
    assert (await latest())["result_number"] == 20


async def test_multidatastream_results_must_match_its_components(backend_platform: Any) -> None:
    p = backend_platform
    tid = await p.sta.writer.create(THING, {"name": "probe", "description": "d", "Locations": [
        {"name": "Patong", "description": "beach", "encodingType": "application/geo+json",
         "location": {"type": "Point", "coordinates": [98.29, 7.89]}}]})
    mid = await p.sta.writer.create(MULTI_DATASTREAM, {
        "name": "water quality", "description": "DO and temperature", "observationType": OM_COMPLEX,
        "unitOfMeasurements": [{"name": "mg/L", "symbol": "mg/L", "definition": "x"}, UNIT],
        "multiObservationDataTypes": [OM_MEASUREMENT, OM_MEASUREMENT], "Thing": {"@iot.id": tid},
        "Sensor": {"name": "sonde", "description": "s", "encodingType": "text/plain", "metadata": "m"},
        "ObservedProperties": [{"name": "dissolved_oxygen", "definition": "x", "description": "d"},
                               {"name": "temperature", "definition": "y", "description": "d"}]})
    good, bad = await p.sta.ingest.create([{"result": [6.1, 29.5]}, {"result": 6.1}], stream_id=mid, multi=True)
    assert isinstance(good, Created) and good.multi
    assert isinstance(bad, CityDataError) and "array of 2" in bad.message
    wrong_kind = (await p.sta.ingest.create([{"result": 1}], stream_id=mid, multi=False))[0]
    assert isinstance(wrong_kind, CityDataError) and wrong_kind.code == "stream_not_found"


async def test_ingest_publishes_durable_and_live_events(backend_platform: Any) -> None:
    p = backend_platform
    ds = await _stream(p)
    live: list[Event] = []
    durable: list[Event] = []

    async def on_live(d: Any) -> None:
        live.append(d.event)

    async def on_durable(d: Any) -> None:
        durable.append(d.event)

    sub = await p.bus.subscribe("sta.changed", on_live)
    consumer = await p.bus.consume("test-obs", "observation.received", on_durable, start="new")
    await p.sta.ingest.create([{"phenomenonTime": "2026-11-21T05:00:00Z", "result": 7.5}], stream_id=ds)
    for _ in range(100):
        if durable and any(e.data["entity"] == "Observation" for e in live):
            break
        await asyncio.sleep(0.02)
    await sub.close()
    await consumer.close()
    assert durable[0].data["result"] == 7.5 and durable[0].data["datastream_id"] == ds
    obs = next(e for e in live if e.data["entity"] == "Observation")
    assert obs.data["links"]["Datastream"] == ds and obs.data["json"]["result"] == 7.5


async def test_one_flush_over_many_streams_keeps_each_streams_ranges_area_and_latest(backend_platform: Any) -> None:
    """The stream upkeep is a few statements per flush for all its streams: each stream still gets its own
    latest value, phenomenon and result time ranges (widened, never narrowed) and observedArea."""
    p = backend_platform
    streams = [await _stream(p) for _ in range(5)]
    far = {"name": "Ao Po pier", "description": "a second place", "encodingType": "application/geo+json",
           "feature": {"type": "Point", "coordinates": [98.52, 8.07]}}
    bodies = []
    for n, ds in enumerate(streams):
        for h in (1, 3):
            bodies.append({"Datastream": {"@iot.id": ds}, "phenomenonTime": f"2026-11-21T0{h}:00:00Z",
                           "result": n * 10 + h,
                           **({"resultTime": f"2026-11-21T0{h}:00:05Z"} if n % 2 else {})})
    bodies.append({"Datastream": {"@iot.id": streams[0]}, "phenomenonTime": "2026-11-21T02:00:00Z", "result": 2,
                   "FeatureOfInterest": far})
    made = await p.sta.ingest.create(bodies)
    assert all(isinstance(m, Created) and m.created for m in made)
    # an older observation later on: the ranges stay as wide, the latest stays the newest
    await p.sta.ingest.create([{"phenomenonTime": "2026-11-20T23:00:00Z", "result": -1}], stream_id=streams[1])
    t = DATASTREAM.table
    rows = {r["id"]: r for r in await p.store.fetch_all(select(t).where(t.c.id.in_(streams)))}
    latest = {r["datastream_id"]: r["result_number"] for r in await p.store.fetch_all(
        select(latest_observations).where(latest_observations.c.datastream_id.in_(streams)))}
    for n, ds in enumerate(streams):
        row = rows[ds]
        first = "2026-11-20T23" if n == 1 else "2026-11-21T01"
        assert row["phenomenon_time_start"].isoformat().startswith(first), (n, row["phenomenon_time_start"])
        assert row["phenomenon_time_end"].isoformat().startswith("2026-11-21T03"), (n, row["phenomenon_time_end"])
        if n % 2:
            assert row["result_time_start"].isoformat().startswith("2026-11-21T01:00:05")
            assert row["result_time_end"].isoformat().startswith("2026-11-21T03:00:05")
        else:
            assert row["result_time_start"] is None and row["result_time_end"] is None
        assert latest[ds] == n * 10 + 3
        expected = "Polygon" if n == 0 else "Point"       # stream 0 also observed the far pier
        assert row["observed_area"]["type"] == expected, (n, row["observed_area"])
    assert rows[streams[0]]["observed_area"]["coordinates"][0][2] == [98.52, 8.07]
    assert rows[streams[1]]["observed_area"]["coordinates"] == [98.3905, 7.889]
