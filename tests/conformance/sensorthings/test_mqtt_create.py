"""Conformance class: create Observations via MQTT (OGC 18-088, /conf/create-observations-via-mqtt).

A client publishes an Observation's JSON on ``v1.1/Observations``, ``v1.1/Datastreams(<id>)/Observations`` or
``v1.1/FeaturesOfInterest(<id>)/Observations``; the service creates it as a POST to that path would
(/req/create-observations-via-mqtt/observations-creation). The test then reads it back over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from tests.conformance.sensorthings.conftest import (
    PREFIX,
    VERSION,
    Sta,
    async_wait_until,
    mqtt_publish,
    path,
    unique,
)

REQ_KEY = PREFIX + "create-observations-via-mqtt/observations-creation"


def observations_of(sta: Sta, ds: dict[str, Any], params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return sta.all_pages(f"{path('Datastreams', ds['@iot.id'])}/Observations", params)


def test_server_settings_announce_the_mqtt_endpoint(sta: Sta) -> None:
    """/req/create-observations-via-mqtt/observations-creation (service root): the class is in
    serverSettings.conformance and serverSettings[<class>].endpoints lists an mqtt:// URL on the broker port."""
    settings = sta.get_ok("")["serverSettings"]
    assert REQ_KEY in settings["conformance"]
    endpoints = settings[REQ_KEY]["endpoints"]
    assert any(e.startswith("mqtt") and e.rstrip("/").endswith(f":{sta.mqtt_port}") for e in endpoints), endpoints


async def test_publish_on_observations_topic(sta: Sta) -> None:
    """/req/create-observations-via-mqtt/observations-creation: an Observation published on v1.1/Observations,
    linking its Datastream in the body, is stored."""
    ds = await asyncio.to_thread(sta.located_datastream)
    await mqtt_publish(sta, f"{VERSION}/Observations", {
        "phenomenonTime": "2024-08-01T00:00:00Z", "result": 28.5, "Datastream": {"@iot.id": ds["@iot.id"]}})
    got = await async_wait_until(lambda: observations_of(sta, ds))
    assert [o["result"] for o in got] == [28.5]
    assert got[0]["phenomenonTime"].startswith("2024-08-01T00:00:00")


async def test_publish_on_datastream_observations_topic(sta: Sta) -> None:
    """/req/create-observations-via-mqtt/observations-creation: publishing on v1.1/Datastreams(<id>)/Observations
    links the Observation to that Datastream; the FeatureOfInterest is derived from the Thing's Location."""
    ds = await asyncio.to_thread(sta.located_datastream)
    for i in range(3):
        await mqtt_publish(sta, f"{VERSION}/{path('Datastreams', ds['@iot.id'])}/Observations",
                           {"phenomenonTime": f"2024-08-02T0{i}:00:00Z", "result": i})
    got = await async_wait_until(lambda: (o := observations_of(sta, ds, {"$orderby": "phenomenonTime",
                                                                          "$expand": "FeatureOfInterest"}))
                                 and len(o) == 3 and o)
    assert [o["result"] for o in got] == [0, 1, 2]
    assert all(o["FeatureOfInterest"]["feature"]["type"] == "Point" for o in got)


async def test_publish_on_feature_of_interest_observations_topic(sta: Sta) -> None:
    """/req/create-observations-via-mqtt/observations-creation: publishing on
    v1.1/FeaturesOfInterest(<id>)/Observations links the Observation to that FeatureOfInterest."""
    ds = await asyncio.to_thread(sta.datastream)
    foi = await asyncio.to_thread(sta.feature)
    await mqtt_publish(sta, f"{VERSION}/{path('FeaturesOfInterest', foi['@iot.id'])}/Observations",
                       {"phenomenonTime": "2024-08-03T00:00:00Z", "result": "wet",
                        "Datastream": {"@iot.id": ds["@iot.id"]}})
    got = await async_wait_until(lambda: observations_of(sta, ds, {"$expand": "FeatureOfInterest"}))
    assert [o["result"] for o in got] == ["wet"]
    assert got[0]["FeatureOfInterest"]["@iot.id"] == foi["@iot.id"]


async def test_invalid_publication_creates_nothing(sta: Sta) -> None:
    """/req/create-observations-via-mqtt/observations-creation: a publication that would be an invalid POST (no
    result, or not JSON) creates no Observation, and the service keeps accepting later ones."""
    ds = await asyncio.to_thread(sta.located_datastream)
    topic = f"{VERSION}/{path('Datastreams', ds['@iot.id'])}/Observations"
    await mqtt_publish(sta, topic, {"phenomenonTime": "2024-08-04T00:00:00Z"})
    await mqtt_publish(sta, topic, "not an observation")
    await mqtt_publish(sta, topic, {"phenomenonTime": "2024-08-04T01:00:00Z", "result": 5})
    await async_wait_until(lambda: observations_of(sta, ds))
    await asyncio.sleep(0.3)
    got = await asyncio.to_thread(observations_of, sta, ds)
    assert [o["result"] for o in got] == [5]


async def test_mqtt_publishing_needs_a_token(sta: Sta) -> None:
    """Platform rule (DESIGN §3, MQTT username is an API token): an anonymous or unknown client cannot create
    Observations."""
    import aiomqtt

    ds = await asyncio.to_thread(sta.located_datastream)
    topic = f"{VERSION}/{path('Datastreams', ds['@iot.id'])}/Observations"
    for username in ("cd_not_a_token", None):
        # refused at CONNECT, disconnected on the publish, or silently dropped: all fine, as long as nothing is stored
        with contextlib.suppress(aiomqtt.MqttError):
            async with aiomqtt.Client(sta.mqtt_host, sta.mqtt_port, username=username,
                                      identifier=unique("cf-bad")) as client:
                await client.publish(topic, b'{"phenomenonTime": "2024-08-05T00:00:00Z", "result": 1}', qos=1)
    await mqtt_publish(sta, topic, {"phenomenonTime": "2024-08-05T01:00:00Z", "result": 3})   # with the token
    await async_wait_until(lambda: observations_of(sta, ds))
    await asyncio.sleep(0.3)
    assert [o["result"] for o in await asyncio.to_thread(observations_of, sta, ds)] == [3]
