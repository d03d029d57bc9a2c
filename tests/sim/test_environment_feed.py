"""The environment feed: deterministic, driven by the real series, with an early storm above the alert
thresholds, canal levels that follow the rain with a lag, a DO dip; and end to end against a running platform."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from citydata.app import Platform
from citydata.sim import Simulator, SimulatorConfig
from citydata.sim.devices import phuket_devices, rain_stations
from citydata.sim.environment import (
    DO_LOW_MG_L,
    RAIN_1H_ALERT_MM,
    RAIN_24H_ALERT_MM,
    STEPS_PER_DAY,
    EnvironmentModel,
    daily_rain_library,
)
from tests.conftest import bearer, free_port, make_settings, token_for

START = datetime(2026, 11, 21, 2, 34, tzinfo=UTC)


def _model(seed: int, start: datetime = START) -> EnvironmentModel:
    return EnvironmentModel(phuket_devices(random.Random(seed)), seed, start)


def _window_max(values: list[float], width: int) -> float:
    return max(sum(values[i:i + width]) for i in range(len(values) - width + 1))


def test_same_seed_same_values_other_seed_other_values() -> None:
    a, b, c = _model(3), _model(3), _model(4)
    steps = STEPS_PER_DAY
    series_a = {d.id: a.series(d.id, steps) for d in a.devices}
    assert series_a == {d.id: b.series(d.id, steps) for d in b.devices}
    assert series_a != {d.id: c.series(d.id, steps) for d in c.devices}
    assert len(series_a) == 19
    assert [a.time_of(k) for k in (0, 1, 6)] == [START, START + timedelta(minutes=10), START + timedelta(hours=1)]


def test_replayed_days_keep_the_real_daily_totals() -> None:
    """Without the storm cells, a gauge's 144 steps of a local day add up to its ThaiWater station's total."""
    model = _model(5)
    _, library = daily_rain_library()
    station_of = {dev: station for dev, station, _, _ in rain_stations()}
    first_full_day = next(k for k in range(STEPS_PER_DAY) if model._day_and_slot(k)[1] == 0)
    checked = 0
    for gauge in model.gauges:
        for day in range(1, 4):
            start = first_full_day + (day - 1) * STEPS_PER_DAY
            assert model._day_and_slot(start) == (day, 0)
            total = sum(model.base_rain(gauge.id, k) for k in range(start, start + STEPS_PER_DAY))
            real = library[station_of[gauge.id]][model.library_day(day)]
            assert abs(total - round(real, 1)) < 1e-6, (gauge.id, day)
            checked += real > 0
    assert checked > 0   # some of those days had rain


def test_the_early_storm_exceeds_the_one_hour_and_24_hour_thresholds() -> None:
    for seed in (1, 2, 7):
        model = _model(seed)
        centre = model.storms[0].centre
        first_two_hours = model.series(centre, 12 + 6)
        assert _window_max(first_two_hours[:12 + 5], 6) > RAIN_1H_ALERT_MM   # an hour ending in the first 2 h
        day = model.series(centre, STEPS_PER_DAY)
        assert sum(day) > RAIN_24H_ALERT_MM
        # the cell is weaker away from its centre
        others = [_window_max(model.series(g.id, 24), 6) for g in model.gauges if g.id != centre]
        assert max(others) < _window_max(first_two_hours, 6)


def test_canal_levels_rise_after_the_rain_with_a_lag_and_recede() -> None:
    for seed in (1, 2, 7):
        model = _model(seed)
        steps = 48
        # the canal under the early storm
        canal = next(c for c in model.canals if model.upstream[c.id][0][0] == model.storms[0].centre)
        rain = [sum(w * model.rain(g, k) for g, w in model.upstream[canal.id]) for k in range(steps)]
        level = model.series(canal.id, steps)
        rain_peak = max(range(steps), key=lambda k: rain[k])
        level_peak = max(range(steps), key=lambda k: level[k])
        assert rain[rain_peak] > 5
        assert level_peak > rain_peak                       # the level lags the rain
        assert level[level_peak] - level[0] > 0.5           # rises well above its base
        assert level[rain_peak] < level[level_peak]
        assert level[-1] < level[level_peak] - 0.4          # then recedes
        # a canal far from the storm barely moves
        quiet = min(model.canals, key=lambda c: max(model.series(c.id, steps)) - model.series(c.id, 1)[0])
        assert max(model.series(quiet.id, steps)) - level[0] < level[level_peak] - level[0]


def test_dissolved_oxygen_dips_below_the_threshold_at_one_beach() -> None:
    model = _model(7)
    low = {p.id for p in model.probes if min(model.series(p.id, STEPS_PER_DAY)) < DO_LOW_MG_L}
    assert low == {model.dip_device}
    assert "beach" in model.by_id[model.dip_device].name.lower()
    values = model.series(model.dip_device, STEPS_PER_DAY)
    assert all(2.5 < v < 10 for v in values)
    assert values[model.dip_step + model.dip_steps + 1] > DO_LOW_MG_L   # it recovers


async def test_feed_reports_every_datastream_of_a_running_platform(tmp_path: Path) -> None:
    # only the sensor side is under test: the CCTV and WiFi capabilities stay off to keep a busy machine's CPU
    settings = make_settings(tmp_path, mqtt_url=f"embedded://127.0.0.1:{free_port()}", http_port=free_port(),
                             vision_enabled=False, wifi_enabled=False)
    async with Platform(settings, serve_http=True) as p:
        token = await token_for(p, "admin")
        seen: dict[str, int] = {}

        async def watch() -> None:   # what MQTT devices publish, as any subscriber sees it
            async with aiomqtt.Client("127.0.0.1", p.mqtt_port, username=token, identifier="feed-test") as c:
                await c.subscribe("v1.1/#", qos=1)
                async for message in c.messages:
                    topic = str(message.topic)
                    seen[topic] = seen.get(topic, 0) + 1

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.3)
        began = datetime.now(UTC)
        sim = Simulator(SimulatorConfig(url=p.settings.base_url, token=token, speed=6000, seed=1, duration_s=5.0,
                                        mqtt_url=p.mqtt_url))
        stats = await sim.run()
        await asyncio.sleep(0.5)
        watcher.cancel()
        assert stats.errors == 0, stats
        assert stats.things_created == 19 and stats.steps >= 3   # several simulated 10-minute steps
        assert stats.observations_http > 0 and stats.observations_mqtt > 0
        feed = sim.environment
        assert feed is not None and len(feed.streams) == 19 and feed.loggers

        async with httpx.AsyncClient(base_url=p.settings.base_url, headers=bearer(token)) as http:
            things = (await http.get("/v1.1/Things", params={"$count": "true", "$top": "100"})).json()
            assert things["@iot.count"] == 19
            mqtt_routed = any(r.pattern.startswith("v1.1/") for r in (p.bridge.routes if p.bridge else []))
            horizon = began + timedelta(seconds=600 * (stats.steps + 1))
            for device in sim.devices:
                stream = feed.streams[device.id]
                if device.channel == "mqtt":
                    assert seen.get(f"v1.1/Datastreams({stream})/Observations", 0) > 0, device.id
                    if not mqtt_routed:
                        continue   # the platform does not ingest SensorThings MQTT publishes (yet)
                body = await _observations(http, stream)
                assert body["@iot.count"] > 0, device.id
                latest = datetime.fromisoformat(body["value"][0]["phenomenonTime"].replace("Z", "+00:00"))
                if device.id != sim.silent_device.id:
                    assert began - timedelta(minutes=10) <= latest <= horizon, (device.id, latest)
                    assert body["@iot.count"] >= 3
                    expected = feed.model.value(device.id, round((latest - feed.model.start) / timedelta(minutes=10)))
                    assert body["value"][0]["result"] == expected

        # a second run finds the Things instead of creating them again
        again = Simulator(SimulatorConfig(url=p.settings.base_url, token=token, speed=6000, seed=1, duration_s=0.2,
                                          mqtt_url=p.mqtt_url))
        stats2 = await again.run()
        assert stats2.things_created == 0 and again.environment is not None
        assert again.environment.streams == feed.streams


async def _observations(http: httpx.AsyncClient, stream: int) -> Any:
    for _ in range(50):
        response = await http.get(f"/v1.1/Datastreams({stream})/Observations",
                                  params={"$count": "true", "$orderby": "phenomenonTime desc", "$top": "1"})
        body = response.json()
        if body.get("@iot.count"):
            return body
        await asyncio.sleep(0.1)
    return body
