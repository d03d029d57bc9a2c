"""1,000 malformed MQTT messages (payloads and topics) against the platform's embedded broker: no crash, the
device's session survives, and every one is dead-lettered with its reason (dead letters counted = sent).

Two paths are exercised: SensorThings creation topics (taken by the broker before the PUBACK: the dead letter
is recorded before the device is acknowledged) and device heartbeats (routed to the platform's bridge session,
dead-lettered after the broker's acknowledgement).
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import aiomqtt
import orjson
from sqlalchemy import select

from citydata.app import Platform
from citydata.devices import DeviceIn
from citydata.sensorthings import model
from citydata.sensorthings import schema as s
from citydata.store.schema import observations
from tests.conftest import free_port, make_settings, token_for

N = 1000
UNIT = {"name": "millimetre", "symbol": "mm", "definition": "http://qudt.org/vocab/unit/MilliM"}


def malformed(rng: random.Random, ds: int, device: str) -> list[tuple[str, bytes]]:
    """``N`` messages, each of which the platform must refuse (none is empty or a platform notification, which
    are not creations and are ignored by design)."""
    good = {"phenomenonTime": "2026-01-01T00:00:00Z", "result": 1.0}
    text = orjson.dumps(good)

    def junk_bytes() -> bytes:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))).replace(b"\x00", b"\x01") or b"\x01"

    sta_topic = f"v1.1/Datastreams({ds})/Observations"
    payloads = [
        lambda: junk_bytes(),                                                # binary garbage
        lambda: text[: rng.randint(1, len(text) - 1)],                       # truncated JSON
        lambda: orjson.dumps([good, good]),                                  # an array, not one Observation
        lambda: orjson.dumps(rng.choice([1, "x", True, None, 2.5])),         # a JSON scalar
        lambda: orjson.dumps({"phenomenonTime": "2026-01-01T00:00:00Z"}),    # no result
        lambda: orjson.dumps({**good, "phenomenonTime": rng.choice(["yesterday", "2026-13-40T99:00:00Z", 17,
                                                                   "", None])}),
        lambda: orjson.dumps({**good, "result": rng.choice([{"a": [1] * 3}, "x" * 5]),
                              "resultQuality": {"bad": True}, "extra": 1}),  # unknown property
        lambda: orjson.dumps({**good, "Datastream": {"@iot.id": "nope"}}),
        lambda: b"\xff\xfe" + "น้ำท่วม".encode("utf-16-le"),              # not UTF-8
        lambda: b"{" * rng.randint(1, 3000),                                 # deep nesting
    ]
    topics = [
        lambda: (sta_topic, rng.choice(payloads)()),
        lambda: (f"v1.1/Datastreams({rng.randint(10**6, 10**9)})/Observations", orjson.dumps(good)),  # unknown
        lambda: (f"v1.1/{rng.choice(['Things', 'Sensors', 'Datastreams(x)', 'Datastreams()', 'Datastreams(1'])}"
                 f"/Observations", orjson.dumps(good)),                      # not a creation topic
        lambda: ("v1.1/Observations", orjson.dumps(good)),                   # no Datastream link
        lambda: (f"citydata/devices/{device}/heartbeat", rng.choice([
            junk_bytes(), b"{", orjson.dumps({"battery": rng.choice([-5, 101, "full"])}),
            orjson.dumps({"rssi": 40}), orjson.dumps({"unknown": 1}), orjson.dumps({"t": "2026-01-01T00:00:00"}),
            orjson.dumps([1, 2]), orjson.dumps({"status": "x" * 100})])),
        lambda: (f"citydata/devices/no-such-{rng.randint(0, 10**6)}/heartbeat", b'{"battery": 50}'),  # unknown
    ]
    return [rng.choice(topics)() for _ in range(N)]


async def test_a_thousand_malformed_messages_are_all_dead_lettered(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, mqtt_url=f"embedded://127.0.0.1:{free_port()}")
    async with Platform(settings) as p:
        thing = await p.sta.writer.create(model.THING, {
            "name": "fuzz", "description": "fuzz target",
            "Locations": [{"name": "Patong", "description": "d", "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": [98.296, 7.896]}}],
            "Datastreams": [{"name": "fuzz", "description": "d", "unitOfMeasurement": UNIT,
                             "observationType": model.OM_MEASUREMENT,
                             "Sensor": {"name": "s", "description": "s", "encodingType": "application/pdf",
                                        "metadata": "m"},
                             "ObservedProperty": {"name": "rain", "definition": "http://example.org/rain",
                                                  "description": "rain"}}]})
        ds = int(await p.store.scalar(select(s.datastreams.c.id).where(s.datastreams.c.thing_id == thing)))
        await p.devices.register(DeviceIn(id="fuzz-gauge", kind="rain_gauge", name="fuzz"))
        token = await token_for(p, "admin")
        messages = malformed(random.Random(8), ds, "fuzz-gauge")
        started = time.monotonic()
        async with aiomqtt.Client("127.0.0.1", p.mqtt_port, username=token, identifier="fuzzer") as dev:
            for i in range(0, N, 50):
                await asyncio.gather(*(dev.publish(t, b, qos=1) for t, b in messages[i:i + 50]))
            # the session survived: a good message is still stored
            await dev.publish(f"v1.1/Datastreams({ds})/Observations",
                              orjson.dumps({"phenomenonTime": "2026-02-01T00:00:00Z", "result": 7.0}), qos=1)
        deadline = time.monotonic() + 60
        while await p.dead_letters.count("mqtt") < N and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        count = await p.dead_letters.count("mqtt")
        assert count == N, f"{count} dead letters for {N} malformed messages"
        letters = await p.dead_letters.list(source="mqtt", limit=N)
        assert all(d["reason"] for d in letters)
        assert not any(d["reason"].startswith("internal_error") for d in letters), \
            [d["reason"] for d in letters if d["reason"].startswith("internal_error")][:5]
        assert f'citydata_dead_letters_total{{source="mqtt"}} {float(N)}' in p.metrics.render().decode()
        stored = [r["result_number"] for r in await p.store.fetch_all(
            select(observations).where(observations.c.datastream_id == ds))]
        assert stored == [7.0]
        assert (await p.store.ready())[0]
        print(f"{N} malformed messages dead-lettered in {time.monotonic() - started:.1f}s")
