"""MQTT: the embedded broker (amqtt) and the platform's own client session (the bridge).

The bridge connects to whichever broker the settings name (embedded or external), subscribes to the ingest
topics that capabilities register (``bridge.route("citydata/devices/+/heartbeat", handler)``), reconnects and
resubscribes by itself after a broker restart, and publishes the platform's outgoing messages (alerts, updates).
A handler that raises has the message dead-lettered with its topic and reason; the session is never dropped.
The bridge acknowledges a QoS 1/2 message to the broker only after its handler has finished (stored or
dead-lettered), so with its persistent session the broker redelivers what the platform had not taken when the
connection dropped (handlers are idempotent: Observations on datastream + phenomenonTime).
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
_Ack = tuple[aiomqtt.Client, int, int]   # (connection, message id, QoS) of a received message


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


PublishInterceptor = Callable[[str, bytes], Awaitable[bool]]


@dataclass
class _Interceptor:
    patterns: tuple[str, ...]
    handler: PublishInterceptor
    exempt: frozenset[str]


class EmbeddedBroker:
    """amqtt broker in this process, with token authentication, topic ACLs and publish interception.

    ``intercept(patterns, handler)`` makes the broker hand PUBLISHes on those topics to ``handler`` *before* it
    acknowledges them (QoS 1 PUBACK, QoS 2 PUBCOMP): see ``mqtt_auth`` for how. Only publishes the client may
    make (topic ACL) are offered; the handler returns True when it took the message (it is then neither
    forwarded to subscribers nor retained) or False to let the broker route it as usual.
    """

    def __init__(self, host: str, port: int, verify: Verifier, allow_topic: TopicRule,
                 require_auth: bool = True) -> None:
        self.host, self.port = host, port
        self.gate_id = uuid.uuid4().hex
        self.require_auth = require_auth
        self.gate = MqttGate(verify, allow_topic, claims=self._claims, intercept=self._intercept,
                             drop_client=self._drop_client)
        GATES[self.gate_id] = self.gate
        self._broker: Any = None
        self._interceptors: list[_Interceptor] = []
        self._taking: set[asyncio.Task[bool]] = set()

    def intercept(self, patterns: tuple[str, ...], handler: PublishInterceptor, *,
                  exempt: frozenset[str] = frozenset()) -> None:
        """Take publishes on ``patterns`` (MQTT filters) before they are acknowledged; ``exempt``: client ids
        whose publishes are routed as usual (the platform's own session)."""
        self._interceptors.append(_Interceptor(patterns, handler, exempt))

    def subscription_filters(self, exclude: frozenset[str] = frozenset()) -> list[str]:
        """The topic filters that some session (connected, or persistent and away) subscribes to."""
        if self._broker is None:
            return []
        subs: dict[str, list[tuple[Any, int]]] = self._broker.subscriptions
        return [f for f, sessions in list(subs.items())
                if any(session.client_id not in exclude for session, _ in sessions)]

    def _route(self, client_id: str, topic: str) -> _Interceptor | None:
        for icpt in self._interceptors:
            if client_id not in icpt.exempt and any(topic_matches(p, topic) for p in icpt.patterns):
                return icpt
        return None

    def _claims(self, client_id: str, topic: str) -> bool:
        return self._route(client_id, topic) is not None

    async def _intercept(self, client_id: str, topic: str, payload: bytes) -> bool:
        icpt = self._route(client_id, topic)
        if icpt is None:
            return False
        if self.require_auth:
            principal = self.gate.principals.get(client_id)
            if principal is None or not self.gate.allow_topic(principal, topic, "publish"):
                return False   # the broker's ACL plugin refuses and logs it as for any other topic
        # Shielded: a client that disconnects mid-way does not cancel a write that may already be committing.
        task = asyncio.ensure_future(icpt.handler(topic, payload))
        self._taking.add(task)
        task.add_done_callback(self._taking.discard)
        return await asyncio.shield(task)

    async def _drop_client(self, client_id: str) -> None:
        if self._broker is None:
            return
        entry = self._broker.sessions.get(client_id)
        if entry is not None and entry[1] is not None:
            with contextlib.suppress(Exception):
                await entry[1].handle_connection_closed()

    async def start(self) -> None:
        from amqtt.broker import Broker

        if not port_free(self.host, self.port):
            raise PortInUse(f"MQTT port {self.host}:{self.port} is already in use "
                            f"(set CITYDATA_MQTT_URL to another port, or use an external broker)")
        plugins: dict[str, Any] = {"citydata.ingest.mqtt_auth.PublishInterceptPlugin": {"gate": self.gate_id}}
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
        if self._taking:
            await asyncio.wait(self._taking, timeout=5)
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
                client = aiomqtt.Client(self.host, self.port, identifier=self.client_id,
                                        username=self.username, password=self.password,
                                        clean_session=False, keepalive=30,
                                        tls_params=aiomqtt.TLSParameters() if self.tls else None,
                                        # unbounded here: aiomqtt silently discards what overflows a bounded
                                        # queue; with manual acknowledgement the broker's in-flight window
                                        # (messages not yet acknowledged) is what bounds it
                                        max_queued_incoming_messages=0)
                # Acknowledge (PUBACK/PUBCOMP) only once the handler has finished (stored or dead-lettered), so a
                # message received but not yet taken when the connection drops is redelivered by the broker.
                client._client.manual_ack_set(True)
                async with client:
                    self._client = client
                    for r in self.routes:
                        await client.subscribe(r.pattern, qos=r.qos)
                    self.connected.set()
                    delay = 0.2
                    log.info("MQTT bridge connected to %s:%d (%d ingest topics)", self.host, self.port,
                             len(self.routes))
                    async for message in client.messages:
                        payload = message.payload
                        await self._dispatch(str(message.topic), bytes(payload)
                                             if isinstance(payload, bytes | bytearray)
                                             else str(payload if payload is not None else "").encode(),
                                             ack=(client, message.mid, message.qos))
            except aiomqtt.MqttError as err:
                self.connected.clear()
                self._client = None
                if self._stopping:
                    return
                self.reconnects += 1
                log.warning("MQTT bridge disconnected (%s); reconnecting in %.1fs", err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _dispatch(self, topic: str, payload: bytes, ack: _Ack | None = None) -> None:
        for r in self.routes:
            if topic_matches(r.pattern, topic):
                self.metrics.mqtt_messages.labels(r.family).inc()
                task = asyncio.create_task(self._handle(r, topic, payload, ack))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
                return
        self._ack(ack)

    async def _handle(self, route: _Route, topic: str, payload: bytes, ack: _Ack | None = None) -> None:
        try:
            await route.handler(topic, payload)
        except CityDataError as err:
            await self._dead_letter(topic, payload, f"{err.code}: {err.message}")
        except Exception as err:
            log.exception("MQTT handler for %s failed", route.pattern)
            await self._dead_letter(topic, payload, f"internal_error: {type(err).__name__}")
        self._ack(ack)

    def _ack(self, ack: _Ack | None) -> None:
        """Acknowledge a QoS 1/2 message on the connection it came from (a later connection gets it again)."""
        if ack is None:
            return
        client, mid, qos = ack
        if qos > 0 and client is self._client:
            with contextlib.suppress(Exception):
                client._client.ack(mid, qos)

    async def _dead_letter(self, topic: str, payload: bytes, reason: str) -> None:
        try:
            await self.dead_letters.record("mqtt", topic, payload, reason)
        except Exception:
            log.exception("could not record a dead letter for topic %s", topic)


def internal_credentials() -> tuple[str, str]:
    """Credentials of the platform's own session on the embedded broker (random per run, in memory only)."""
    return "citydata-internal", secrets.token_urlsafe(32)
