"""Conformance class: MultiDatastream extension (OGC 18-088, /conf/multi-datastream)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.sensorthings.conftest import (
    CELSIUS,
    OM_COMPLEX,
    OM_MEASUREMENT,
    PREFIX,
    Sta,
    path,
    unique,
)
from tests.conformance.sensorthings.test_datamodel import check_control_information, check_navigation_links

PERCENT = {"name": "percent", "symbol": "%", "definition": "http://unitsofmeasure.org/ucum.html#para-29"}


def md_body(sta: Sta, thing: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A valid two-component MultiDatastream (temperature, humidity) linking new Sensor/ObservedProperties."""
    thing = thing or sta.thing()
    ops = [sta.observed_property() for _ in range(2)]
    return {"name": unique("md"), "description": "temperature and humidity",
            "unitOfMeasurements": [CELSIUS, PERCENT], "observationType": OM_COMPLEX,
            "multiObservationDataTypes": [OM_MEASUREMENT, OM_MEASUREMENT],
            "Thing": {"@iot.id": thing["@iot.id"]}, "Sensor": {"@iot.id": sta.sensor()["@iot.id"]},
            "ObservedProperties": [{"@iot.id": op["@iot.id"]} for op in ops], **extra}


@pytest.fixture
def md(sta: Sta) -> dict[str, Any]:
    loc = sta.location()
    thing = sta.thing(Locations=[{"@iot.id": loc["@iot.id"]}])
    return sta.create("MultiDatastreams", md_body(sta, thing=thing))


def test_conformance_class_is_declared(sta: Sta) -> None:
    """/req/multi-datastream (service root): the class is listed in serverSettings.conformance and
    MultiDatastreams is an entity set of the service root."""
    root = sta.get_ok("")
    assert PREFIX + "multi-datastream" in root["serverSettings"]["conformance"]
    assert "MultiDatastreams" in {v["name"] for v in root["value"]}


def test_multidatastream_properties_and_relations(sta: Sta, md: dict[str, Any]) -> None:
    """/req/multi-datastream/properties, /req/multi-datastream/relations: unitOfMeasurements and
    multiObservationDataTypes arrays, observationType OM_ComplexObservation, links to Thing, Sensor,
    ObservedProperties, Observations."""
    assert md["unitOfMeasurements"] == [CELSIUS, PERCENT]
    assert md["multiObservationDataTypes"] == [OM_MEASUREMENT, OM_MEASUREMENT]
    assert md["observationType"] == OM_COMPLEX
    check_control_information(sta, md, "MultiDatastreams")
    check_navigation_links(sta, md, "MultiDatastream")
    ops = sta.get_ok(md["ObservedProperties@iot.navigationLink"])["value"]
    assert len(ops) == 2


def test_related_entities_link_back(sta: Sta, md: dict[str, Any]) -> None:
    """/req/multi-datastream/relations: Thing, Sensor and ObservedProperty gain a MultiDatastreams navigation
    property listing it."""
    base = path("MultiDatastreams", md["@iot.id"])
    for nav in ("Thing", "Sensor"):
        parent = sta.get_ok(f"{base}/{nav}")
        link = parent["MultiDatastreams@iot.navigationLink"]
        assert md["@iot.id"] in {m["@iot.id"] for m in sta.all_pages(link)}
    for op in sta.get_ok(f"{base}/ObservedProperties")["value"]:
        assert md["@iot.id"] in {m["@iot.id"] for m in sta.all_pages(op["MultiDatastreams@iot.navigationLink"])}


def test_observation_in_multidatastream(sta: Sta, md: dict[str, Any]) -> None:
    """/req/multi-datastream/constraints, /req/multi-datastream/relations: an Observation of a
    MultiDatastream has an array result, one element per ObservedProperty, and a MultiDatastream link."""
    obs = sta.create("Observations", {"phenomenonTime": "2024-01-01T00:00:00Z", "result": [30.5, 71],
                                      "MultiDatastream": {"@iot.id": md["@iot.id"]}})
    assert obs["result"] == [30.5, 71]
    link = obs["MultiDatastream@iot.navigationLink"]
    assert sta.get_ok(link)["@iot.id"] == md["@iot.id"]
    got = sta.all_pages(f"{path('MultiDatastreams', md['@iot.id'])}/Observations")
    assert [o["@iot.id"] for o in got] == [obs["@iot.id"]]


def test_result_size_must_match(sta: Sta, md: dict[str, Any]) -> None:
    """/req/multi-datastream/constraints: the result array has as many elements as the MultiDatastream has
    ObservedProperties; otherwise the Observation is refused with 400."""
    for result in ([1.0], [1.0, 2.0, 3.0], 4.0):
        r = sta.post("Observations", {"phenomenonTime": "2024-01-01T00:00:00Z", "result": result,
                                      "MultiDatastream": {"@iot.id": md["@iot.id"]}})
        assert r.status_code == 400, (result, r.status_code, r.text[:300])


def test_array_sizes_and_observation_type_constraints(sta: Sta) -> None:
    """/req/multi-datastream/constraints: unitOfMeasurements, multiObservationDataTypes and ObservedProperties
    have the same size, and observationType is OM_ComplexObservation."""
    body = md_body(sta)
    body["unitOfMeasurements"] = [CELSIUS]
    assert sta.post("MultiDatastreams", body).status_code == 400
    body = md_body(sta)
    body["multiObservationDataTypes"] = [OM_MEASUREMENT]
    assert sta.post("MultiDatastreams", body).status_code == 400
    body = md_body(sta)
    body["observationType"] = OM_MEASUREMENT
    assert sta.post("MultiDatastreams", body).status_code == 400


def test_deep_insert_thing_with_multidatastream(sta: Sta) -> None:
    """/req/multi-datastream/relations with /req/create-update-delete/deep-insert: a Thing created with a
    MultiDatastream that creates its Sensor and ObservedProperties."""
    name = unique("mdeep")
    r = sta.post("Things", {"name": name, "description": "d", "MultiDatastreams": [{
        "name": f"{name}-md", "description": "d", "unitOfMeasurements": [CELSIUS, PERCENT],
        "observationType": OM_COMPLEX, "multiObservationDataTypes": [OM_MEASUREMENT, OM_MEASUREMENT],
        "Sensor": {"name": f"{name}-s", "description": "s", "encodingType": "application/pdf", "metadata": "m"},
        "ObservedProperties": [
            {"name": f"{name}-t", "description": "t", "definition": "https://example.org/t"},
            {"name": f"{name}-h", "description": "h", "definition": "https://example.org/h"}],
    }]})
    assert r.status_code == 201, r.text
    thing = sta.get_ok(r.headers["location"])
    [md] = sta.all_pages(f"{path('Things', thing['@iot.id'])}/MultiDatastreams")
    names = {op["name"] for op in sta.all_pages(f"{path('MultiDatastreams', md['@iot.id'])}/ObservedProperties")}
    assert names == {f"{name}-t", f"{name}-h"}


def test_expand_and_filter_multidatastreams(sta: Sta, md: dict[str, Any]) -> None:
    """/req/multi-datastream (with /req/request-data/expand, filter): MultiDatastreams can be expanded from a
    Thing and filtered on their properties."""
    thing = sta.get_ok(f"{path('MultiDatastreams', md['@iot.id'])}/Thing")
    got = sta.get_ok(path("Things", thing["@iot.id"]), {"$expand": "MultiDatastreams($expand=ObservedProperties)"})
    [m] = got["MultiDatastreams"]
    assert m["@iot.id"] == md["@iot.id"] and len(m["ObservedProperties"]) == 2
    got = sta.all_pages("MultiDatastreams", {"$filter": f"name eq '{md['name']}'"})
    assert [m["@iot.id"] for m in got] == [md["@iot.id"]]


def test_delete_multidatastream_cascades(sta: Sta, md: dict[str, Any]) -> None:
    """/req/multi-datastream/relations with /req/create-update-delete/delete-entity: deleting a
    MultiDatastream deletes its Observations."""
    obs = sta.create("Observations", {"phenomenonTime": "2024-01-01T00:00:00Z", "result": [1, 2],
                                      "MultiDatastream": {"@iot.id": md["@iot.id"]}})
    assert sta.delete(path("MultiDatastreams", md["@iot.id"])).status_code in (200, 204)
    assert sta.get(path("MultiDatastreams", md["@iot.id"])).status_code == 404
    assert sta.get(path("Observations", obs["@iot.id"])).status_code == 404


def test_observation_links_one_stream_only(sta: Sta, md: dict[str, Any]) -> None:
    """/req/multi-datastream/constraints: an Observation links either a Datastream or a MultiDatastream, not
    both."""
    ds = sta.located_datastream()
    r = sta.post("Observations", {"phenomenonTime": "2024-01-01T00:00:00Z", "result": [1, 2],
                                  "Datastream": {"@iot.id": ds["@iot.id"]},
                                  "MultiDatastream": {"@iot.id": md["@iot.id"]}})
    assert r.status_code == 400
