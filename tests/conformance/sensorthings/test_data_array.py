"""Conformance class: data array extension (OGC 18-088, /conf/data-array).

GET ...Observations?$resultFormat=dataArray (/req/data-array/data-array) and POST /v1.1/CreateObservations with the
dataArray format (/req/data-array/data-array (CreateObservations)).
"""

from __future__ import annotations

from typing import Any

from tests.conformance.sensorthings.conftest import PREFIX, Sta, path

COMPONENTS = ["phenomenonTime", "result", "FeatureOfInterest/id"]


def create_observations(sta: Sta, body: list[dict[str, Any]]) -> list[Any]:
    r = sta.post("CreateObservations", body)
    assert r.status_code == 201, (r.status_code, r.text[:800])
    links = r.json()
    assert isinstance(links, list)
    return links


def test_conformance_class_is_declared(sta: Sta) -> None:
    """/req/data-array/data-array: the service root lists the data-array class in serverSettings.conformance."""
    assert PREFIX + "data-array/data-array" in sta.get_ok("")["serverSettings"]["conformance"]


def test_create_observations_returns_a_link_per_row(sta: Sta) -> None:
    """/req/data-array/data-array (CreateObservations): POST CreateObservations creates one Observation per dataArray
    row with the listed components and answers 201 with the selfLink of each, in row order."""
    ds = sta.datastream()
    foi = sta.feature()
    rows = [["2024-07-01T00:00:00Z", 20.5, foi["@iot.id"]],
            ["2024-07-01T00:10:00Z", 21.0, foi["@iot.id"]],
            ["2024-07-01T00:20:00Z", 21.5, foi["@iot.id"]]]
    links = create_observations(sta, [{"Datastream": {"@iot.id": ds["@iot.id"]}, "components": COMPONENTS,
                                       "dataArray@iot.count": 3, "dataArray": rows}])
    assert len(links) == 3
    for link, row in zip(links, rows, strict=True):
        assert isinstance(link, str) and "/Observations(" in link, link
        obs = sta.get_ok(link, {"$expand": "FeatureOfInterest,Datastream"})
        assert obs["result"] == row[1]
        assert obs["phenomenonTime"].startswith(row[0][:19])
        assert obs["FeatureOfInterest"]["@iot.id"] == foi["@iot.id"]
        assert obs["Datastream"]["@iot.id"] == ds["@iot.id"]


def test_create_observations_for_several_datastreams_and_defaults(sta: Sta) -> None:
    """/req/data-array/data-array (CreateObservations): one request carries blocks for several Datastreams; with no
    FeatureOfInterest component the service derives it from the Thing's Location; resultTime may be a
    component."""
    a, b = sta.located_datastream(), sta.located_datastream()
    links = create_observations(sta, [
        {"Datastream": {"@iot.id": a["@iot.id"]}, "components": ["phenomenonTime", "resultTime", "result"],
         "dataArray": [["2024-07-02T00:00:00Z", "2024-07-02T00:00:30Z", 1],
                       ["2024-07-02T01:00:00Z", "2024-07-02T01:00:30Z", 2]]},
        {"Datastream": {"@iot.id": b["@iot.id"]}, "components": ["result", "phenomenonTime"],
         "dataArray": [["text", "2024-07-02T02:00:00Z"]]},
    ])
    assert len(links) == 3
    got_a = sta.all_pages(f"{path('Datastreams', a['@iot.id'])}/Observations", {"$orderby": "phenomenonTime"})
    assert [o["result"] for o in got_a] == [1, 2]
    assert got_a[0]["resultTime"].startswith("2024-07-02T00:00:30")
    got_b = sta.all_pages(f"{path('Datastreams', b['@iot.id'])}/Observations", {"$expand": "FeatureOfInterest"})
    assert [o["result"] for o in got_b] == ["text"]
    assert got_b[0]["FeatureOfInterest"]["feature"]["type"] == "Point"


def test_create_observations_reports_failed_rows(sta: Sta) -> None:
    """/req/data-array/data-array (CreateObservations): a row that cannot be created is answered with "error" at its
    place; the other rows are created."""
    ds = sta.datastream()
    foi = sta.feature()
    links = create_observations(sta, [{"Datastream": {"@iot.id": ds["@iot.id"]}, "components": COMPONENTS,
                                       "dataArray": [["2024-07-03T00:00:00Z", 1, foi["@iot.id"]],
                                                     ["2024-07-03T00:01:00Z", 2, 987654321],
                                                     ["2024-07-03T00:02:00Z", 3, foi["@iot.id"]]]}])
    assert len(links) == 3
    assert links[1] == "error"
    assert "/Observations(" in links[0] and "/Observations(" in links[2]
    got = sta.all_pages(f"{path('Datastreams', ds['@iot.id'])}/Observations")
    assert sorted(o["result"] for o in got) == [1, 3]


def test_create_observations_rejects_a_malformed_body(sta: Sta) -> None:
    """/req/data-array/data-array (CreateObservations): a body that is not an array of dataArray blocks is a 400."""
    assert sta.post("CreateObservations", {"dataArray": []}).status_code == 400
    ds = sta.datastream()
    r = sta.post("CreateObservations", [{"Datastream": {"@iot.id": ds["@iot.id"]}, "components": ["result"],
                                         "dataArray": [[1, 2]]}])
    assert r.status_code == 400 or (r.status_code == 201 and r.json() == ["error"])


def test_create_observations_for_a_multidatastream(sta: Sta) -> None:
    """/req/data-array/data-array (CreateObservations) with /req/multi-datastream: a block may name a MultiDatastream;
    its results are arrays."""
    from tests.conformance.sensorthings.test_multidatastream import md_body

    loc = sta.location()
    thing = sta.thing(Locations=[{"@iot.id": loc["@iot.id"]}])
    md = sta.create("MultiDatastreams", md_body(sta, thing=thing))
    links = create_observations(sta, [{"MultiDatastream": {"@iot.id": md["@iot.id"]},
                                       "components": ["phenomenonTime", "result"],
                                       "dataArray": [["2024-07-04T00:00:00Z", [30.1, 70]]]}])
    assert len(links) == 1
    assert sta.get_ok(links[0])["result"] == [30.1, 70]


def test_get_observations_as_data_array(sta: Sta) -> None:
    """/req/data-array/data-array: $resultFormat=dataArray returns, per Datastream, its navigationLink, the
    components and the rows (with dataArray@iot.count when $count=true)."""
    ds = sta.located_datastream()
    for i in range(3):
        sta.observation(ds, i * 1.5, f"2024-07-05T0{i}:00:00Z")
    got = sta.get_ok(f"{path('Datastreams', ds['@iot.id'])}/Observations",
                     {"$resultFormat": "dataArray", "$count": "true", "$orderby": "phenomenonTime"})
    [block] = got["value"]
    assert block["Datastream@iot.navigationLink"].endswith(path("Datastreams", ds["@iot.id"]))
    comps = block["components"]
    assert {"id", "phenomenonTime", "result"} <= set(comps), comps
    assert block["dataArray@iot.count"] == 3
    rows = block["dataArray"]
    assert [row[comps.index("result")] for row in rows] == [0, 1.5, 3.0]
    assert rows[2][comps.index("phenomenonTime")].startswith("2024-07-05T02:00:00")


def test_get_data_array_with_select_groups_by_datastream(sta: Sta) -> None:
    """/req/data-array/data-array: $select picks the components (in the given order) and a collection over
    several Datastreams yields one block per Datastream."""
    a, b = sta.located_datastream(), sta.located_datastream()
    sta.observation(a, 1, "2024-07-06T00:00:00Z")
    sta.observation(a, 2, "2024-07-06T01:00:00Z")
    sta.observation(b, 3, "2024-07-06T00:00:00Z")
    ids = f"Datastream/id eq {a['@iot.id']} or Datastream/id eq {b['@iot.id']}"
    got = sta.get_ok("Observations", {"$resultFormat": "dataArray", "$filter": ids,
                                      "$select": "result,phenomenonTime"})
    blocks = {blk["Datastream@iot.navigationLink"].rsplit("/", 1)[1]: blk for blk in got["value"]}
    assert set(blocks) == {path("Datastreams", a["@iot.id"]), path("Datastreams", b["@iot.id"])}
    for blk in blocks.values():
        assert blk["components"] == ["result", "phenomenonTime"]
    assert sorted(r[0] for r in blocks[path("Datastreams", a["@iot.id"])]["dataArray"]) == [1, 2]
    assert [r[0] for r in blocks[path("Datastreams", b["@iot.id"])]["dataArray"]] == [3]
