"""The simulator's engine: talks to a platform at ``url`` with ``token`` over HTTP and MQTT, like real devices.

Time in the simulation runs ``speed`` times faster than the wall clock (one heartbeat round every simulated
minute). Alongside the heartbeats runs the environment feed (``citydata.sim.environment``): the sensors are
registered as SensorThings Things and report an Observation every simulated 10 minutes, with phenomenonTime in
simulated time (the run starts at the wall-clock time). The same seed gives the same fleet, the same channels,
the same silent device and, for the same start, the same values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import aiomqtt
import httpx
import orjson

from citydata.sim.devices import SimDevice, heartbeat, phuket_devices
from citydata.sim.environment import STEP_S, EnvironmentFeed, EnvironmentModel

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from citydata.sim.cameras import CameraFeed
    from citydata.sim.tourists import TouristFeed
    from citydata.sim.wifi import WifiFeed


@dataclass
class SimulatorConfig:
    url: str
    token: str
    speed: float = 60.0
    seed: int = 7
    duration_s: float | None = None       # wall-clock seconds; None runs until stopped
    mqtt_url: str | None = None           # default: what the platform's /api/v1/info says
    heartbeat_every_s: float = 60.0       # simulated seconds between heartbeat rounds
    environment: bool = True              # run the SensorThings environment feed too
    tourists: bool = True                 # run the tourist feed (arrivals, app reports, departures)
    wifi: bool = True                     # run the WiFi feed (hotspot sessions of tourists, residents)
    cameras: bool = False                 # run the CCTV feed (frames with faces, Thai plates, red-light runs)
    start: datetime | None = None         # simulated start time (default: now)


@dataclass
class SimulatorStats:
    registered: int = 0
    heartbeats_http: int = 0
    heartbeats_mqtt: int = 0
    errors: int = 0
    rounds: int = 0
    silent: list[str] = field(default_factory=list)
    things_created: int = 0
    observations_http: int = 0
    observations_mqtt: int = 0
    steps: int = 0


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.devices: list[SimDevice] = phuket_devices(self.rng)
        # One probe goes silent after a while: the absence rules must notice it.
        self.silent_device = self.rng.choice([d for d in self.devices if d.kind == "dissolved_oxygen"])
        self.silent_after_rounds = 30
        self.stats = SimulatorStats()
        self._stop = asyncio.Event()
        self.environment: EnvironmentFeed | None = None
        self.tourists: TouristFeed | None = None   # the tourist feed while it runs (its stats say what it did)
        self.wifi: WifiFeed | None = None          # the WiFi feed while it runs
        self.cameras: CameraFeed | None = None     # the CCTV feed while it runs

    def environment_model(self, start: datetime) -> EnvironmentModel:
        return EnvironmentModel(self.devices, self.config.seed, start)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> SimulatorStats:
        cfg = self.config
        headers = {"Authorization": f"Bearer {cfg.token}"}
        async with httpx.AsyncClient(base_url=cfg.url.rstrip("/"), headers=headers, timeout=30) as http:
            info = (await http.get("/api/v1/info")).json()
            mqtt_url = cfg.mqtt_url or info.get("mqtt_url")
            await self._register(http)
            start = cfg.start or datetime.now(UTC)
            if cfg.environment:
                silent_after_s = self.silent_after_rounds * cfg.heartbeat_every_s
                self.environment = EnvironmentFeed(self.environment_model(start), silent=self.silent_device.id,
                                                   silent_after_step=int(silent_after_s // STEP_S))
                await self.environment.setup(http)
                self.stats.things_created = self.environment.created
            deadline = None if cfg.duration_s is None else time.monotonic() + cfg.duration_s
            mqtt_task = env_task = tourist_task = None
            if cfg.tourists:
                from citydata.sim.tourists import TouristFeed

                # the tourist feed stamps fixes with the wall clock, so it runs at most 30x (see platform_settings)
                self.tourists = TouristFeed(cfg.seed, speed=min(cfg.speed, 30.0))
                tourist_task = asyncio.create_task(self.tourists.run(http, self._stop, deadline))
            wifi_task = None
            if cfg.wifi:
                from citydata.sim.wifi import WifiFeed

                # stamped with the wall clock like the tourist feed, so it runs at most 30x too
                self.wifi = WifiFeed(cfg.seed, speed=min(cfg.speed, 30.0), tourists=self.tourists)
                wifi_task = asyncio.create_task(self.wifi.run(http, self._stop, deadline))
            camera_task = None
            if cfg.cameras:
                from citydata.sim.cameras import CameraFeed

                self.cameras = CameraFeed(cfg.seed)
                camera_task = asyncio.create_task(self.cameras.run(http, self._stop, deadline))
            queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(10_000)
            if mqtt_url:
                mqtt_task = asyncio.create_task(self._mqtt_sender(mqtt_url, queue))
            if self.environment is not None:
                env_task = asyncio.create_task(self._environment_loop(http, queue, self.environment, deadline))
            try:
                while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                    await self._round(http, queue)
                    wait = cfg.heartbeat_every_s / max(cfg.speed, 0.001)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), wait)
            finally:
                if env_task is not None or tourist_task is not None or camera_task is not None:
                    self._stop.set()
                for task in (env_task, tourist_task, camera_task):
                    if task is not None:
                        with contextlib.suppress(Exception):
                            await task
                if wifi_task is not None:
                    self._stop.set()
                    with contextlib.suppress(Exception):
                        await wifi_task
                if mqtt_task is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(queue.join(), 5)
                    mqtt_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await mqtt_task
        return self.stats

    async def _environment_loop(self, http: httpx.AsyncClient, queue: asyncio.Queue[tuple[str, bytes]],
                                feed: EnvironmentFeed, deadline: float | None) -> None:
        """One step every simulated 10 minutes (step 0 at once); late steps are sent at once, in order."""
        began = time.monotonic()
        step = 0
        try:
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                try:
                    await feed.send(http, queue, step, self.stats)
                except httpx.HTTPError as err:
                    self.stats.errors += 1
                    log.warning("environment feed: step %d not sent (%s)", step, type(err).__name__)
                step += 1
                self.stats.steps = step
                due = began + step * STEP_S / max(self.config.speed, 0.001)
                wait = due - time.monotonic()
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), wait)
        finally:
            with contextlib.suppress(httpx.HTTPError):
                await feed.flush(http, self.stats)

    async def _register(self, http: httpx.AsyncClient) -> None:
        for device in self.devices:
            response = await http.post("/api/v1/devices", json=device.registration())
            if response.status_code in (200, 201):
                self.stats.registered += 1
            else:
                self.stats.errors += 1
                log.warning("registering %s failed: %s %s", device.id, response.status_code, response.text[:200])

    async def _round(self, http: httpx.AsyncClient, queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        tick = self.stats.rounds
        self.stats.rounds += 1
        for device in self.devices:
            if device is self.silent_device and tick >= self.silent_after_rounds:
                if device.id not in self.stats.silent:
                    self.stats.silent.append(device.id)
                continue
            beat = heartbeat(self.rng, device, tick)
            if device.channel == "http":
                try:
                    response = await http.post(f"/api/v1/devices/{device.id}/heartbeat", json=beat)
                    if response.status_code == 202:
                        self.stats.heartbeats_http += 1
                    else:
                        self.stats.errors += 1
                except httpx.HTTPError:
                    self.stats.errors += 1
            else:
                await queue.put((f"citydata/devices/{device.id}/heartbeat", orjson.dumps(beat)))

    async def _mqtt_sender(self, mqtt_url: str, queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        parsed = urlparse(mqtt_url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 1883
        delay = 0.5
        while True:
            try:
                async with aiomqtt.Client(host, port, username=self.config.token,
                                          identifier=f"citydata-sim-{self.config.seed}") as client:
                    delay = 0.5
                    while True:
                        topic, payload = await queue.get()
                        try:
                            await client.publish(topic, payload, qos=1)
                        except aiomqtt.MqttError:
                            queue.put_nowait((topic, payload))   # keep it for the next connection
                            raise
                        finally:
                            queue.task_done()
                        if topic.startswith("v1.1/"):
                            self.stats.observations_mqtt += 1
                        else:
                            self.stats.heartbeats_mqtt += 1
            except aiomqtt.MqttError as err:
                self.stats.errors += 1
                log.warning("simulator MQTT connection lost (%s); retrying", err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
