"""MQTT ingest: the embedded broker checks tokens and topics; the bridge ingests, dead-letters and reconnects."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from citydata.app import Platform
from tests.conftest import REQUIRE, free_port, make_settings, token_for


async def _until(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _register(platform: Platform, device_id: str) -> None:
    from citydata.devices import DeviceIn

    await platform.devices.register(DeviceIn(id=device_id, kind="rain_gauge", name=device_id))


async def _last_seen(platform: Platform, device_id: str) -> Any:
    return (await platform.devices.get(device_id))["last_seen_at"]


@pytest.fixture
async def embedded(tmp_path: Path) -> Any:
    port = free_port()
    async with Platform(make_settings(tmp_path, mqtt_url=f"embedded://127.0.0.1:{port}")) as p:
        yield p


async def test_heartbeat_over_embedded_broker_with_token(embedded: Platform) -> None:
    await _register(embedded, "rain-mq-1")
    token = await token_for(embedded, "device")
    async with aiomqtt.Client("127.0.0.1", embedded.mqtt_port, username=token, identifier="dev1") as c:
        await c.publish("citydata/devices/rain-mq-1/heartbeat", b'{"battery": 77}', qos=1)
    assert await _until(lambda: _last_seen(embedded, "rain-mq-1"))
    assert (await embedded.devices.get("rain-mq-1"))["last_heartbeat"]["battery"] == 77


async def test_token_as_password_also_works(embedded: Platform) -> None:
    await _register(embedded, "rain-mq-2")
    token = await token_for(embedded, "device")
    async with aiomqtt.Client("127.0.0.1", embedded.mqtt_port, username="gauge", password=token,
                              identifier="dev2") as c:
        await c.publish("citydata/devices/rain-mq-2/heartbeat", b"{}", qos=1)
    assert await _until(lambda: _last_seen(embedded, "rain-mq-2"))


async def test_bad_token_is_refused(embedded: Platform) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", embedded.mqtt_port, username="cd_badbadbadbad_nope",
                                  identifier="intruder") as c:
            await c.publish("citydata/devices/x/heartbeat", b"{}", qos=1)


async def test_malformed_payload_is_dead_lettered_and_the_session_survives(embedded: Platform) -> None:
    await _register(embedded, "rain-mq-3")
    token = await token_for(embedded, "device")
    async with aiomqtt.Client("127.0.0.1", embedded.mqtt_port, username=token, identifier="dev3") as c:
        await c.publish("citydata/devices/rain-mq-3/heartbeat", b"{not json", qos=1)
        await c.publish("citydata/devices/rain-mq-3/heartbeat", b'{"battery": 500}', qos=1)
        await c.publish("citydata/devices/unknown-device/heartbeat", b"{}", qos=1)
        await c.publish("citydata/devices/rain-mq-3/heartbeat", b'{"battery": 50}', qos=1)
    assert await _until(lambda: _last_seen(embedded, "rain-mq-3"))
    letters = await _until(lambda: _dead(embedded, 3))
    reasons = " | ".join(d["reason"] for d in letters)
    assert "invalid heartbeat payload" in reasons and "device_not_found" in reasons
    assert all(d["channel"].startswith("citydata/devices/") for d in letters)
    assert 'citydata_dead_letters_total{source="mqtt"} 3.0' in embedded.metrics.render().decode()


async def _dead(platform: Platform, n: int) -> Any:
    items = await platform.dead_letters.list(source="mqtt")
    return items if len(items) >= n else None


async def test_device_token_bound_to_one_device_cannot_publish_for_another(embedded: Platform) -> None:
    for dev in ("mine", "theirs"):
        await _register(embedded, dev)
    token = await token_for(embedded, "device", device_id="mine")
    async with aiomqtt.Client("127.0.0.1", embedded.mqtt_port, username=token, identifier="dev4") as c:
        await c.publish("citydata/devices/theirs/heartbeat", b"{}", qos=1)
        await c.publish("citydata/devices/mine/heartbeat", b"{}", qos=1)
    assert await _until(lambda: _last_seen(embedded, "mine"))
    await asyncio.sleep(0.3)
    assert await _last_seen(embedded, "theirs") is None


async def test_bridge_on_external_mosquitto(tmp_path: Path, mqtt_url: str) -> None:
    async with Platform(make_settings(tmp_path, mqtt_url=mqtt_url,
                                      mqtt_client_id=f"citydata-test-{free_port()}")) as p:
        await _register(p, "rain-ext-1")
        host, port = p.mqtt_host, p.mqtt_port
        async with aiomqtt.Client(host, port, identifier=f"ext-dev-{free_port()}") as c:
            await c.publish("citydata/devices/rain-ext-1/heartbeat", b'{"battery": 61}', qos=1)
        assert await _until(lambda: _last_seen(p, "rain-ext-1"))


@pytest.fixture
def private_mosquitto(tmp_path: Path) -> Any:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        if REQUIRE:
            pytest.fail("mosquitto is not installed")
        pytest.skip("mosquitto is not installed")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    proc = {"p": start()}

    class Handle:
        def __init__(self) -> None:
            self.port = port

        def restart(self) -> None:
            proc["p"].terminate()
            proc["p"].wait(5)
            proc["p"] = start()

    yield Handle()
    proc["p"].terminate()
    proc["p"].wait(5)


async def test_bridge_reconnects_and_resubscribes_after_broker_restart(tmp_path: Path,
                                                                       private_mosquitto: Any) -> None:
    url = f"mqtt://127.0.0.1:{private_mosquitto.port}"
    await asyncio.sleep(0.3)
    async with Platform(make_settings(tmp_path, mqtt_url=url)) as p:
        await _register(p, "rain-rs-1")
        assert p.bridge is not None
        await asyncio.wait_for(p.bridge.connected.wait(), 10)
        private_mosquitto.restart()
        await _until(lambda: _not_connected(p), 10)
        await asyncio.wait_for(p.bridge.connected.wait(), 20)
        assert p.bridge.reconnects >= 1
        async with aiomqtt.Client("127.0.0.1", private_mosquitto.port, identifier="after-restart") as c:
            await c.publish("citydata/devices/rain-rs-1/heartbeat", b'{"battery": 42}', qos=1)
        assert await _until(lambda: _last_seen(p, "rain-rs-1"))
        ready = await p.readiness()
        assert ready["mqtt"]["ok"] is True


async def _not_connected(p: Platform) -> bool:
    assert p.bridge is not None
    return not p.bridge.connected.is_set()
