"""MQTT: the embedded broker (amqtt) and the platform's own client session (the bridge).

The bridge connects to whichever broker the settings name (embedded or external), subscribes to the ingest
topics that capabilities register (``bridge.route("citydata/devices/+/heartbeat", handler)``), reconnects and
resubscribes by itself after a broker restart, and publishes the platform's outgoing messages (alerts, updates).
A handler that raises has the message dead-lettered with its topic and reason; the session is never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiomqtt

from citydata.errors import CityDataError, PortInUse
from citydata.ingest.deadletter import DeadLetters
from citydata.ingest.mqtt_auth import GATES, MqttGate, TopicRule, Verifier
from citydata.ops.metrics import Metrics

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], Awaitable[None]]


def parse_mqtt_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of embedded://, mqtt:// or mqtts:// URLs."""
    parsed = urlparse(url)
    default = 8883 if parsed.scheme == "mqtts" else 1883
    return parsed.scheme, parsed.hostname or "127.0.0.1", parsed.port if parsed.port is not None else default


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT wildcard matching (``+`` one level, ``#`` the rest)."""
    p_parts, t_parts = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(p_parts) == len(t_parts)


class EmbeddedBroker:
    """amqtt broker in this process, with token authentication and topic ACLs."""

    def __init__(self, host: str, port: int, verify: Verifier, allow_topic: TopicRule,
                 require_auth: bool = True) -> None:
        self.host, self.port = host, port
        self.gate_id = uuid.uuid4().hex
        self.require_auth = require_auth
        GATES[self.gate_id] = MqttGate(verify, allow_topic)
        self._broker: Any = None

    async def start(self) -> None:
        from amqtt.broker import Broker

        if not port_free(self.host, self.port):
            raise PortInUse(f"MQTT port {self.host}:{self.port} is already in use "
                            f"(set CITYDATA_MQTT_URL to another port, or use an external broker)")
        plugins: dict[str, Any] = {}
        if self.require_auth:
            plugins["citydata.ingest.mqtt_auth.TokenAuthPlugin"] = {"gate": self.gate_id}
            plugins["citydata.ingest.mqtt_auth.TopicAclPlugin"] = {"gate": self.gate_id}
        else:
            plugins["amqtt.plugins.authentication.AnonymousAuthPlugin"] = {"allow_anonymous": True}
        config = {"listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}",
                                            "max_connections": 10_000}},
                  "plugins": plugins}
        self._broker = Broker(config)
        try:
            await self._broker.start()
        except Exception as err:
            raise PortInUse(f"MQTT broker could not listen on {self.host}:{self.port}: {err}") from err
        log.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._broker is not None:
            with contextlib.suppress(Exception):
                await self._broker.shutdown()
        GATES.pop(self.gate_id, None)


@dataclass
class _Route:
    pattern: str
    family: str
    handler: MessageHandler
    qos: int


class MqttBridge:
    """The platform's MQTT client session: ingest subscriptions, outgoing publishes, reconnects."""

    def __init__(self, host: str, port: int, *, client_id: str, username: str | None, password: str | None,
                 dead_letters: DeadLetters, metrics: Metrics, tls: bool = False) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.username, self.password, self.tls = username, password, tls
        self.dead_letters, self.metrics = dead_letters, metrics
        self.routes: list[_Route] = []
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()

    def route(self, pattern: str, handler: MessageHandler, *, family: str | None = None, qos: int = 1) -> None:
        """Register an ingest topic before ``start``."""
        self.routes.append(_Route(pattern, family or pattern.split("/")[0], handler, qos))

    async def start(self, wait_s: float = 10.0) -> None:
        self._task = asyncio.create_task(self._run(), name="mqtt-bridge")
        try:
            await asyncio.wait_for(self.connected.wait(), wait_s)
        except TimeoutError:
            log.warning("MQTT broker %s:%d not reachable yet; the bridge keeps trying", self.host, self.port)

    async def stop(self) -> None:
        self._stopping = True
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        """Publish if connected; returns False (and logs at debug) while the broker is away."""
        client = self._client
        if client is None or not self.connected.is_set():
            return False
        try:
            await client.publish(topic, payload, qos=qos, retain=retain)
            return True
        except aiomqtt.MqttError:
            return False

    async def _run(self) -> None:
        delay = 0.2
        while not self._stopping:
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=self.client_id,
                                          username=self.username, password=self.password,
                                          clean_session=False, keepalive=30,
                                          tls_params=aiomqtt.TLSParameters() if self.tls else None,
                                          max_queued_incoming_messages=10_000) as client:
                    self._client = client
                    for r in self.routes:
                        await client.subscribe(r.pattern, qos=r.qos)
                    self.connected.set()
                    delay = 0.2
                    log.info("MQTT bridge connected to %s:%d (%d ingest topics)", self.host, self.port,
                             len(self.routes))
                    async for message in client.messages:
                        await self._dispatch(str(message.topic), bytes(message.payload)  # type: ignore[arg-type]
                                             if message.payload is not None else b"")
            except aiomqtt.MqttError as err:
                self.connected.clear()
                self._client = None
                if self._stopping:
                    return
                self.reconnects += 1
                log.warning("MQTT bridge disconnected (%s); reconnecting in %.1fs", err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _dispatch(self, topic: str, payload: bytes) -> None:
        for r in self.routes:
            if topic_matches(r.pattern, topic):
                self.metrics.mqtt_messages.labels(r.family).inc()
                task = asyncio.create_task(self._handle(r, topic, payload))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
                return

    async def _handle(self, route: _Route, topic: str, payload: bytes) -> None:
        try:
            await route.handler(topic, payload)
        except CityDataError as err:
            await self._dead_letter(topic, payload, f"{err.code}: {err.message}")
        except Exception as err:
            log.exception("MQTT handler for %s failed", route.pattern)
            await self._dead_letter(topic, payload, f"internal_error: {type(err).__name__}")

    async def _dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        try:
            await self.dead_letters.record("mqtt", topic, payload, reason)
        except Exception:
            log.exception("could not record a dead letter for topic %s", topic)


def internal_credentials() -> tuple[str, str]:
    """Credentials of the platform's own session on the embedded broker (random per run, in memory only)."""
    return "citydata-internal", secrets.token_urlsafe(32)
