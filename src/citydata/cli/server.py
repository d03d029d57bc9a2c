"""``citydata serve``, ``citydata demo`` and ``citydata simulate``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from citydata.cli.common import ConfigOpt, run, settings_from
from citydata.ops.gc_tuning import freeze_startup_objects, tune_gc

log = logging.getLogger(__name__)


async def _wait_for_signal() -> None:
    """Wait for SIGINT or SIGTERM. The handlers stay installed until the event loop closes, so a second signal
    (a terminal's process group, ``make`` or ``uv`` forwarding it again) does not break the graceful shutdown
    that the first one started."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            log.warning("already stopping; waiting for queued writes to flush")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()


def serve(config: ConfigOpt = None,
          host: Annotated[str | None, typer.Option(help="Bind address (CITYDATA_HTTP_HOST).")] = None,
          port: Annotated[int | None, typer.Option(help="HTTP port (CITYDATA_HTTP_PORT).")] = None,
          role: Annotated[str | None, typer.Option(
              help="What this node runs (CITYDATA_NODE_ROLE): api (HTTP only, no consumers), ingest (MQTT "
                   "bridge and HTTP ingest), rules (rules engines, geofence, timers, IOC consumers) or all "
                   "(default). Roles other than all need CITYDATA_BUS_URL=nats://...")] = None,
          node_id: Annotated[str | None, typer.Option(help="Unique node name in the cluster "
                                                           "(CITYDATA_NODE_ID).")] = None) -> None:
    """Run the platform until Ctrl-C or SIGTERM. Fails at once, naming the port, when a port is taken."""
    from citydata.app import Platform
    from citydata.ops.logging import configure_logging

    settings = settings_from(config, http_host=host, http_port=port, node_role=role, node_id=node_id)
    configure_logging(settings.log_level, settings.log_format)

    async def go() -> None:
        tune_gc(settings.gc_young_threshold)
        async with Platform(settings, serve_http=True) as platform:
            freeze_startup_objects()       # what start loaded is walked by no collection from now on
            cluster = f", cluster node {platform.cluster.node_id} role {platform.cluster.role}" \
                if platform.cluster is not None else ""
            print(f"CityData serving on {platform.settings.base_url} (docs: {platform.settings.base_url}/docs, "
                  f"MQTT: {platform.mqtt_url or 'off'}{cluster})", flush=True)
            await _wait_for_signal()
            print("stopping: flushing queued writes", flush=True)

    run(go())


def _demo_token(platform: Any, data_dir: Path) -> Any:
    """Reuse the demo's simulator token across runs (kept 0600 in the data directory)."""
    from citydata.auth import Role

    path = data_dir / "demo_simulator_token"

    async def get() -> str:
        if path.exists():
            token = path.read_text(encoding="utf-8").strip()
            with contextlib.suppress(Exception):
                await platform.tokens.verify(token)
                return token
        _, token = await platform.tokens.create(Role.ADMIN, "demo simulator", created_by="demo")
        path.write_text(token + "\n", encoding="utf-8")
        path.chmod(0o600)
        return str(token)

    return get()


def demo(speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 60.0,
         port: Annotated[int | None, typer.Option(help="HTTP port (default 8000, or a free one).")] = None,
         seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
         duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
         config: ConfigOpt = None) -> None:
    """Run the platform on its embedded defaults, fed live by the Phuket simulator, and print the URLs."""
    from citydata.app import Platform
    from citydata.ingest.mqtt import parse_mqtt_url, pick_free_port, port_free
    from citydata.ops.logging import configure_logging
    from citydata.sim import Simulator, SimulatorConfig

    base = settings_from(config)
    http_port = port or base.http_port
    if not port_free(base.http_host, http_port):
        http_port = pick_free_port(base.http_host)
    overrides: dict[str, Any] = {"http_port": http_port}
    scheme, mhost, mport = parse_mqtt_url(base.mqtt_url)
    if scheme == "embedded" and not port_free(mhost, mport):
        overrides["mqtt_url"] = f"embedded://{mhost}:{pick_free_port(mhost)}"
    from citydata.sim.tourists import platform_settings

    # tracking intervals scaled to the tourist feed, which runs at up to 30x (it stamps fixes with the wall clock)
    overrides.update(platform_settings(min(max(speed, 1.0), 30.0)))
    settings = base.model_copy(update=overrides)
    configure_logging("WARNING" if settings.log_level == "INFO" else settings.log_level, "text")

    async def go() -> None:
        tune_gc(settings.gc_young_threshold)
        async with Platform(settings, serve_http=True) as platform:
            s = platform.settings
            token = await _demo_token(platform, s.data_dir)
            from citydata.datasets.samples import load_samples

            await load_samples(platform)   # the synthetic Phuket government datasets, on first start
            freeze_startup_objects()
            url = s.base_url
            sim = Simulator(SimulatorConfig(url=url, token=token, speed=speed, seed=seed,
                                            mqtt_url=platform.mqtt_url or None, cameras=True))
            sim_task = asyncio.create_task(sim.run())
            password_file = (s.data_dir / "admin_password").resolve()
            print("\nCityData demo is running (Ctrl-C to stop)\n"
                  f"  IOC dashboard  {url}/ioc/   (sign in as admin, password below)\n"
                  f"  Tourist app    {url}/app/\n"
                  f"  API            {url}/api/v1/info\n"
                  f"  API docs       {url}/docs\n"
                  f"  Sensors (OGC)  {url}/v1.1/Datastreams   latest values: {url}/api/v1/sensors/latest\n"
                  f"  Alerts         {url}/api/v1/alerts   live: {url}/api/v1/stream   CAP: {url}/cap/feed.xml\n"
                  f"  Tourists       {url}/api/v1/tracking/positions (operator or admin token)\n"
                  f"  CCTV           {url}/api/v1/cameras   hits: {url}/api/v1/vision/hits (police or admin token)"
                  f"   status: {url}/api/v1/vision/status\n"
                  f"  WiFi footfall  {url}/api/v1/wifi/map (operator or analyst token)   by zone: "
                  f"{url}/api/v1/wifi/footfall?level=zone\n"
                  f"  Devices        {url}/api/v1/devices\n"
                  f"  Analytics      {url}/api/v1/analytics (analyst token)   datasets: {url}/api/v1/datasets\n"
                  f"  Open data      {url}/api/3/action/package_list (CKAN)   DCAT: "
                  f"{url}/api/v1/opendata/catalog.jsonld\n"
                  f"  Places         {url}/api/v1/places?kind=checkpoint\n"
                  f"  Health         {url}/readyz   metrics: {url}/metrics\n"
                  f"  MQTT broker    {platform.mqtt_url}  (username: an API token)\n"
                  f"  Data           {platform.store.dialect} in {s.data_dir.resolve()}\n"
                  f"  Admin login    user 'admin', password in {password_file}\n"
                  f"  Simulator      speed x{speed:g}, seed {seed}\n", flush=True)
            waiter = asyncio.create_task(_wait_for_signal())
            timer = asyncio.create_task(asyncio.sleep(duration if duration else 10**9))
            await asyncio.wait({waiter, timer, sim_task}, return_when=asyncio.FIRST_COMPLETED)
            sim.stop()
            with contextlib.suppress(Exception):
                stats = await asyncio.wait_for(sim_task, 10)
                print(f"simulator: {json.dumps(stats.__dict__)}", flush=True)
            for task in (waiter, timer):
                task.cancel()
            print("stopping: flushing queued writes", flush=True)

    run(go())


def simulate(url: Annotated[str, typer.Option(help="Base URL of a running platform.")],
             token: Annotated[str, typer.Option(help="API token (role device, operator or admin).")],
             speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 60.0,
             seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same run.")] = 7,
             duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
             mqtt_url: Annotated[str | None, typer.Option(help="MQTT broker (default: from the platform).")]
             = None) -> None:
    """Drive a running platform over HTTP and MQTT, as Phuket's devices would."""
    from citydata.ops.logging import configure_logging
    from citydata.sim import Simulator, SimulatorConfig

    configure_logging("INFO", "text")
    sim = Simulator(SimulatorConfig(url=url, token=token, speed=speed, seed=seed, duration_s=duration,
                                    mqtt_url=mqtt_url, cameras=True))

    async def go() -> Any:
        task = asyncio.create_task(sim.run())
        waiter = asyncio.create_task(_wait_for_signal())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        sim.stop()
        waiter.cancel()
        return await task

    stats = run(go())
    print(json.dumps(stats.__dict__))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
    app.command("simulate")(simulate)
