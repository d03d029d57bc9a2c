"""The simulator is deterministic for a seed, and drives a real platform over HTTP and MQTT."""

from __future__ import annotations

import random
from pathlib import Path

from citydata.app import Platform
from citydata.sim import Simulator, SimulatorConfig
from citydata.sim.devices import phuket_devices, rain_stations
from tests.conftest import free_port, make_settings, token_for


def test_same_seed_same_fleet_and_silent_device() -> None:
    a = Simulator(SimulatorConfig(url="http://x", token="t", seed=3))
    b = Simulator(SimulatorConfig(url="http://x", token="t", seed=3))
    assert [(d.id, d.channel) for d in a.devices] == [(d.id, d.channel) for d in b.devices]
    assert a.silent_device.id == b.silent_device.id
    channels = {s: tuple(d.channel for d in phuket_devices(random.Random(s))) for s in range(6)}
    assert len(set(channels.values())) > 1   # the seed matters


def test_rain_gauges_sit_at_the_nine_thaiwater_stations() -> None:
    stations = rain_stations()
    assert len(stations) == 9
    for _, _, lat, lon in stations:
        assert 7.7 < lat < 8.2 and 98.25 < lon < 98.45


async def test_simulator_feeds_a_running_platform(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, mqtt_url=f"embedded://127.0.0.1:{free_port()}",
                             http_port=free_port())
    async with Platform(settings, serve_http=True) as p:
        token = await token_for(p, "admin")
        # heartbeats only: the environment feed has its own end-to-end test (tests/sim/test_environment_feed.py)
        sim = Simulator(SimulatorConfig(url=p.settings.base_url, token=token, speed=6000, seed=1,
                                        duration_s=3.0, mqtt_url=p.mqtt_url, environment=False))
        stats = await sim.run()
        assert stats.errors == 0
        assert stats.registered == len(sim.devices) == 19
        assert stats.heartbeats_http > 0 and stats.heartbeats_mqtt > 0
        devices = await p.devices.list()
        assert len(devices) == 19
        http_ids = {d.id for d in sim.devices if d.channel == "http"}
        mqtt_ids = {d.id for d in sim.devices if d.channel == "mqtt"} - {sim.silent_device.id}
        import asyncio

        for _ in range(100):
            seen = {d["id"] for d in await p.devices.list() if d["last_seen_at"]}
            if mqtt_ids <= seen:
                break
            await asyncio.sleep(0.05)
        assert http_ids <= seen and mqtt_ids <= seen
