"""The composition root: ``Platform`` builds every component from the settings, starts them in order (store,
bus, reference city, broker, ingest, API) and stops them in reverse. Nothing here runs at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import orjson

from citydata import __version__
from citydata.clock import Clock, SystemClock
from citydata.config import Settings, parse_pii_keys, resolve_secrets
from citydata.errors import CityDataError, PortInUse, ValidationFailed
from citydata.ingest.deadletter import DeadLetters
from citydata.ingest.mqtt import EmbeddedBroker, MqttBridge, internal_credentials, parse_mqtt_url, port_free
from citydata.ops.metrics import Metrics
from citydata.store import Store, create_store
from citydata.web.bundle import WebBundle

if TYPE_CHECKING:
    from fastapi import FastAPI

    from citydata.analytics import AnalyticsService
    from citydata.auth import AuditLog, FailureThrottle, Principal, SessionService, TokenService, UserService
    from citydata.bus import Bus
    from citydata.cluster.node import ClusterNode
    from citydata.devices import DeviceService
    from citydata.geo import Geography
    from citydata.incidents.ioc import IOC
    from citydata.opendata.service import OpenDataService
    from citydata.reports import ReportService
    from citydata.rules import RulesService
    from citydata.sensorthings.mqtt import SensorThingsMqtt
    from citydata.sensorthings.retention import RetentionService
    from citydata.sensorthings.service import SensorThings
    from citydata.tracking import TrackingService
    from citydata.vision.service import VisionService
    from citydata.wifi import WifiService

log = logging.getLogger(__name__)
INTERNAL_TOKEN_ID = "internal:platform"   # never a real token id (those are url-safe base64)


class Platform:
    """Everything one CityData node runs. ``async with Platform(settings) as p:`` starts and stops it."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, serve_http: bool = False) -> None:
        self.settings = resolve_secrets(settings)
        self.clock = clock or SystemClock()
        self.serve_http = serve_http
        self.metrics = Metrics()
        self.store: Store = create_store(self.settings, self.clock)
        self.dead_letters = DeadLetters(self.store, self.clock, self.metrics)
        self.bus: Bus
        self.tokens: TokenService
        self.users: UserService
        self.audit: AuditLog
        self.sessions: SessionService
        self.throttle: FailureThrottle
        self.devices: DeviceService
        self.sta: SensorThings
        self.ioc: IOC | None = None
        self.rules: RulesService | None = None
        self.tracking: TrackingService | None = None
        self.wifi: WifiService | None = None   # WiFi footfall (docs/wifi.md)
        self.vision: VisionService | None = None   # CCTV analytics (docs/vision.md)
        self.cluster: ClusterNode | None = None   # multi-node mode (partitioned NATS bus): docs/scale.md
        self.reports: ReportService | None = None
        self.analytics: AnalyticsService | None = None   # planning analytics (docs/analytics.md)
        self.opendata: OpenDataService | None = None   # open data, CKAN-compatible API (docs/opendata.md)
        self.web = WebBundle()   # the built IOC dashboard and tourist app (served by api/routes/web.py)
        self.retention: RetentionService
        self.geography: Geography | None = None
        self.broker: EmbeddedBroker | None = None
        self.bridge: MqttBridge | None = None
        self.sta_mqtt: SensorThingsMqtt | None = None
        self.mqtt_host, self.mqtt_port = "", 0
        self.internal_mqtt = internal_credentials()
        self.app: FastAPI | None = None
        self._http: Any = None
        self._http_task: asyncio.Task[None] | None = None
        self._started: list[str] = []
        self.started_at = self.clock.now()

    # -- keys --------------------------------------------------------------------------------------------------
    @property
    def secret_key(self) -> bytes:
        assert self.settings.secret_key is not None
        return self.settings.secret_key.get_secret_value().encode()

    @property
    def pii_keys(self) -> list[tuple[str, bytes]]:
        assert self.settings.pii_keys is not None
        return parse_pii_keys(self.settings.pii_keys.get_secret_value())

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.mqtt_host}:{self.mqtt_port}" if self.mqtt_port else ""

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def check_ports(self) -> None:
        """Fail before starting anything when a port we must listen on is taken."""
        s = self.settings
        if self.serve_http and s.http_port and not port_free(s.http_host, s.http_port):
            raise PortInUse(f"HTTP port {s.http_host}:{s.http_port} is already in use "
                            f"(set CITYDATA_HTTP_PORT or --port)")
        scheme, host, port = parse_mqtt_url(s.mqtt_url)
        if scheme == "embedded" and not port_free(host, port):
            raise PortInUse(f"MQTT port {host}:{port} is already in use (set CITYDATA_MQTT_URL, "
                            f"e.g. embedded://127.0.0.1:{port + 1}, or mqtt://HOST:PORT for an external broker)")

    async def start(self) -> None:
        from citydata.auth import AuditLog, FailureThrottle, SessionService, TokenService, UserService
        from citydata.bus import create_bus
        from citydata.devices import DeviceService

        self.check_ports()
        s = self.settings
        if s.node_role != "all" and s.bus_url.startswith("memory://"):
            raise ValidationFailed(f"role {s.node_role!r} needs the shared NATS bus (CITYDATA_BUS_URL=nats://...); "
                                   "a node on the in-process bus runs every role")
        await self.store.start()
        self._started.append("store")

        journal = None
        if s.bus_url.startswith("memory://"):
            from citydata.store.journal import StoreJournal

            journal = StoreJournal(self.store)
        self.bus = create_bus(s, journal)
        await self.bus.start()
        self._started.append("bus")
        clustered = self.bus.partitions > 0   # timers, tracking and consumers then follow the cluster's leases
        # without partitions a rules (or all) node runs them itself, an api or ingest node never does
        local_work = not clustered and s.node_role in ("all", "rules")

        self.tokens = TokenService(self.store, self.secret_key, self.clock)
        self.users = UserService(self.store, self.clock)
        self.sessions = SessionService(self.secret_key)
        self.audit = AuditLog(self.store, self.clock)
        self.throttle = FailureThrottle(self.clock, s.login_max_failures)
        assert s.admin_password is not None
        if await self.users.ensure_admin(s.admin_password.get_secret_value()):
            log.info("created the initial 'admin' user (password in %s/admin_password unless configured)",
                     s.data_dir)

        await self._load_city()
        self.devices = DeviceService(self.store, self.bus, self.clock, silence_s=s.heartbeat_silence_s)

        from citydata.sensorthings.service import SensorThings

        self.sta = SensorThings(self.store, self.bus, self.clock, self.metrics, s.base_url)
        from citydata.sensorthings.retention import RetentionService

        self.retention = RetentionService(self.store, self.clock, s)
        if local_work:
            await self.retention.start()
            self._started.append("retention")
        from citydata.rules import RulesService

        # journal: the in-process bus's log (None on NATS, where the engine acknowledges only checkpointed events)
        self.rules = RulesService(self.store, self.bus, self.clock, geography=self.geography, journal=journal)
        await self.rules.start(engine=local_work)  # loads the Phuket rule pack on first start
        self._started.append("rules")
        from citydata.incidents.access import IncidentBackedAccess
        from citydata.tracking import start_tracking

        # police roles see a traveller only inside an incident assigned to their agency
        if local_work:   # clustered: the leader runs it (cluster/node.py)
            self.tracking = await start_tracking(self, IncidentBackedAccess(self.store))
            self._started.append("tracking")
        if s.wifi_enabled:
            from citydata.wifi import start_wifi

            await start_wifi(self)
            self._started.append("wifi")
        if s.vision_enabled:
            from citydata.vision import start_vision

            await start_vision(self)
            self._started.append("vision")
        from citydata.reports import start_reports

        await start_reports(self)
        self._started.append("reports")
        from citydata.opendata import start_opendata

        await start_opendata(self)   # also builds self.analytics
        self._started.append("opendata")
        if s.node_role in ("all", "ingest"):
            await self._start_mqtt()
        from citydata.incidents.ioc import IOC

        self.ioc = IOC(self)
        await self.ioc.start(consumers=local_work)
        self._started.append("ioc")
        if clustered:
            from citydata.cluster import start_cluster

            self.cluster = await start_cluster(self)
            self._started.append("cluster")
        self._register_metrics()
        self.web.state()   # logs once when the web bundle is missing

        from citydata.api.app import create_app

        self.app = create_app(self)
        if self.serve_http:
            await self._start_http()
        log.info("CityData %s started (%s store, %s bus, MQTT %s)", __version__, self.store.dialect,
                 s.bus_url.split("://")[0], self.mqtt_url or "off")

    async def _load_city(self) -> None:
        from citydata.geo import Geography, ensure_reference_city

        loaded = await ensure_reference_city(self.store, self.settings, self.clock)
        if loaded:
            log.info("loaded the reference city %r", self.settings.city)
        self.geography = await Geography.from_store(self.store)

    async def _start_mqtt(self) -> None:
        s = self.settings
        scheme, host, port = parse_mqtt_url(s.mqtt_url)
        if scheme == "none":
            return
        if scheme == "embedded":
            self.broker = EmbeddedBroker(host, port, self._verify_mqtt, self._allow_topic, s.mqtt_require_auth)
            await self.broker.start()
            self._started.append("broker")
            connect_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
            username, password = self.internal_mqtt
        else:
            connect_host = host
            username, password = (s.mqtt_username or ""), (s.mqtt_password.get_secret_value()
                                                             if s.mqtt_password else "")
        self.mqtt_host, self.mqtt_port = connect_host, port
        # on an external broker the session must survive restarts (the broker keeps what arrived meanwhile), so
        # the id is stable: give each node its own CITYDATA_MQTT_CLIENT_ID
        client_id = f"{s.mqtt_client_id}-{self.started_at:%H%M%S%f}" if scheme == "embedded" else s.mqtt_client_id
        self.bridge = MqttBridge(connect_host, port, client_id=client_id,
                                 username=username or None, password=password or None, dead_letters=self.dead_letters,
                                 metrics=self.metrics, tls=scheme == "mqtts")
        self.bridge.route("citydata/devices/+/heartbeat", self._mqtt_heartbeat, family="devices")
        from citydata.sensorthings.mqtt import SensorThingsMqtt

        self.sta_mqtt = SensorThingsMqtt(self.sta, self.bridge, self.broker, self.dead_letters, self.metrics)
        await self.sta_mqtt.start()
        await self.bridge.start()
        self._started.append("bridge")

    async def _mqtt_heartbeat(self, topic: str, payload: bytes) -> None:
        from pydantic import ValidationError

        from citydata.devices import HeartbeatIn

        device_id = topic.split("/")[2]
        try:
            beat = HeartbeatIn.model_validate(orjson.loads(payload) if payload.strip() else {})
        except (orjson.JSONDecodeError, ValidationError) as err:
            self.metrics.rejected.labels("heartbeat", "invalid").inc()
            raise ValidationFailed(f"invalid heartbeat payload: {str(err).splitlines()[0]}") from err
        await self.devices.heartbeat(device_id, beat)
        self.metrics.ingested.labels("heartbeat", "mqtt").inc()

    async def _verify_mqtt(self, username: str | None, password: str | None) -> Principal | None:
        from citydata.auth import Principal, Role

        if (username, password) == self.internal_mqtt:
            return Principal("platform", Role.ADMIN, "token", token_id=INTERNAL_TOKEN_ID)
        for candidate in (password, username):
            if candidate and candidate.startswith("cd_"):
                try:
                    return await self.tokens.verify(candidate)
                except CityDataError:
                    self.metrics.auth_failures.labels("mqtt").inc()
                    return None
        if username is None and password is None and self.settings.read_public:
            return Principal("anonymous", Role.PUBLIC, "anonymous")
        return None

    def _allow_topic(self, principal: Principal, topic: str, verb: str) -> bool:
        from citydata.ingest.topics import topic_allowed

        return topic_allowed(principal, topic, verb)

    async def _start_http(self) -> None:
        import uvicorn

        from citydata.api.app import serving_app

        assert self.app is not None
        config = uvicorn.Config(serving_app(self.app), host=self.settings.http_host, port=self.settings.http_port,
                                log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=int(self.settings.shutdown_grace_s))
        self._http = uvicorn.Server(config)
        self._http_task = asyncio.create_task(self._http.serve(), name="http")
        for _ in range(200):
            if self._http.started:
                break
            if self._http_task.done():
                raise PortInUse(f"HTTP server could not start on {self.settings.http_host}:"
                                f"{self.settings.http_port}")
            await asyncio.sleep(0.025)
        self._started.append("http")

    def _register_metrics(self) -> None:
        from citydata.ops.memory import memory_breakdown

        def depths() -> dict[str, float]:
            out: dict[str, float] = {}
            if self.store.writer is not None:
                out["store_writer_rows"] = self.store.writer.depth()
            queue_depths = getattr(self.bus, "queue_depths", None)
            if callable(queue_depths):
                out.update({k: float(v) for k, v in queue_depths().items()})
            return out

        def counters() -> dict[str, float]:
            w = self.store.writer
            out = {"bus_published": float(self.bus.stats.published),
                   "bus_dead_lettered": float(self.bus.stats.dead_lettered),
                   "bus_slow_subscriber_drops": float(self.bus.stats.slow_subscriber_drops),
                   "bus_consumer_failures": float(self.bus.stats.consumer_failures)}
            if w is not None:
                out.update({"store_commits": float(w.stats.commits), "store_rows": float(w.stats.rows),
                            "store_refused_rows": float(w.stats.refused), "store_retries": float(w.stats.retries)})
            if self.bridge is not None:
                out["mqtt_reconnects"] = float(self.bridge.reconnects)
            return out

        self.metrics.gauge_callback("citydata_queue_depth", "Items waiting in each internal queue", depths)
        self.metrics.gauge_callback("citydata_memory_bytes", "Process memory by part: rss, rss_anon, rss_file, "
                                    "heap_in_use, heap_free (the C heap), sqlite (SQLite's share of the heap)",
                                    memory_breakdown)
        self.metrics.gauge_callback("citydata_internal_total", "Internal counters (monotonic)", counters)

    async def readiness(self) -> dict[str, dict[str, Any]]:
        """Each dependency's state for /readyz."""
        ok, why = await self.store.ready()
        out: dict[str, dict[str, Any]] = {"store": {"ok": ok, "detail": why}}
        bus_ok = await self.bus.healthy()
        out["bus"] = {"ok": bus_ok, "detail": self.bus.describe()}
        if self.bridge is not None:
            out["mqtt"] = {"ok": self.bridge.connected.is_set(), "detail": self.mqtt_url}
        if self.cluster is not None:
            out["cluster"] = self.cluster.readiness()
        if self.vision is not None:   # a missing model disables that analytic only: flags, never "not ready"
            flags = self.vision.readiness()
            out["vision"] = {"ok": True, "faces": flags["faces"], "plates": flags["plates"],
                             "detail": "; ".join(f"{k}: {v}" for k, v in flags["reasons"].items()) or "ready"}
        out["web"] = self.web.readiness()   # a missing bundle disables the two pages only: a flag, as for vision
        for name, info in out.items():
            self.metrics.up.labels(name).set(1 if info["ok"] else 0)
        return out

    async def stop(self) -> None:
        """Stop in reverse order; queued writes are flushed before the store closes."""
        for name in reversed(self._started):
            with contextlib.suppress(Exception):
                await self._stop_one(name)
        self._started.clear()

    async def _stop_one(self, name: str) -> None:
        if name == "http" and self._http is not None:
            self._http.should_exit = True
            if self._http_task is not None:
                await asyncio.wait_for(self._http_task, self.settings.shutdown_grace_s + 2)
        elif name == "bridge" and self.bridge is not None:
            if self.sta_mqtt is not None:
                await self.sta_mqtt.stop()
            await self.bridge.stop()
        elif name == "broker" and self.broker is not None:
            await self.broker.stop()
        elif name == "tracking" and self.tracking is not None:
            await self.tracking.stop()
        elif name == "wifi" and self.wifi is not None:
            await self.wifi.stop()
        elif name == "vision" and self.vision is not None:
            await self.vision.stop()
        elif name == "reports" and self.reports is not None:
            await self.reports.stop()
        elif name == "opendata" and self.opendata is not None:
            await self.opendata.stop()   # writes the last usage counts
        elif name == "rules" and self.rules is not None:
            await self.rules.stop()
        elif name == "cluster" and self.cluster is not None:
            await self.cluster.stop()
        elif name == "ioc" and self.ioc is not None:
            await self.ioc.stop()
        elif name == "retention":
            await self.retention.stop()
        elif name == "bus":
            await self.bus.stop()
        elif name == "store":
            with contextlib.suppress(Exception):
                await self.tokens.flush()   # pending last_used_at updates
            await self.store.stop()

    async def __aenter__(self) -> Platform:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
