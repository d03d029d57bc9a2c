"""Conformance class: receive updates via MQTT (OGC 18-088, /conf/receive-updates-via-mqtt).

A client subscribes to a topic that mirrors a resource path (an entity set, an entity, a property, a navigation
collection, or an entity set with $select); when an entity is created or updated over HTTP the service publishes
it on every matching topic (/req/receive-updates-via-mqtt/receive-updates).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conformance.sensorthings.conftest import (
    PREFIX,
    VERSION,
    Sta,
    mqtt_publish,
    mqtt_subscribed,
    path,
    unique,
)

REQ_KEY = PREFIX + "receive-updates-via-mqtt/receive-updates"


def test_conformance_class_is_declared(sta: Sta) -> None:
    """/req/receive-updates-via-mqtt/receive-updates (service root): the class is listed in
    serverSettings.conformance with its MQTT endpoints."""
    settings = sta.get_ok("")["serverSettings"]
    assert REQ_KEY in settings["conformance"]
    assert any(e.startswith("mqtt") for e in settings[REQ_KEY]["endpoints"])


async def test_entity_set_topic_receives_new_entities(sta: Sta) -> None:
    """/req/receive-updates-via-mqtt/receive-updates (entity set): subscribers of v1.1/Things receive each new
    Thing, with @iot.id, @iot.selfLink and its properties."""
    topic = f"{VERSION}/Things"
    async with mqtt_subscribed(sta, topic) as inbox:
        name = unique("mq")
        thing = await asyncio.to_thread(sta.thing, name=name, properties={"via": "http"})
        got = await inbox.wait_for(topic, lambda p: isinstance(p, dict) and p.get("name") == name)
    assert got["@iot.id"] == thing["@iot.id"]
    assert got["@iot.selfLink"] == thing["@iot.selfLink"]
    assert got["description"] == thing["description"] and got["properties"] == {"via": "http"}


async def test_entity_topic_receives_updates(sta: Sta) -> None:
    """/req/receive-updates-via-mqtt/receive-updates (entity): subscribers of v1.1/Things(<id>) receive the whole
    entity after each update; other Things' updates are not published there."""
    thing, other = await asyncio.to_thread(sta.thing), await asyncio.to_thread(sta.thing)
    topic = f"{VERSION}/{path('Things', thing['@iot.id'])}"
    async with mqtt_subscribed(sta, topic) as inbox:
        await asyncio.to_thread(sta.patch, path("Things", other["@iot.id"]), {"description": "not mine"})
        r = await asyncio.to_thread(sta.patch, path("Things", thing["@iot.id"]), {"description": "updated"})
        assert r.status_code in (200, 204)
        got = await inbox.wait_for(topic, lambda p: p.get("description") == "updated")
        await asyncio.sleep(0.3)
    assert got["@iot.id"] == thing["@iot.id"] and got["name"] == thing["name"]
    assert all(not isinstance(p, dict) or p.get("description") != "not mine" for p in inbox.on(topic))


async def test_property_topic_receives_changes_of_that_property(sta: Sta) -> None:
    """/req/receive-updates-via-mqtt/receive-updates (property): subscribers of v1.1/Things(<id>)/name receive
    {"name": <new value>} when the name changes, and nothing when another property changes."""
    thing = await asyncio.to_thread(sta.thing)
    base = path("Things", thing["@iot.id"])
    topic = f"{VERSION}/{base}/name"
    async with mqtt_subscribed(sta, topic) as inbox:
        await asyncio.to_thread(sta.patch, base, {"description": "only the description"})
        await asyncio.sleep(0.5)
        assert inbox.on(topic) == []
        new_name = unique("renamed")
        await asyncio.to_thread(sta.patch, base, {"name": new_name})
        got = await inbox.wait_for(topic)
    assert got == {"name": new_name}


async def test_navigation_topic_receives_new_observations(sta: Sta) -> None:
    """/req/receive-updates-via-mqtt/receive-updates (navigation collection): subscribers of
    v1.1/Datastreams(<id>)/Observations receive Observations added to that Datastream (over HTTP or MQTT), and
    not those of another Datastream."""
    ds = await asyncio.to_thread(sta.located_datastream)
    other = await asyncio.to_thread(sta.located_datastream)
    topic = f"{VERSION}/{path('Datastreams', ds['@iot.id'])}/Observations"
    async with mqtt_subscribed(sta, topic) as inbox:
        await asyncio.to_thread(sta.observation, other, 666)
        obs = await asyncio.to_thread(sta.observation, ds, 17.25, "2024-09-01T00:00:00Z")
        got = await inbox.wait_for(topic, lambda p: p.get("result") == 17.25)
        await mqtt_publish(sta, topic, {"phenomenonTime": "2024-09-01T01:00:00Z", "result": 18.5})
        await inbox.wait_for(topic, lambda p: p.get("result") == 18.5)
        await asyncio.sleep(0.2)
    assert got["@iot.id"] == obs["@iot.id"]
    assert got["phenomenonTime"].startswith("2024-09-01T00:00:00")
    assert all(not isinstance(p, dict) or p.get("result") != 666 for p in inbox.on(topic))


async def test_select_topic_receives_only_the_selected_properties(sta: Sta) -> None:
    """/req/receive-updates-via-mqtt/receive-updates (entity set with $select): subscribers of
    v1.1/Observations?$select=result,phenomenonTime receive new Observations with only those properties."""
    ds = await asyncio.to_thread(sta.located_datastream)
    topic = f"{VERSION}/Observations?$select=result,phenomenonTime"
    marker = int(unique("n").split("-")[1][:7], 16) + 0.5
    async with mqtt_subscribed(sta, topic) as inbox:
        await asyncio.to_thread(sta.observation, ds, marker, "2024-09-02T00:00:00Z")
        got: dict[str, Any] = await inbox.wait_for(topic, lambda p: p.get("result") == marker)
    assert set(got) == {"result", "phenomenonTime"}, got
    assert got["phenomenonTime"].startswith("2024-09-02T00:00:00")


async def test_entity_set_topic_receives_observations_created_over_mqtt(sta: Sta) -> None:
    """/req/receive-updates-via-mqtt/receive-updates with /req/create-observations-via-mqtt/observations-creation:
    an Observation created by an MQTT publication is published to subscribers of v1.1/Observations."""
    ds = await asyncio.to_thread(sta.located_datastream)
    topic = f"{VERSION}/Observations"
    async with mqtt_subscribed(sta, topic) as inbox:
        await mqtt_publish(sta, f"{VERSION}/{path('Datastreams', ds['@iot.id'])}/Observations",
                           {"phenomenonTime": "2024-09-03T00:00:00Z", "result": "from-mqtt-" + ds["name"]})
        got = await inbox.wait_for(topic, lambda p: p.get("result") == "from-mqtt-" + ds["name"])
    assert "@iot.id" in got
