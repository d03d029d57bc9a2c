"""Conformance class: Sensing Core / data model (OGC 18-088, /conf/datamodel).

Each entity type is created over HTTP and read back; the test checks its mandatory properties, the common control
information (``@iot.id``, ``@iot.selfLink``) and one ``<Nav>@iot.navigationLink`` per relation, each of which must
resolve.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conformance.sensorthings.conftest import (
    CELSIUS,
    GEOJSON,
    NAVIGATION,
    OM_MEASUREMENT,
    Sta,
    path,
    unique,
)

ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")


def check_control_information(sta: Sta, entity: dict[str, Any], set_name: str) -> None:
    """/req/datamodel/entity-control-information/common-control-information."""
    assert "@iot.id" in entity, entity
    assert isinstance(entity["@iot.id"], int | str) and not isinstance(entity["@iot.id"], bool)
    self_link = entity.get("@iot.selfLink")
    assert isinstance(self_link, str) and self_link.startswith("http"), entity
    assert self_link.endswith(path(set_name, entity["@iot.id"])), self_link
    again = sta.get(self_link)
    assert again.status_code == 200
    assert again.json()["@iot.id"] == entity["@iot.id"]


def check_navigation_links(sta: Sta, entity: dict[str, Any], type_name: str) -> None:
    """Each relation of the type is serialised as ``<name>@iot.navigationLink`` and resolves."""
    for nav in NAVIGATION[type_name]:
        link = entity.get(f"{nav}@iot.navigationLink")
        assert isinstance(link, str), f"{type_name} lacks {nav}@iot.navigationLink: {sorted(entity)}"
        assert link.endswith(f"{path(type_name_to_set(type_name), entity['@iot.id'])}/{nav}"), link
        r = sta.get(link)
        assert r.status_code == 200, (link, r.status_code, r.text[:300])


def type_name_to_set(type_name: str) -> str:
    return {"Thing": "Things", "Location": "Locations", "HistoricalLocation": "HistoricalLocations",
            "Datastream": "Datastreams", "Sensor": "Sensors", "ObservedProperty": "ObservedProperties",
            "Observation": "Observations", "FeatureOfInterest": "FeaturesOfInterest",
            "MultiDatastream": "MultiDatastreams"}[type_name]


def test_thing_properties_and_relations(sta: Sta) -> None:
    """/req/datamodel/thing/properties, /req/datamodel/thing/relations,
    /req/datamodel/entity-control-information/common-control-information."""
    props = {"owner": "PKT city", "floors": 3}
    thing = sta.thing(properties=props)
    assert isinstance(thing["name"], str) and thing["description"] == "a conformance-test thing"
    assert thing["properties"] == props
    check_control_information(sta, thing, "Things")
    check_navigation_links(sta, thing, "Thing")


def test_location_properties_and_relations(sta: Sta) -> None:
    """/req/datamodel/location/properties, /req/datamodel/location/relations."""
    loc = sta.location(98.3923, 7.8804, properties={"district": "8301"})
    assert loc["encodingType"] == GEOJSON
    assert loc["location"]["type"] == "Point"
    assert loc["location"]["coordinates"] == [98.3923, 7.8804]
    assert loc["properties"] == {"district": "8301"}
    for p in ("name", "description"):
        assert isinstance(loc[p], str)
    check_control_information(sta, loc, "Locations")
    check_navigation_links(sta, loc, "Location")


def test_historical_location_properties_and_relations(sta: Sta) -> None:
    """/req/datamodel/historical-location/properties, /req/datamodel/historical-location/relations."""
    loc = sta.location()
    thing = sta.thing(Locations=[{"@iot.id": loc["@iot.id"]}])
    hls = sta.get_ok(f"{path('Things', thing['@iot.id'])}/HistoricalLocations")["value"]
    assert len(hls) == 1
    hl = hls[0]
    assert ISO_INSTANT.match(hl["time"]), hl
    check_control_information(sta, hl, "HistoricalLocations")
    check_navigation_links(sta, hl, "HistoricalLocation")
    owner = sta.get_ok(hl["Thing@iot.navigationLink"])
    assert owner["@iot.id"] == thing["@iot.id"]
    locs = sta.get_ok(hl["Locations@iot.navigationLink"])["value"]
    assert [x["@iot.id"] for x in locs] == [loc["@iot.id"]]


def test_sensor_properties_and_relations(sta: Sta) -> None:
    """/req/datamodel/sensor/properties, /req/datamodel/sensor/relations."""
    sensor = sta.sensor(properties={"vendor": "Maxim"})
    assert sensor["encodingType"] == "application/pdf"
    assert sensor["metadata"] == "https://example.org/ds18b20.pdf"
    assert sensor["properties"] == {"vendor": "Maxim"}
    assert isinstance(sensor["name"], str) and isinstance(sensor["description"], str)
    check_control_information(sta, sensor, "Sensors")
    check_navigation_links(sta, sensor, "Sensor")


def test_observed_property_properties_and_relations(sta: Sta) -> None:
    """/req/datamodel/observed-property/properties, /req/datamodel/observed-property/relations."""
    op = sta.observed_property(properties={"cf": "air_temperature"})
    assert op["definition"] == "https://example.org/def/air_temperature"
    assert op["description"] == "air temperature"
    assert op["properties"] == {"cf": "air_temperature"}
    check_control_information(sta, op, "ObservedProperties")
    check_navigation_links(sta, op, "ObservedProperty")


def test_datastream_properties_and_relations(sta: Sta) -> None:
    """/req/datamodel/datastream/properties, /req/datamodel/datastream/relations."""
    ds = sta.datastream(properties={"interval": "PT10M"})
    assert ds["unitOfMeasurement"] == CELSIUS
    assert ds["observationType"] == OM_MEASUREMENT
    assert ds["properties"] == {"interval": "PT10M"}
    for p in ("name", "description"):
        assert isinstance(ds[p], str)
    check_control_information(sta, ds, "Datastreams")
    check_navigation_links(sta, ds, "Datastream")
    for nav in ("Thing", "Sensor", "ObservedProperty"):
        target = sta.get_ok(ds[f"{nav}@iot.navigationLink"])
        assert "@iot.id" in target


def test_datastream_phenomenon_time_spans_its_observations(sta: Sta) -> None:
    """/req/datamodel/datastream/properties: phenomenonTime and resultTime of a Datastream are the intervals
    spanned by its Observations' phenomenon and result times (server-computed)."""
    ds = sta.located_datastream()
    sta.observation(ds, 1.0, "2024-03-01T00:00:00Z", resultTime="2024-03-01T00:00:05Z")
    sta.observation(ds, 2.0, "2024-03-05T12:00:00Z", resultTime="2024-03-05T12:00:05Z")
    got = sta.get_ok(path("Datastreams", ds["@iot.id"]))
    start, _, end = got["phenomenonTime"].partition("/")
    assert start.startswith("2024-03-01T00:00:00") and end.startswith("2024-03-05T12:00:00"), got["phenomenonTime"]
    rstart, _, rend = got["resultTime"].partition("/")
    assert rstart.startswith("2024-03-01T00:00:05") and rend.startswith("2024-03-05T12:00:05"), got["resultTime"]


def test_observation_properties_and_relations(sta: Sta) -> None:
    """/req/datamodel/observation/properties, /req/datamodel/observation/relations."""
    ds = sta.datastream()
    foi = sta.feature()
    obs = sta.observation(ds, 21.5, "2024-01-02T03:04:05Z", resultTime="2024-01-02T03:04:06Z",
                          validTime="2024-01-02T00:00:00Z/2024-01-03T00:00:00Z",
                          parameters={"battery": 80}, resultQuality={"flag": "good"},
                          FeatureOfInterest={"@iot.id": foi["@iot.id"]})
    assert obs["result"] == 21.5
    assert ISO_INSTANT.match(obs["phenomenonTime"]) and obs["phenomenonTime"].startswith("2024-01-02T03:04:05")
    assert obs["resultTime"].startswith("2024-01-02T03:04:06")
    start, _, end = obs["validTime"].partition("/")
    assert start.startswith("2024-01-02T00:00:00") and end.startswith("2024-01-03T00:00:00")
    assert obs["parameters"] == {"battery": 80}
    assert obs["resultQuality"] == {"flag": "good"}
    check_control_information(sta, obs, "Observations")
    check_navigation_links(sta, obs, "Observation")
    assert sta.get_ok(obs["Datastream@iot.navigationLink"])["@iot.id"] == ds["@iot.id"]
    assert sta.get_ok(obs["FeatureOfInterest@iot.navigationLink"])["@iot.id"] == foi["@iot.id"]


def test_observation_result_time_is_present_even_when_null(sta: Sta) -> None:
    """/req/datamodel/observation/properties: resultTime is mandatory (multiplicity 1) but may be null."""
    ds = sta.located_datastream()
    obs = sta.observation(ds, 3)
    assert "resultTime" in obs
    assert obs["resultTime"] is None or ISO_INSTANT.match(obs["resultTime"])


def test_observation_without_phenomenon_time_gets_server_time(sta: Sta) -> None:
    """/req/datamodel/observation/properties: when a POST of an Observation omits phenomenonTime, the service
    assigns the current server time."""
    ds = sta.located_datastream()
    before = datetime.now(UTC) - timedelta(seconds=30)
    obs = sta.create("Observations", {"result": 9, "Datastream": {"@iot.id": ds["@iot.id"]}})
    after = datetime.now(UTC) + timedelta(seconds=30)
    got = datetime.fromisoformat(obs["phenomenonTime"].replace("Z", "+00:00"))
    assert before <= got <= after, obs["phenomenonTime"]


def test_observation_phenomenon_time_interval(sta: Sta) -> None:
    """/req/datamodel/observation/properties: phenomenonTime is a TM_Object, an instant or an interval."""
    ds = sta.located_datastream()
    obs = sta.observation(ds, 4.5, "2024-02-01T00:00:00Z/2024-02-01T01:00:00Z")
    start, sep, end = obs["phenomenonTime"].partition("/")
    assert sep == "/" and start.startswith("2024-02-01T00:00:00") and end.startswith("2024-02-01T01:00:00")


def test_observation_results_of_any_json_type(sta: Sta) -> None:
    """/req/datamodel/observation/properties: result is Any (number, string, boolean, object, array)."""
    ds = sta.located_datastream()
    for value in (7, 1.25, "cloudy", True, {"a": [1, 2]}, [1, "two"]):
        assert sta.observation(ds, value)["result"] == value


def test_feature_of_interest_properties_and_relations(sta: Sta) -> None:
    """/req/datamodel/feature-of-interest/properties, /req/datamodel/feature-of-interest/relations."""
    polygon = {"type": "Polygon", "coordinates": [[[98.3, 7.8], [98.4, 7.8], [98.4, 7.9], [98.3, 7.8]]]}
    foi = sta.create("FeaturesOfInterest", {"name": unique("foi"), "description": "Patong bay",
                                            "encodingType": GEOJSON, "feature": polygon,
                                            "properties": {"kind": "bay"}})
    assert foi["encodingType"] == GEOJSON
    assert foi["feature"]["type"] == "Polygon"
    assert foi["feature"]["coordinates"] == polygon["coordinates"]
    assert foi["properties"] == {"kind": "bay"}
    check_control_information(sta, foi, "FeaturesOfInterest")
    check_navigation_links(sta, foi, "FeatureOfInterest")


def test_collection_entities_carry_control_information(sta: Sta) -> None:
    """/req/datamodel/entity-control-information/common-control-information: entities inside a collection
    response carry @iot.id and @iot.selfLink too."""
    sta.thing()
    page = sta.get_ok("Things", {"$top": 3})
    assert page["value"]
    for entity in page["value"]:
        check_control_information(sta, entity, "Things")
