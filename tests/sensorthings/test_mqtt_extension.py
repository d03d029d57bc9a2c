"""SensorThings MQTT extension (OGC 18-088 v1.1 section 14): create Observations by publishing, receive updates
by subscribing; on the embedded broker (ack after store), the shared Mosquitto and a private, restarted one."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from sqlalchemy import select

from citydata.app import Platform
from citydata.errors import ValidationFailed
from citydata.sensorthings import model
from citydata.sensorthings import schema as s
from citydata.sensorthings.mqtt import SensorThingsMqtt, creation_target, project
from citydata.store.schema import observations
from tests.conftest import REQUIRE, free_port, make_settings, token_for

T0, T1, T2, T3 = ("2024-05-01T10:00:00Z", "2024-05-01T10:05:00Z", "2024-05-01T10:10:00Z", "2024-05-01T10:15:00Z")
UNIT = {"name": "millimetre", "symbol": "mm", "definition": "http://qudt.org/vocab/unit/MilliM"}


async def _until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout}s")
        await asyncio.sleep(0.02)


@dataclass
class Streams:
    thing: int
    ds: int
    mds: int
    foi: int


def _sensor(name: str) -> dict[str, Any]:
    return {"name": name, "description": "tipping bucket", "encodingType": "application/pdf", "metadata": "spec.pdf"}


def _prop(name: str) -> dict[str, Any]:
    return {"name": name, "definition": f"http://example.org/{name}", "description": name}


async def _streams(p: Platform, name: str = "gauge") -> Streams:
    """A Thing (with a Location) holding one Datastream and one MultiDatastream, plus a FeatureOfInterest."""
    thing = await p.sta.writer.create(model.THING, {
        "name": name, "description": "rain gauge at Patong",
        "Locations": [{"name": "Patong", "description": "beach road", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [98.296, 7.896]}}],
        "Datastreams": [{"name": f"{name} rain", "description": "rain per 5 min", "unitOfMeasurement": UNIT,
                         "observationType": model.OM_MEASUREMENT, "Sensor": _sensor(f"{name} bucket"),
                         "ObservedProperty": _prop("rain")}],
        "MultiDatastreams": [{"name": f"{name} wind", "description": "speed and direction",
                              "unitOfMeasurements": [UNIT, UNIT], "observationType": model.OM_COMPLEX,
                              "multiObservationDataTypes": [model.OM_MEASUREMENT, model.OM_MEASUREMENT],
                              "Sensor": _sensor(f"{name} vane"),
                              "ObservedProperties": [_prop("wind_speed"), _prop("wind_direction")]}]})
    ds = await p.store.scalar(select(s.datastreams.c.id).where(s.datastreams.c.thing_id == thing))
    mds = await p.store.scalar(select(s.multi_datastreams.c.id).where(s.multi_datastreams.c.thing_id == thing))
    foi = await p.sta.writer.create(model.FEATURE_OF_INTEREST, {
        "name": "Patong catchment", "description": "drains to the bay", "encodingType": "application/geo+json",
        "feature": {"type": "Point", "coordinates": [98.3, 7.9]}})
    return Streams(thing, int(ds), int(mds), foi)


async def _rows(p: Platform, stream: int) -> list[Any]:
    return list(await p.store.fetch_all(select(observations).where(observations.c.datastream_id == stream)
                                        .order_by(observations.c.phenomenon_time)))


async def _results(p: Platform, stream: int) -> list[Any]:
    return [r["result_number"] if r["result_number"] is not None else r["result_json"] for r in await _rows(p, stream)]


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def _sta(p: Platform) -> SensorThingsMqtt:
    assert p.sta_mqtt is not None
    return p.sta_mqtt


def _code(granted: Any) -> int:
    """The SUBACK return code of a one-topic subscribe (0x80: refused)."""
    first = granted[0]
    return int(first.value if hasattr(first, "value") else first)


class Listener:
    """An MQTT subscriber that keeps every message by topic."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.got: dict[str, list[Any]] = {}
        self.task: asyncio.Task[None] | None = None

    async def subscribe(self, *topics: str) -> list[int]:
        return [_code(await self.client.subscribe(topic, qos=1)) for topic in topics]

    def start(self) -> None:
        async def run() -> None:
            async for message in self.client.messages:
                raw = message.payload if isinstance(message.payload, bytes) else b""
                self.got.setdefault(str(message.topic), []).append(orjson.loads(raw) if raw else None)
        self.task = asyncio.create_task(run())

    async def wait(self, topic: str, n: int = 1, timeout: float = 10.0) -> list[Any]:
        async def enough() -> list[Any] | None:
            items = self.got.get(topic, [])
            return items if len(items) >= n else None
        return list(await _until(enough, timeout, f"{n} message(s) on {topic}"))

    async def notes(self, topic: str, n: int = 1, timeout: float = 10.0) -> list[Any]:
        """The platform's notifications on ``topic`` (not devices' messages forwarded by an external broker)."""
        async def enough() -> list[Any] | None:
            items = [m for m in self.got.get(topic, []) if isinstance(m, dict) and "@iot.selfLink" in m]
            return items if len(items) >= n else None
        return list(await _until(enough, timeout, f"{n} notification(s) on {topic}"))


@contextlib.asynccontextmanager
async def listening(host: str, port: int, *topics: str, **kwargs: Any) -> AsyncIterator[Listener]:
    async with aiomqtt.Client(host, port, identifier=f"listener-{free_port()}", **kwargs) as c:
        listener = Listener(c)
        codes = await listener.subscribe(*topics)
        assert all(code < 0x80 for code in codes), codes
        listener.start()
        try:
            yield listener
        finally:
            assert listener.task is not None
            listener.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await listener.task


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path, mqtt_url=f"embedded://127.0.0.1:{free_port()}")) as p:
        yield p


def test_creation_topics_parse() -> None:
    assert creation_target("v1.1/Observations").stream_id is None
    assert creation_target("v1.1/Datastreams(12)/Observations").stream_id == 12
    multi = creation_target("v1.1/MultiDatastreams(3)/Observations")
    assert (multi.stream_id, multi.multi) == (3, True)
    assert creation_target("v1.1/FeaturesOfInterest(7)/Observations").foi_id == 7
    for bad in ("v1.1/Things(1)/Observations", "v1.1/Datastreams(x)/Observations", "v1.0/Observations",
                "v1.1/Datastreams(1)/Observations/extra"):
        with pytest.raises(ValidationFailed, match="not a SensorThings creation topic"):
            creation_target(bad)
    body = {"@iot.id": 4, "@iot.selfLink": "x", "result": 1, "phenomenonTime": T0,
            "Datastream@iot.navigationLink": "y"}
    assert project(body, ["result", "id", "Datastream"]) == {"@iot.id": 4, "result": 1,
                                                             "Datastream@iot.navigationLink": "y"}


# -- create via MQTT on the embedded broker ---------------------------------------------------------------------

async def test_each_creation_topic_stores_before_the_puback(embedded: Platform) -> None:
    p = embedded
    st = await _streams(p)
    token = await token_for(p, "device")
    async with aiomqtt.Client("127.0.0.1", p.mqtt_port, username=token, identifier="sta-dev-1") as dev:
        # publish() returns when the PUBACK arrives: each Observation must be readable by then, without waiting
        await dev.publish("v1.1/Observations", _json({"Datastream": {"@iot.id": st.ds}, "result": 1.5,
                                                      "phenomenonTime": T0}), qos=1)
        assert await _results(p, st.ds) == [1.5]
        await dev.publish(f"v1.1/Datastreams({st.ds})/Observations", _json({"result": 2.5, "phenomenonTime": T1}),
                          qos=1)
        assert await _results(p, st.ds) == [1.5, 2.5]
        await dev.publish(f"v1.1/MultiDatastreams({st.mds})/Observations",
                          _json({"result": [4.0, 270.0], "phenomenonTime": T0}), qos=1)
        assert await _results(p, st.mds) == [[4.0, 270.0]]
        await dev.publish("v1.1/Observations", _json({"MultiDatastream": {"@iot.id": st.mds}, "result": [5.0, 90.0],
                                                      "phenomenonTime": T1}), qos=1)
        assert await _results(p, st.mds) == [[4.0, 270.0], [5.0, 90.0]]
        await dev.publish(f"v1.1/FeaturesOfInterest({st.foi})/Observations",
                          _json({"Datastream": {"@iot.id": st.ds}, "result": 3.5, "phenomenonTime": T2}), qos=1)
        rows = await _rows(p, st.ds)
        assert [r["result_number"] for r in rows] == [1.5, 2.5, 3.5]
        assert rows[2]["foi_id"] == st.foi and rows[0]["foi_id"] != st.foi   # the first ones got the generated FoI
        for i in range(10):   # the property holds for every message, not by luck of timing
            await dev.publish(f"v1.1/Datastreams({st.ds})/Observations",
                              _json({"result": float(i), "phenomenonTime": f"2024-05-02T00:{i:02d}:00Z"}), qos=1)
            assert len(await _rows(p, st.ds)) == 4 + i
        # QoS 2: stored before the PUBCOMP
        await dev.publish(f"v1.1/Datastreams({st.ds})/Observations", _json({"result": 99.0, "phenomenonTime": T3}),
                          qos=2)
        assert (await _results(p, st.ds))[3] == 99.0
    assert _sta(p).stats.created == 16
    assert 'citydata_ingested_total{channel="mqtt",kind="observation"} 16.0' in p.metrics.render().decode()


async def test_redelivered_and_retained_publishes_are_stored_once(embedded: Platform) -> None:
    p = embedded
    st = await _streams(p)
    token = await token_for(p, "device")
    topic = f"v1.1/Datastreams({st.ds})/Observations"
    payload = _json({"result": 7.25, "phenomenonTime": T0})
    async with aiomqtt.Client("127.0.0.1", p.mqtt_port, username=token, identifier="sta-dev-2") as dev:
        await dev.publish(topic, payload, qos=1)
        await dev.publish(topic, payload, qos=1, retain=True)
        await dev.publish(topic, payload, qos=0)
    # a protocol-level redelivery: the same packet id again with the DUP flag, as a device does after reconnecting
    acks = await asyncio.to_thread(_raw_publish, p.mqtt_port, token, topic, payload)
    assert acks == [b"\x40\x02\x00\x07", b"\x40\x02\x00\x07"]
    await _until(lambda: _duplicates(p, 4), what="the QoS 0 copy handled")
    assert await _results(p, st.ds) == [7.25]
    assert _sta(p).stats.created == 1
    # the creation message was taken by the platform, not kept by the broker as a retained message
    async with listening("127.0.0.1", p.mqtt_port, topic) as listener:
        await asyncio.sleep(0.3)
        assert listener.got == {}


async def _duplicates(p: Platform, n: int) -> bool:
    return bool(_sta(p).stats.duplicates >= n)


def _encode_len(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def _raw_publish(port: int, token: str, topic: str, payload: bytes, *, dup_too: bool = True) -> list[bytes]:
    """MQTT 3.1.1 by hand: CONNECT, PUBLISH QoS 1 packet id 7, then (``dup_too``) the same with DUP=1; returns
    what the broker answered to each (a PUBACK, or b"" when it closed the connection instead)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        body = _field(b"MQTT") + bytes([4, 0x80 | 0x02]) + (60).to_bytes(2, "big") + _field(b"sta-raw") \
            + _field(token.encode())
        sock.sendall(b"\x10" + _encode_len(len(body)) + body)
        assert sock.recv(4) == b"\x20\x02\x00\x00"
        answers = []
        for first in (0x32, 0x3A) if dup_too else (0x32,):   # PUBLISH QoS 1; then DUP | QoS 1
            packet = _field(topic.encode()) + (7).to_bytes(2, "big") + payload
            sock.sendall(bytes([first]) + _encode_len(len(packet)) + packet)
            answers.append(sock.recv(4))
        with contextlib.suppress(OSError):
            sock.sendall(b"\xe0\x00")
        return answers


async def test_refused_messages_are_dead_lettered_and_the_session_survives(embedded: Platform) -> None:
    p = embedded
    st = await _streams(p)
    token = await token_for(p, "device")
    bad = [("v1.1/Observations", b"{not json"),
           ("v1.1/Observations", _json([{"result": 1, "Datastream": {"@iot.id": st.ds}}])),
           ("v1.1/Observations", _json({"result": 1})),
           ("v1.1/Datastreams(999999)/Observations", _json({"result": 1})),
           (f"v1.1/MultiDatastreams({st.mds})/Observations", _json({"result": 5})),
           (f"v1.1/Datastreams({st.ds})/Observations", _json({"phenomenonTime": T0})),
           (f"v1.1/Things({st.thing})/Observations", _json({"result": 1}))]
    async with aiomqtt.Client("127.0.0.1", p.mqtt_port, username=token, identifier="sta-dev-3") as dev:
        for topic, payload in bad:
            await dev.publish(topic, payload, qos=1)
        await dev.publish(f"v1.1/Datastreams({st.ds})/Observations", _json({"result": 9.0, "phenomenonTime": T1}),
                          qos=1)
        # dead letters are recorded before the PUBACK too
        letters = await p.dead_letters.list(source="mqtt")
        assert len(letters) == len(bad)
        assert await _results(p, st.ds) == [9.0]
    by_topic = {d["channel"]: d["reason"] for d in letters}
    assert by_topic["v1.1/Datastreams(999999)/Observations"].startswith("stream_not_found")
    assert "not a SensorThings creation topic" in by_topic[f"v1.1/Things({st.thing})/Observations"]
    reasons = " | ".join(d["reason"] for d in letters)
    assert "invalid_json" in reasons and "one Observation" in reasons and "Datastream: is required" in reasons
    assert "an array of 2 values" in reasons and "result" in reasons
    assert any(d["payload"] == "{not json" for d in letters)
    assert f'citydata_dead_letters_total{{source="mqtt"}} {float(len(bad))}' in p.metrics.render().decode()
    assert _sta(p).stats.refused == len(bad)


async def test_a_message_that_cannot_be_taken_is_not_acknowledged(embedded: Platform) -> None:
    p = embedded
    st = await _streams(p)
    token = await token_for(p, "device")
    await _sta(p).stop()   # as during shutdown: the broker is still up, the platform no longer takes creations
    answers = await asyncio.to_thread(_raw_publish, p.mqtt_port, token, f"v1.1/Datastreams({st.ds})/Observations",
                                      _json({"result": 8.0, "phenomenonTime": T0}), dup_too=False)
    # no PUBACK: the connection is closed instead, so the device sends the message again in its next session;
    # nothing stored, nothing dead-lettered
    assert answers == [b""]
    assert await _rows(p, st.ds) == []
    assert await p.dead_letters.count("mqtt") == 0


# -- receive updates --------------------------------------------------------------------------------------------

async def test_updates_reach_set_entity_property_navigation_and_select_topics(embedded: Platform) -> None:
    p = embedded
    st = await _streams(p)
    token = await token_for(p, "device")
    t = st.thing
    topics = ["v1.1/Things", f"v1.1/Things({t})", f"v1.1/Things({t})/name", f"v1.1/Things({t})/description",
              f"v1.1/Things({t})/Datastreams", f"v1.1/Things({t})?$select=name", "v1.1/Observations",
              f"v1.1/Datastreams({st.ds})/Observations", f"v1.1/FeaturesOfInterest({st.foi})/Observations",
              "v1.1/Observations?$select=result,phenomenonTime", "v1.1/+/Observations?$select=id"]
    async with listening("127.0.0.1", p.mqtt_port, *topics) as sub:   # anonymous: read_public is on by default
        other = await p.sta.writer.create(model.THING, {"name": "tide gauge", "description": "Chalong pier"})
        created = (await sub.wait("v1.1/Things"))[0]
        assert created["@iot.id"] == other and created["name"] == "tide gauge"
        assert created["@iot.selfLink"].endswith(f"/v1.1/Things({other})")

        new_ds = await p.sta.writer.create(model.DATASTREAM, {
            "name": "level", "description": "water level", "unitOfMeasurement": UNIT,
            "observationType": model.OM_MEASUREMENT, "Thing": {"@iot.id": t}, "Sensor": _sensor("radar"),
            "ObservedProperty": _prop("level")})
        joined = (await sub.wait(f"v1.1/Things({t})/Datastreams"))[0]
        assert joined["@iot.id"] == new_ds and joined["name"] == "level"

        await p.sta.writer.update(model.THING, t, {"name": "renamed gauge"})
        entity = (await sub.wait(f"v1.1/Things({t})"))[0]
        assert entity["name"] == "renamed gauge" and entity["description"] == "rain gauge at Patong"
        assert (await sub.wait(f"v1.1/Things({t})/name")) == [{"name": "renamed gauge"}]
        assert (await sub.wait(f"v1.1/Things({t})?$select=name")) == [{"name": "renamed gauge"}]

        async with aiomqtt.Client("127.0.0.1", p.mqtt_port, username=token, identifier="sta-dev-4") as dev:
            await dev.publish(f"v1.1/Datastreams({st.ds})/Observations", _json({
                "result": 4.25, "phenomenonTime": T0, "FeatureOfInterest": {"@iot.id": st.foi}}), qos=1)
        stored = (await _rows(p, st.ds))[0]
        note = (await sub.wait("v1.1/Observations"))[0]
        assert note["@iot.id"] == stored["id"] and note["result"] == 4.25 and note["phenomenonTime"] == T0
        assert note["@iot.selfLink"].endswith(f"/v1.1/Observations({stored['id']})")
        assert (await sub.wait(f"v1.1/Datastreams({st.ds})/Observations")) == [note]
        assert (await sub.wait(f"v1.1/FeaturesOfInterest({st.foi})/Observations")) == [note]
        assert (await sub.wait("v1.1/Observations?$select=result,phenomenonTime")) == [
            {"result": 4.25, "phenomenonTime": T0}]
        by_wildcard = await sub.wait(f"v1.1/Datastreams({st.ds})/Observations?$select=id")
        assert by_wildcard == [{"@iot.id": stored["id"]}]
        assert (await sub.wait(f"v1.1/FeaturesOfInterest({st.foi})/Observations?$select=id")) == by_wildcard
        await asyncio.sleep(0.2)
    # only what changed: no description message; the device's own publish was not forwarded, only the
    # platform's notification; and the platform did not take its own notification for a new Observation
    assert f"v1.1/Things({t})/description" not in sub.got
    assert len(sub.got[f"v1.1/Datastreams({st.ds})/Observations"]) == 1
    assert len(sub.got["v1.1/Things"]) == 1
    assert await _results(p, st.ds) == [4.25]
    assert await p.dead_letters.count("mqtt") == 0


async def test_nobody_listening_means_no_work(embedded: Platform) -> None:
    p = embedded
    st = await _streams(p)
    sta = _sta(p)
    await p.sta.ingest.create([{"result": 1.0, "phenomenonTime": T0}], stream_id=st.ds)
    await _until(lambda: _events(sta, 1), what="the event seen")
    assert sta.stats.published == 0 and sta.stats.idle == sta.stats.events
    async with listening("127.0.0.1", p.mqtt_port, "v1.1/Observations") as sub:
        await p.sta.ingest.create([{"result": 2.0, "phenomenonTime": T1}], stream_id=st.ds)
        assert (await sub.wait("v1.1/Observations"))[0]["result"] == 2.0
    # one topic listened: one message, not the collection topics nobody subscribed to
    assert sta.stats.published == 1


async def _events(sta: SensorThingsMqtt, n: int) -> bool:
    return bool(sta.stats.events >= n)


# -- access --------------------------------------------------------------------------------------------------------

async def test_anonymous_and_read_only_clients_subscribe_but_cannot_create(embedded: Platform) -> None:
    p = embedded
    st = await _streams(p)
    topic = f"v1.1/Datastreams({st.ds})/Observations"
    analyst = await token_for(p, "analyst")
    device = await token_for(p, "device")
    for username in (None, analyst):   # anonymous, then a read-only token
        async with aiomqtt.Client("127.0.0.1", p.mqtt_port, identifier=f"ro-{free_port()}", username=username) as c:
            assert _code(await c.subscribe("v1.1/#", qos=1)) < 0x80
            assert _code(await c.subscribe("citydata/devices/+/heartbeat", qos=1)) == 0x80
            await c.publish(topic, _json({"result": 66.0, "phenomenonTime": T0}), qos=1)
            # a creation the client was allowed to make would be stored by now (ack after store)
            assert await _rows(p, st.ds) == []
    async with aiomqtt.Client("127.0.0.1", p.mqtt_port, username=device, identifier="sta-dev-5") as c:
        await c.publish(topic, _json({"result": 1.0, "phenomenonTime": T1}), qos=1)
    assert await _results(p, st.ds) == [1.0]
    assert await p.dead_letters.count("mqtt") == 0


async def test_anonymous_clients_are_refused_when_reads_are_not_public(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, mqtt_url=f"embedded://127.0.0.1:{free_port()}", read_public=False)
    async with Platform(settings) as p:
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", p.mqtt_port, identifier="anon-closed") as c:
                await c.subscribe("v1.1/Observations")
        reader = await token_for(p, "analyst")
        async with aiomqtt.Client("127.0.0.1", p.mqtt_port, username=reader, identifier="reader-ok") as c:
            assert _code(await c.subscribe("v1.1/Observations", qos=1)) < 0x80


# -- external brokers ------------------------------------------------------------------------------------------

async def test_external_mosquitto_creates_and_notifies(tmp_path: Path, mqtt_url: str) -> None:
    settings = make_settings(tmp_path, mqtt_url=mqtt_url, mqtt_client_id=f"citydata-sta-{free_port()}")
    async with Platform(settings) as p:
        # ids no other platform on the shared broker has, so our topics are ours alone
        await p.store.allocate_ids(s.datastreams, random.randint(20_000, 60_000))
        st = await _streams(p)
        topic = f"v1.1/Datastreams({st.ds})/Observations"
        async with listening(p.mqtt_host, p.mqtt_port, topic) as sub:
            async with aiomqtt.Client(p.mqtt_host, p.mqtt_port, identifier=f"ext-dev-{free_port()}") as dev:
                await dev.publish(topic, _json({"result": 12.5, "phenomenonTime": T0}), qos=1)
            notes = await sub.notes(topic)
            rows = await _rows(p, st.ds)
            assert [r["result_number"] for r in rows] == [12.5]
            assert len(notes) == 1 and notes[0]["@iot.id"] == rows[0]["id"] and notes[0]["result"] == 12.5
            # the broker also forwarded the device's own message (an external broker cannot be told not to)
            assert {"result": 12.5, "phenomenonTime": T0} in (await sub.wait(topic, 2))
            await asyncio.sleep(0.3)
        # the notification came back to the platform's own subscription and was not taken as a creation
        assert _sta(p).stats.ignored >= 1
        assert await _results(p, st.ds) == [12.5]
        assert [d for d in await p.dead_letters.list(source="mqtt") if d["channel"] == topic] == []


@pytest.fixture
def persistent_mosquitto(tmp_path: Path) -> Iterator[Any]:
    """A private Mosquitto that keeps sessions and retained messages across restarts."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        if REQUIRE:
            pytest.fail("mosquitto is not installed")
        pytest.skip("mosquitto is not installed")
    port = free_port()
    # mosquitto started as root drops to its own user before writing its database: give it a directory it can
    # reach (pytest's tmp_path is private to us)
    db = Path(tempfile.mkdtemp(prefix="citydata-mosquitto-"))
    db.chmod(0o777)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {db}/\nautosave_interval 1\n")

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
            time.sleep(0.05)
        raise AssertionError("mosquitto did not start")

    class Handle:
        def __init__(self) -> None:
            self.port = port
            self.proc = start()

        def stop(self) -> None:
            self.proc.terminate()
            self.proc.wait(5)

        def start(self) -> None:
            self.proc = start()

    handle = Handle()
    try:
        yield handle
    finally:
        handle.stop()
        shutil.rmtree(db, ignore_errors=True)


async def test_broker_restart_platform_resubscribes_and_both_directions_flow(
        tmp_path: Path, persistent_mosquitto: Any) -> None:
    broker = persistent_mosquitto
    async with Platform(make_settings(tmp_path, mqtt_url=f"mqtt://127.0.0.1:{broker.port}")) as p:
        assert p.bridge is not None
        st = await _streams(p)
        sta = _sta(p)
        topic = f"v1.1/Datastreams({st.ds})/Observations"
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="restart-dev-1") as dev:
            await dev.publish(topic, _json({"result": 1.0, "phenomenonTime": T0}), qos=1, retain=True)
        await _until(lambda: _has(p, st.ds, 1), what="the retained creation stored")

        broker.stop()
        await _until(lambda: _not_connected(p), what="the bridge noticing the outage")
        started = time.monotonic()
        await p.sta.ingest.create([{"result": 2.0, "phenomenonTime": T1}], stream_id=st.ds)   # e.g. over HTTP
        assert time.monotonic() - started < 2.0     # ingest does not wait for the broker
        await _until(lambda: _dropped(sta), what="the notification counted as dropped")

        broker.start()
        await asyncio.wait_for(p.bridge.connected.wait(), 20)
        assert p.bridge.reconnects >= 1
        # on resubscribing, the broker sends the retained creation message again: it is not stored twice
        await _until(lambda: _duplicates(p, 1), what="the retained message redelivered")
        async with listening("127.0.0.1", broker.port, topic, f"v1.1/Things({st.thing})/name") as sub:
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier="restart-dev-2") as dev:
                await dev.publish(topic, _json({"result": 3.0, "phenomenonTime": T2}), qos=1)
            await _until(lambda: _has(p, st.ds, 3), what="the creation after the restart stored")
            assert [m["result"] for m in await sub.notes(topic)] == [3.0]
            await p.sta.writer.update(model.THING, st.thing, {"name": "after restart"})
            assert (await sub.wait(f"v1.1/Things({st.thing})/name")) == [{"name": "after restart"}]
        assert await _results(p, st.ds) == [1.0, 2.0, 3.0]
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="restart-dev-3") as dev:
            await dev.publish(topic, b"", qos=1, retain=True)   # clear the retained message


async def _has(p: Platform, stream: int, n: int) -> bool:
    return len(await _rows(p, stream)) >= n


async def _not_connected(p: Platform) -> bool:
    assert p.bridge is not None
    return not p.bridge.connected.is_set()


async def _dropped(sta: SensorThingsMqtt) -> bool:
    return bool(sta.stats.dropped_disconnected >= 1)
