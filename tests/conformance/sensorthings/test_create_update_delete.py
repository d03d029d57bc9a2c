"""Conformance class: create-update-delete (OGC 18-088, /conf/create-update-delete)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.sensorthings.conftest import (
    CELSIUS,
    GEOJSON,
    GEOJSON_10,
    OM_MEASUREMENT,
    Sta,
    lit,
    path,
    point,
    unique,
)


def ids_of(sta: Sta, rel: str) -> set[Any]:
    return {e["@iot.id"] for e in sta.all_pages(rel)}


def by_name(sta: Sta, set_name: str, name: str) -> list[dict[str, Any]]:
    return sta.all_pages(set_name, {"$filter": f"name eq {lit(name)}"})


def gone(sta: Sta, set_name: str, entity_id: Any) -> bool:
    return sta.get(path(set_name, entity_id)).status_code == 404


def assert_problem(r: Any, status: int, *fields: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert body["status"] == status
    text = f"{body.get('detail', '')} {body.get('title', '')}"
    for f in fields:
        assert f in text, (f, body)


# -- create -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("set_name", ["Things", "Locations", "Sensors", "ObservedProperties", "FeaturesOfInterest"])
def test_create_each_entity_returns_201_and_location(sta: Sta, set_name: str) -> None:
    """/req/create-update-delete/create-entity: POST to a collection creates the entity, answers 201 Created
    with a Location header pointing at it."""
    name = unique(set_name.lower())
    body: dict[str, Any] = {
        "Things": {"name": name, "description": "d"},
        "Locations": {"name": name, "description": "d", "encodingType": GEOJSON, "location": point(98.3, 7.9)},
        "Sensors": {"name": name, "description": "d", "encodingType": "application/pdf", "metadata": "m.pdf"},
        "ObservedProperties": {"name": name, "description": "d", "definition": "https://example.org/op"},
        "FeaturesOfInterest": {"name": name, "description": "d", "encodingType": GEOJSON,
                               "feature": point(98.3, 7.9)},
    }[set_name]
    r = sta.post(set_name, body)
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    assert "/v1.1/" + set_name + "(" in loc
    created = sta.get_ok(loc)
    assert created["name"] == name
    if r.content:
        assert r.json()["@iot.id"] == created["@iot.id"]


def test_create_datastream_and_observation_by_linking(sta: Sta) -> None:
    """/req/create-update-delete/create-entity, /req/create-update-delete/link-to-existing-entities: a Datastream
    links to an existing Thing, Sensor and ObservedProperty by @iot.id; an Observation to its Datastream and
    FeatureOfInterest."""
    thing, sensor, op, foi = sta.thing(), sta.sensor(), sta.observed_property(), sta.feature()
    ds = sta.create("Datastreams", {
        "name": unique("ds"), "description": "d", "unitOfMeasurement": CELSIUS, "observationType": OM_MEASUREMENT,
        "Thing": {"@iot.id": thing["@iot.id"]}, "Sensor": {"@iot.id": sensor["@iot.id"]},
        "ObservedProperty": {"@iot.id": op["@iot.id"]}})
    base = path("Datastreams", ds["@iot.id"])
    assert sta.get_ok(f"{base}/Thing")["@iot.id"] == thing["@iot.id"]
    assert sta.get_ok(f"{base}/Sensor")["@iot.id"] == sensor["@iot.id"]
    assert sta.get_ok(f"{base}/ObservedProperty")["@iot.id"] == op["@iot.id"]
    obs = sta.create("Observations", {"result": 12.5, "phenomenonTime": "2024-01-01T00:00:00Z",
                                      "Datastream": {"@iot.id": ds["@iot.id"]},
                                      "FeatureOfInterest": {"@iot.id": foi["@iot.id"]}})
    assert sta.get_ok(f"{path('Observations', obs['@iot.id'])}/FeatureOfInterest")["@iot.id"] == foi["@iot.id"]
    assert ids_of(sta, f"{base}/Observations") == {obs["@iot.id"]}


def test_create_through_navigation_path_links_the_parent(sta: Sta) -> None:
    """/req/create-update-delete/create-entity: POST Datastreams(<id>)/Observations creates an Observation
    linked to that Datastream without naming it in the body."""
    ds = sta.located_datastream()
    obs = sta.create(f"{path('Datastreams', ds['@iot.id'])}/Observations",
                     {"result": 3, "phenomenonTime": "2024-01-01T00:00:00Z"})
    assert sta.get_ok(f"{path('Observations', obs['@iot.id'])}/Datastream")["@iot.id"] == ds["@iot.id"]


def test_deep_insert_thing_with_locations_datastreams_and_observations(sta: Sta) -> None:
    """/req/create-update-delete/deep-insert: one POST creates a Thing with a new Location and a Datastream with a
    new Sensor, ObservedProperty and Observations, all linked."""
    name = unique("deep")
    r = sta.post("Things", {
        "name": name, "description": "deep insert",
        "Locations": [{"name": f"{name}-loc", "description": "l", "encodingType": GEOJSON,
                       "location": point(98.31, 7.89)}],
        "Datastreams": [{
            "name": f"{name}-ds", "description": "d", "unitOfMeasurement": CELSIUS, "observationType": OM_MEASUREMENT,
            "Sensor": {"name": f"{name}-sensor", "description": "s", "encodingType": "application/pdf",
                       "metadata": "m.pdf"},
            "ObservedProperty": {"name": f"{name}-op", "description": "o", "definition": "https://example.org/t"},
            "Observations": [{"phenomenonTime": "2024-01-01T00:00:00Z", "result": 1},
                             {"phenomenonTime": "2024-01-01T01:00:00Z", "result": 2}],
        }],
    })
    assert r.status_code == 201, r.text
    thing = sta.get_ok(r.headers["location"])
    base = path("Things", thing["@iot.id"])
    [loc] = sta.all_pages(f"{base}/Locations")
    assert loc["name"] == f"{name}-loc"
    [ds] = sta.all_pages(f"{base}/Datastreams")
    assert ds["name"] == f"{name}-ds"
    ds_base = path("Datastreams", ds["@iot.id"])
    assert sta.get_ok(f"{ds_base}/Sensor")["name"] == f"{name}-sensor"
    assert sta.get_ok(f"{ds_base}/ObservedProperty")["name"] == f"{name}-op"
    obs = sta.all_pages(f"{ds_base}/Observations", {"$orderby": "phenomenonTime", "$expand": "FeatureOfInterest"})
    assert [o["result"] for o in obs] == [1, 2]
    for o in obs:   # no FeatureOfInterest given: generated from the Thing's Location
        assert o["FeatureOfInterest"]["feature"]["coordinates"] == [98.31, 7.89]
    assert len(sta.all_pages(f"{base}/HistoricalLocations")) == 1


def test_deep_insert_links_existing_entities(sta: Sta) -> None:
    """/req/create-update-delete/link-to-existing-entities inside a deep insert: nested {"@iot.id": …} links an
    existing Sensor, ObservedProperty and Location instead of creating them."""
    sensor, op, loc = sta.sensor(), sta.observed_property(), sta.location()
    before = ids_of(sta, f"{path('Sensors', sensor['@iot.id'])}/Datastreams")
    thing = sta.create("Things", {
        "name": unique("deep"), "description": "d", "Locations": [{"@iot.id": loc["@iot.id"]}],
        "Datastreams": [{"name": unique("ds"), "description": "d", "unitOfMeasurement": CELSIUS,
                         "observationType": OM_MEASUREMENT, "Sensor": {"@iot.id": sensor["@iot.id"]},
                         "ObservedProperty": {"@iot.id": op["@iot.id"]}}]})
    [ds] = sta.all_pages(f"{path('Things', thing['@iot.id'])}/Datastreams")
    assert ids_of(sta, f"{path('Sensors', sensor['@iot.id'])}/Datastreams") == before | {ds["@iot.id"]}
    assert ids_of(sta, f"{path('Things', thing['@iot.id'])}/Locations") == {loc["@iot.id"]}


def test_failed_deep_insert_creates_nothing(sta: Sta) -> None:
    """/req/create-update-delete/deep-insert-status-code: when any nested entity cannot be created the whole
    request fails with 400 and no entity from it is left behind."""
    name = unique("atomic")
    r = sta.post("Things", {
        "name": name, "description": "d",
        "Locations": [{"name": f"{name}-loc", "description": "l", "encodingType": GEOJSON,
                       "location": point(98.3, 7.9)}],
        "Datastreams": [{"name": f"{name}-ds", "description": "no unitOfMeasurement", "observationType": OM_MEASUREMENT,
                         "Sensor": {"name": f"{name}-sensor", "description": "s",
                                    "encodingType": "application/pdf", "metadata": "m"},
                         "ObservedProperty": {"name": f"{name}-op", "description": "o", "definition": "d"}}],
    })
    assert_problem(r, 400, "unitOfMeasurement")
    assert by_name(sta, "Things", name) == []
    assert by_name(sta, "Locations", f"{name}-loc") == []
    assert by_name(sta, "Sensors", f"{name}-sensor") == []
    assert by_name(sta, "ObservedProperties", f"{name}-op") == []


def test_historical_location_created_when_location_set_and_changed(sta: Sta) -> None:
    """/req/create-update-delete/historical-location-auto-creation: setting a Thing's Location (on create, by
    PATCH, by POST to Things(<id>)/Locations) adds a HistoricalLocation linking the Thing and the new Location."""
    first, second = sta.location(98.30, 7.90), sta.location(98.40, 7.80)
    thing = sta.thing(Locations=[{"@iot.id": first["@iot.id"]}])
    base = path("Things", thing["@iot.id"])
    hls = sta.all_pages(f"{base}/HistoricalLocations", {"$expand": "Locations"})
    assert [[x["@iot.id"] for x in h["Locations"]] for h in hls] == [[first["@iot.id"]]]

    r = sta.patch(base, {"Locations": [{"@iot.id": second["@iot.id"]}]})
    assert r.status_code in (200, 204), r.text
    assert ids_of(sta, f"{base}/Locations") == {second["@iot.id"]}
    hls = sta.all_pages(f"{base}/HistoricalLocations", {"$expand": "Locations", "$orderby": "time asc"})
    assert len(hls) == 2
    assert [x["@iot.id"] for x in hls[-1]["Locations"]] == [second["@iot.id"]]
    assert hls[0]["time"] <= hls[1]["time"]

    third = sta.create(f"{base}/Locations", {"name": unique("loc"), "description": "d", "encodingType": GEOJSON,
                                             "location": point(98.35, 7.85)})
    assert third["@iot.id"] in ids_of(sta, f"{base}/Locations")
    hls = sta.all_pages(f"{base}/HistoricalLocations", {"$expand": "Locations"})
    assert len(hls) == 3
    assert any(third["@iot.id"] in [x["@iot.id"] for x in h["Locations"]] for h in hls)


def test_historical_location_created_for_location_linked_from_its_side(sta: Sta) -> None:
    """/req/create-update-delete/historical-location-auto-creation: a Location created with a link to an
    existing Thing becomes that Thing's Location, and a HistoricalLocation records it; a Location deep-inserted
    by PATCH of the Thing does too."""
    thing = sta.thing()
    base = path("Things", thing["@iot.id"])
    loc = sta.create("Locations", {"name": unique("loc"), "description": "d", "encodingType": GEOJSON,
                                   "location": point(98.36, 7.84), "Things": [{"@iot.id": thing["@iot.id"]}]})
    assert ids_of(sta, f"{base}/Locations") == {loc["@iot.id"]}
    hls = sta.all_pages(f"{base}/HistoricalLocations", {"$expand": "Locations"})
    assert [[x["@iot.id"] for x in h["Locations"]] for h in hls] == [[loc["@iot.id"]]]
    name = unique("newloc")
    r = sta.patch(base, {"Locations": [{"name": name, "description": "d", "encodingType": GEOJSON,
                                        "location": point(98.37, 7.83)}]})
    assert r.status_code in (200, 204), r.text
    [new] = sta.all_pages(f"{base}/Locations")
    assert new["name"] == name
    hls = sta.all_pages(f"{base}/HistoricalLocations", {"$expand": "Locations"})
    assert len(hls) == 2
    assert any([x["@iot.id"] for x in h["Locations"]] == [new["@iot.id"]] for h in hls)


def test_feature_of_interest_generated_from_thing_location(sta: Sta) -> None:
    """/req/create-update-delete/create-entity (Observation without FeatureOfInterest): the service creates a
    FeatureOfInterest from the Location of the Datastream's Thing and links it."""
    loc = sta.location(98.33, 7.77)
    thing = sta.thing(Locations=[{"@iot.id": loc["@iot.id"]}])
    ds = sta.datastream(thing)
    obs = sta.observation(ds, 7)
    foi = sta.get_ok(f"{path('Observations', obs['@iot.id'])}/FeatureOfInterest")
    assert foi["feature"]["type"] == "Point" and foi["feature"]["coordinates"] == [98.33, 7.77]
    assert foi["encodingType"] in (GEOJSON, GEOJSON_10)


def test_observation_without_foi_and_without_location_is_400(sta: Sta) -> None:
    """/req/create-update-delete/create-entity: an Observation must have a FeatureOfInterest; with none given
    and no Thing Location to derive it from, the request is invalid."""
    ds = sta.datastream()
    r = sta.post("Observations", {"result": 1, "Datastream": {"@iot.id": ds["@iot.id"]}})
    assert_problem(r, 400, "FeatureOfInterest")


@pytest.mark.parametrize("encoding", [GEOJSON, GEOJSON_10])
def test_both_geojson_encoding_types_accepted(sta: Sta, encoding: str) -> None:
    """/req/datamodel/location/properties, /req/create-update-delete/create-entity: the 1.1 value
    application/geo+json and the 1.0 value application/vnd.geo+json are both accepted for Locations and
    FeaturesOfInterest."""
    loc = sta.create("Locations", {"name": unique("loc"), "description": "d", "encodingType": encoding,
                                   "location": point(98.3, 7.9)})
    assert loc["location"]["coordinates"] == [98.3, 7.9]
    foi = sta.create("FeaturesOfInterest", {"name": unique("foi"), "description": "d", "encodingType": encoding,
                                            "feature": point(98.3, 7.9)})
    assert foi["feature"]["coordinates"] == [98.3, 7.9]


def test_observations_at_the_same_time_are_distinct_entities(sta: Sta) -> None:
    """/req/create-update-delete/create-entity: each POST creates a new entity. Two Observations of one
    Datastream with the same phenomenonTime (e.g. different results or FeaturesOfInterest) are two entities,
    both kept."""
    ds = sta.located_datastream()
    foi = sta.feature()
    a = sta.observation(ds, 1.5, "2024-01-01T00:00:00Z")
    b = sta.observation(ds, 2.5, "2024-01-01T00:00:00Z", FeatureOfInterest={"@iot.id": foi["@iot.id"]})
    assert a["@iot.id"] != b["@iot.id"]
    assert (a["result"], b["result"]) == (1.5, 2.5)
    got = sta.all_pages(f"{path('Datastreams', ds['@iot.id'])}/Observations")
    assert sorted(o["result"] for o in got) == [1.5, 2.5]


def test_names_need_not_be_unique(sta: Sta) -> None:
    """/req/datamodel/thing/properties: name is a label, not a key; two Things may share it."""
    name = unique("same")
    a = sta.thing(name=name)
    b = sta.thing(name=name)
    assert a["@iot.id"] != b["@iot.id"]
    assert {t["@iot.id"] for t in by_name(sta, "Things", name)} == {a["@iot.id"], b["@iot.id"]}


@pytest.mark.parametrize(("set_name", "body", "field"), [
    ("Things", {"description": "no name"}, "name"),
    ("Locations", {"name": "x", "description": "d", "encodingType": GEOJSON}, "location"),
    ("Sensors", {"name": "x", "description": "d", "encodingType": "application/pdf"}, "metadata"),
    ("ObservedProperties", {"name": "x", "description": "d"}, "definition"),
    ("FeaturesOfInterest", {"name": "x", "description": "d", "encodingType": GEOJSON}, "feature"),
    ("Things", {"name": 5, "description": "d"}, "name"),
])
def test_invalid_entity_is_400_naming_the_field(sta: Sta, set_name: str, body: dict[str, Any], field: str) -> None:
    """/req/create-update-delete/create-entity: a request missing a mandatory property (or with a wrongly typed
    one) fails with 400; the problem+json detail names the property."""
    assert_problem(sta.post(set_name, body), 400, field)


def test_datastream_without_required_links_is_400(sta: Sta) -> None:
    """/req/create-update-delete/create-entity: a Datastream must link a Thing, a Sensor and an
    ObservedProperty."""
    thing = sta.thing()
    r = sta.post("Datastreams", {"name": unique("ds"), "description": "d", "unitOfMeasurement": CELSIUS,
                                 "observationType": OM_MEASUREMENT, "Thing": {"@iot.id": thing["@iot.id"]}})
    assert_problem(r, 400, "Sensor")


def test_link_to_missing_entity_fails(sta: Sta) -> None:
    """/req/create-update-delete/link-to-existing-entities: a link to an @iot.id that does not exist fails
    (400 or 404) and creates nothing."""
    name = unique("dangling")
    r = sta.post("Things", {"name": name, "description": "d", "Locations": [{"@iot.id": 987654321}]})
    assert r.status_code in (400, 404), r.text
    assert by_name(sta, "Things", name) == []


# -- update -------------------------------------------------------------------------------------------------------

def test_patch_updates_only_the_given_properties(sta: Sta) -> None:
    """/req/create-update-delete/update-entity: PATCH changes the given properties and keeps the others;
    200 OK or 204 No Content."""
    thing = sta.thing(properties={"a": 1})
    base = path("Things", thing["@iot.id"])
    r = sta.patch(base, {"description": "patched", "properties": {"b": 2}})
    assert r.status_code in (200, 204), r.text
    got = sta.get_ok(base)
    assert got["description"] == "patched"
    assert got["name"] == thing["name"]
    assert got["properties"] == {"b": 2}


def test_patch_changes_a_link(sta: Sta) -> None:
    """/req/create-update-delete/update-entity with /req/create-update-delete/link-to-existing-entities: PATCH
    of a to-one navigation property relinks it."""
    ds = sta.datastream()
    new_sensor = sta.sensor()
    base = path("Datastreams", ds["@iot.id"])
    r = sta.patch(base, {"Sensor": {"@iot.id": new_sensor["@iot.id"]}})
    assert r.status_code in (200, 204), r.text
    assert sta.get_ok(f"{base}/Sensor")["@iot.id"] == new_sensor["@iot.id"]


def test_patch_observation_result(sta: Sta) -> None:
    """/req/create-update-delete/update-entity: an Observation's result can be corrected."""
    ds = sta.located_datastream()
    obs = sta.observation(ds, 1.0)
    base = path("Observations", obs["@iot.id"])
    assert sta.patch(base, {"result": 2.0}).status_code in (200, 204)
    assert sta.get_ok(base)["result"] == 2.0


def test_patch_invalid_value_is_400(sta: Sta) -> None:
    """/req/create-update-delete/update-entity: an update that would make the entity invalid fails with 400 and
    changes nothing."""
    thing = sta.thing()
    base = path("Things", thing["@iot.id"])
    assert_problem(sta.patch(base, {"name": None}), 400, "name")
    assert sta.get_ok(base)["name"] == thing["name"]


def test_patch_unknown_entity_is_404(sta: Sta) -> None:
    """/req/create-update-delete/update-entity: updating an entity that does not exist answers 404."""
    assert sta.patch(path("Things", 987654321), {"description": "x"}).status_code == 404


def test_put_replaces_the_entity(sta: Sta) -> None:
    """/req/create-update-delete/update-entity-put: PUT replaces all properties; properties not
    in the body are reset."""
    thing = sta.thing(properties={"old": True})
    base = path("Things", thing["@iot.id"])
    name = unique("put")
    r = sta.put(base, {"name": name, "description": "replaced"})
    assert r.status_code in (200, 204), r.text
    got = sta.get_ok(base)
    assert (got["name"], got["description"]) == (name, "replaced")
    assert got.get("properties") in (None, {})


def test_put_missing_mandatory_property_is_400(sta: Sta) -> None:
    """/req/create-update-delete/update-entity-put: a replacement without a mandatory property is invalid."""
    thing = sta.thing()
    assert_problem(sta.put(path("Things", thing["@iot.id"]), {"description": "no name"}), 400, "name")


# -- delete -------------------------------------------------------------------------------------------------------

def test_delete_entity(sta: Sta) -> None:
    """/req/create-update-delete/delete-entity: DELETE removes the entity (200 or 204); it is then 404, and a
    second DELETE is 404."""
    thing = sta.thing()
    base = path("Things", thing["@iot.id"])
    assert sta.delete(base).status_code in (200, 204)
    assert gone(sta, "Things", thing["@iot.id"])
    assert sta.delete(base).status_code == 404


def test_delete_thing_cascades(sta: Sta) -> None:
    """/req/create-update-delete/delete-entity (integrity): deleting a Thing deletes its Datastreams, their
    Observations, and its HistoricalLocations; its Locations and the Sensor remain."""
    loc = sta.location()
    thing = sta.thing(Locations=[{"@iot.id": loc["@iot.id"]}])
    ds = sta.datastream(thing)
    obs = sta.observation(ds, 1)
    [hl] = sta.all_pages(f"{path('Things', thing['@iot.id'])}/HistoricalLocations")
    sensor = sta.get_ok(f"{path('Datastreams', ds['@iot.id'])}/Sensor")
    assert sta.delete(path("Things", thing["@iot.id"])).status_code in (200, 204)
    assert gone(sta, "Datastreams", ds["@iot.id"])
    assert gone(sta, "Observations", obs["@iot.id"])
    assert gone(sta, "HistoricalLocations", hl["@iot.id"])
    assert not gone(sta, "Locations", loc["@iot.id"])
    assert not gone(sta, "Sensors", sensor["@iot.id"])


def test_delete_datastream_cascades_to_observations(sta: Sta) -> None:
    """/req/create-update-delete/delete-entity (integrity): deleting a Datastream deletes its Observations; the
    Thing remains."""
    ds = sta.located_datastream()
    obs = [sta.observation(ds, i) for i in range(3)]
    thing = sta.get_ok(f"{path('Datastreams', ds['@iot.id'])}/Thing")
    assert sta.delete(path("Datastreams", ds["@iot.id"])).status_code in (200, 204)
    assert all(gone(sta, "Observations", o["@iot.id"]) for o in obs)
    assert not gone(sta, "Things", thing["@iot.id"])


@pytest.mark.parametrize("parent", ["Sensor", "ObservedProperty"])
def test_delete_sensor_or_observed_property_cascades(sta: Sta, parent: str) -> None:
    """/req/create-update-delete/delete-entity (integrity): deleting a Sensor or an ObservedProperty deletes the
    Datastreams that use it, and their Observations."""
    ds = sta.located_datastream()
    obs = sta.observation(ds, 1)
    target = sta.get_ok(f"{path('Datastreams', ds['@iot.id'])}/{parent}")
    set_name = {"Sensor": "Sensors", "ObservedProperty": "ObservedProperties"}[parent]
    assert sta.delete(path(set_name, target["@iot.id"])).status_code in (200, 204)
    assert gone(sta, "Datastreams", ds["@iot.id"])
    assert gone(sta, "Observations", obs["@iot.id"])


def test_delete_feature_of_interest_cascades_to_observations(sta: Sta) -> None:
    """/req/create-update-delete/delete-entity (integrity): deleting a FeatureOfInterest deletes its
    Observations; the Datastream remains."""
    ds = sta.datastream()
    foi = sta.feature()
    obs = sta.observation(ds, 1, FeatureOfInterest={"@iot.id": foi["@iot.id"]})
    assert sta.delete(path("FeaturesOfInterest", foi["@iot.id"])).status_code in (200, 204)
    assert gone(sta, "Observations", obs["@iot.id"])
    assert not gone(sta, "Datastreams", ds["@iot.id"])


def test_delete_location_keeps_the_thing(sta: Sta) -> None:
    """/req/create-update-delete/delete-entity (integrity): deleting a Location unlinks it from its Thing; the
    Thing remains."""
    loc = sta.location()
    thing = sta.thing(Locations=[{"@iot.id": loc["@iot.id"]}])
    assert sta.delete(path("Locations", loc["@iot.id"])).status_code in (200, 204)
    assert not gone(sta, "Things", thing["@iot.id"])
    assert ids_of(sta, f"{path('Things', thing['@iot.id'])}/Locations") == set()


def test_writes_need_a_token(sta: Sta) -> None:
    """Platform rule (DESIGN §3, not OGC): reading is public, writing needs a token with write permission."""
    r = sta.anon.post(sta.url("Things"), json={"name": unique("anon"), "description": "d"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
