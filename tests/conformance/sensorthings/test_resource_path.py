"""Conformance class: Sensing Core / resource path (OGC 18-088, /conf/resource-path).

One requirement, /req/resource-path/resource-path-to-entities, covers the URL patterns of the resource-path table
(service root, collection, entity, property, ``$value``, navigation property, association link ``$ref``, nested
path); the tests are named after those usages.
"""

from __future__ import annotations

from tests.conformance.sensorthings.conftest import PREFIX, SETS, Sta, path

REQ = "/req/resource-path/resource-path-to-entities"


def test_service_root_lists_every_entity_set(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: service root): the root lists each entity set with
    its name and URL, and every URL resolves to a collection."""
    root = sta.get_ok("")
    listed = {item["name"]: item["url"] for item in root["value"]}
    assert set(SETS) <= set(listed), sorted(listed)
    for name, url in listed.items():
        assert url.rstrip("/").endswith(f"/{name}"), (name, url)
        r = sta.get(url)
        assert r.status_code == 200, (url, r.status_code)
        assert isinstance(r.json()["value"], list)


def test_service_root_server_settings_list_conformance(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: service root): serverSettings.conformance
    is an array listing the conformance classes the service implements, at least the Sensing Core ones."""
    settings = sta.get_ok("")["serverSettings"]
    conformance = settings["conformance"]
    assert isinstance(conformance, list)
    for cls in ("datamodel", "resource-path/resource-path-to-entities", "request-data"):
        assert PREFIX + cls in conformance, (cls, conformance)


def test_collection_of_entities(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: collection): GET Things returns a JSON object whose
    ``value`` array holds Thing entities, including one just created."""
    thing = sta.thing()
    ids = {t["@iot.id"] for t in sta.all_pages("Things", {"$filter": f"name eq '{thing['name']}'"})}
    assert ids == {thing["@iot.id"]}


def test_entity_by_id(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: entity): Things(<id>) returns that single entity."""
    thing = sta.thing()
    got = sta.get_ok(path("Things", thing["@iot.id"]))
    assert got["@iot.id"] == thing["@iot.id"] and got["name"] == thing["name"]
    assert "value" not in got


def test_unknown_entity_is_404(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities: a path to an entity that does not exist answers 404."""
    for set_name in SETS:
        r = sta.get(path(set_name, 987654321))
        assert r.status_code == 404, (set_name, r.status_code)


def test_unknown_entity_set_is_404(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities: an unknown resource path answers 404."""
    assert sta.get("Gadgets").status_code == 404


def test_property_of_entity(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: property): Things(<id>)/name returns a JSON object
    with that single property."""
    thing = sta.thing()
    got = sta.get_ok(f"{path('Things', thing['@iot.id'])}/name")
    assert got == {"name": thing["name"]}
    got = sta.get_ok(f"{path('Things', thing['@iot.id'])}/description")
    assert got == {"description": thing["description"]}


def test_unknown_property_is_404_or_400(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities: a property the entity type does not have is not a valid
    resource path (no 200)."""
    thing = sta.thing()
    r = sta.get(f"{path('Things', thing['@iot.id'])}/colour")
    assert r.status_code in (400, 404), r.status_code


def test_property_raw_value(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: property value): Things(<id>)/name/$value returns
    the raw value, not JSON-wrapped."""
    thing = sta.thing()
    r = sta.get(f"{path('Things', thing['@iot.id'])}/name/$value")
    assert r.status_code == 200
    assert r.text == thing["name"]
    ds = sta.located_datastream()
    obs = sta.observation(ds, 42.5)
    r = sta.get(f"{path('Observations', obs['@iot.id'])}/result/$value")
    assert r.status_code == 200 and float(r.text) == 42.5


def test_navigation_property_collection(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: navigation property): Datastreams(<id>)/Observations
    returns exactly that Datastream's Observations."""
    ds = sta.located_datastream()
    other = sta.located_datastream()
    mine = {sta.observation(ds, i)["@iot.id"] for i in range(3)}
    sta.observation(other, 99)
    got = {o["@iot.id"] for o in sta.all_pages(f"{path('Datastreams', ds['@iot.id'])}/Observations")}
    assert got == mine


def test_navigation_property_single(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: navigation property to one entity):
    Datastreams(<id>)/Thing returns that Thing as an entity."""
    thing = sta.thing()
    ds = sta.datastream(thing)
    got = sta.get_ok(f"{path('Datastreams', ds['@iot.id'])}/Thing")
    assert got["@iot.id"] == thing["@iot.id"] and got["name"] == thing["name"]


def test_nested_navigation_path(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: nested path): Observations(<id>)/Datastream/Thing and
    a property at the end of a navigation path."""
    thing = sta.thing()
    ds = sta.datastream(thing)
    sensor = sta.get_ok(f"{path('Datastreams', ds['@iot.id'])}/Sensor")
    foi = sta.feature()
    obs = sta.observation(ds, 1, FeatureOfInterest={"@iot.id": foi["@iot.id"]})
    got = sta.get_ok(f"{path('Observations', obs['@iot.id'])}/Datastream/Thing")
    assert got["@iot.id"] == thing["@iot.id"]
    got = sta.get_ok(f"{path('Observations', obs['@iot.id'])}/Datastream/Sensor/name")
    assert got == {"name": sensor["name"]}
    got = sta.get_ok(f"{path('Things', thing['@iot.id'])}/Datastreams")
    assert [d["@iot.id"] for d in got["value"]] == [ds["@iot.id"]]


def test_entity_in_navigation_collection_by_id(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: entity in a related collection): Things(1)/Locations(2)
    returns the Location when it belongs to the Thing, and 404 when it does not."""
    mine, other = sta.location(), sta.location(98.0, 8.0)
    thing = sta.thing(Locations=[{"@iot.id": mine["@iot.id"]}])
    got = sta.get_ok(f"{path('Things', thing['@iot.id'])}/{path('Locations', mine['@iot.id'])}")
    assert got["@iot.id"] == mine["@iot.id"]
    r = sta.get(f"{path('Things', thing['@iot.id'])}/{path('Locations', other['@iot.id'])}")
    assert r.status_code == 404
    ds = sta.located_datastream()
    obs = sta.observation(ds, 5)
    got = sta.get_ok(f"{path('Datastreams', ds['@iot.id'])}/{path('Observations', obs['@iot.id'])}")
    assert got["@iot.id"] == obs["@iot.id"] and got["result"] == 5


def test_navigation_from_unknown_entity_is_404(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities: navigating from an entity that does not exist answers 404."""
    r = sta.get(f"{path('Datastreams', 987654321)}/Observations")
    assert r.status_code == 404
    r = sta.get(f"{path('Datastreams', 987654321)}/Thing")
    assert r.status_code == 404


def test_association_link_ref(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: association link): Datastreams(<id>)/Observations/$ref
    returns the selfLinks of the related entities only."""
    ds = sta.located_datastream()
    ids = [sta.observation(ds, i)["@iot.id"] for i in range(2)]
    got = sta.get_ok(f"{path('Datastreams', ds['@iot.id'])}/Observations/$ref")
    links = [item["@iot.selfLink"] for item in got["value"]]
    assert len(links) == 2
    for item in got["value"]:
        assert set(item) == {"@iot.selfLink"}, item
    assert sorted(sta.get_ok(link)["@iot.id"] for link in links) == sorted(ids)
    assert {link.rsplit("/", 1)[1] for link in links} == {path("Observations", i) for i in ids}


def test_entity_set_ref(sta: Sta) -> None:
    """/req/resource-path/resource-path-to-entities (usage: association link on a set): Things/$ref lists
    selfLinks."""
    thing = sta.thing()
    got = sta.get_ok("Things/$ref", {"$filter": f"name eq '{thing['name']}'"})
    assert got["value"] == [{"@iot.selfLink": thing["@iot.selfLink"]}]
