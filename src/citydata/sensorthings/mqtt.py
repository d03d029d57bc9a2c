"""The SensorThings API MQTT extension (OGC 18-088 v1.1 section 14), on the platform's MQTT layer.

**Create Observations via MQTT** (14.2). A device publishes one Observation (a JSON object) to

* ``v1.1/Observations`` (the body links its ``Datastream`` or ``MultiDatastream`` by ``@iot.id``),
* ``v1.1/Datastreams(<id>)/Observations``, ``v1.1/MultiDatastreams(<id>)/Observations``,
* ``v1.1/FeaturesOfInterest(<id>)/Observations`` (the body links its stream).

Each message goes through the one Observation write path, ``ObservationIngest.create([body], ...,
channel="mqtt")``, which is idempotent on datastream + phenomenonTime: a redelivered or re-published message
is stored once. A refused message (bad JSON, unknown stream, invalid result ...) is dead-lettered with its
topic, truncated payload and reason, counted in ``/metrics``, and the device's session stays up.

The same topics carry the platform's own notifications of new Observations (14.1). A message whose JSON
object has ``@iot.selfLink`` is such a notification (only the service assigns self links), so it is never
taken as a creation: this is how the platform, subscribed to the creation topics on an external broker, does
not re-ingest what it published itself. An empty payload (clearing a retained message) is not a creation either.

Acknowledgement:

* **Embedded broker**: the broker hands creation publishes to ``SensorThingsMqtt`` *before* it acknowledges
  them (``EmbeddedBroker.intercept``): the QoS 1 PUBACK (QoS 2 PUBCOMP) reaches the device only after the
  Observation is committed or dead-lettered. Taken messages are not forwarded to subscribers (they receive the
  platform's notification, with ``@iot.id``, instead) and are not retained. When the store is unavailable or
  the platform is stopping, the message is not acknowledged and the device's connection is closed, so it sends
  the message again when it reconnects. Publishes the client may not make are refused by the broker's ACL.
* **External broker** (Mosquitto): the broker acknowledges the device itself, on receipt. The platform's session
  subscribes to the creation topics with QoS 1 and a persistent session, and acknowledges each message to the
  broker only after it was stored or dead-lettered, so the broker redelivers what the platform had not taken
  when a connection dropped. The device's own message is also forwarded by the broker to other subscribers of
  the topic.

**Receive updates via MQTT** (14.1). Every ``sta.changed`` bus event (an entity created or updated, from any
channel) is published, QoS 0, to

* the entity set ``v1.1/<Set>`` for a created entity, and the navigation collections it joined through its
  to-one links (``v1.1/Datastreams(<id>)/Observations``, ``v1.1/FeaturesOfInterest(<id>)/Observations``,
  ``v1.1/Things(<id>)/Datastreams``, ...);
* the entity ``v1.1/<Set>(<id>)`` for an update, and ``v1.1/<Set>(<id>)/<property>`` with
  ``{"<property>": value}`` for each property the update changed;
* ``$select`` variants of the set, entity and collection topics, such as
  ``v1.1/Observations?$select=result,phenomenonTime``, with only the selected properties.

With the embedded broker the publisher reads the broker's subscriptions: it publishes only to topics somebody
listens to (no subscriber, no work) and derives the ``$select`` topics from the subscribed filters (wildcards are
allowed before the ``?``). With an external broker it cannot see subscriptions, so it publishes the set, entity,
property and collection topics of every change and no ``$select`` variants. Other query options in topics are
not supported. Deletions are not notified (the standard defines no topic for them).

Publishing never blocks ingest: bus events go onto a bounded queue drained by one task; when the queue is full
or the broker is away, notifications are dropped and counted (``citydata_sta_mqtt_total``), and logged
once per episode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from citydata.errors import CityDataError, Unavailable, ValidationFailed
from citydata.ingest.mqtt import topic_matches
from citydata.sensorthings.model import ENTITIES, Entity, Nav

if TYPE_CHECKING:
    from citydata.bus import Delivery, Subscription
    from citydata.ingest.deadletter import DeadLetters
    from citydata.ingest.mqtt import EmbeddedBroker, MqttBridge
    from citydata.ops.metrics import Metrics
    from citydata.sensorthings.service import SensorThings

log = logging.getLogger(__name__)

PREFIX = "v1.1"
CREATION_FILTERS = (f"{PREFIX}/Observations", f"{PREFIX}/+/Observations")
SELECT = "?$select="
_PARENT = re.compile(r"^(Datastreams|MultiDatastreams|FeaturesOfInterest)\((\d{1,18})\)$")


# -- creation ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CreationTarget:
    """What a creation topic says about the Observation: its stream (and kind) or its FeatureOfInterest."""

    stream_id: int | None = None
    multi: bool | None = None
    foi_id: int | None = None


def creation_target(topic: str) -> CreationTarget:
    """Parse a creation topic; raises ``ValidationFailed`` for any other topic."""
    parts = topic.split("/")
    if len(parts) == 2 and parts[0] == PREFIX and parts[1] == "Observations":
        return CreationTarget()
    if len(parts) == 3 and parts[0] == PREFIX and parts[2] == "Observations":
        m = _PARENT.match(parts[1])
        if m is not None:
            ident = int(m.group(2))
            if m.group(1) == "FeaturesOfInterest":
                return CreationTarget(foi_id=ident)
            return CreationTarget(stream_id=ident, multi=m.group(1) == "MultiDatastreams")
    raise ValidationFailed(f"not a SensorThings creation topic: {topic[:200]}", code="invalid_topic",
                           field="topic")


def is_notification(body: Any) -> bool:
    """A message the service itself published (it carries the ``@iot.selfLink`` only the service assigns)."""
    return isinstance(body, dict) and "@iot.selfLink" in body


# -- notifications ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Notification:
    topic: str
    body: Mapping[str, Any]
    selectable: bool = True     # $select variants may be derived (not for property topics)


def _collection_back(entity: Entity, nav: Nav) -> Nav | None:
    """For a to-one link (Observation.Datastream), the collection on the target it belongs to
    (Datastream.Observations)."""
    if nav.kind != "fk_here":
        return None
    target = ENTITIES.get(nav.target)
    if target is None:
        return None
    return next((b for b in target.navs if b.kind == "fk_there" and b.column == nav.column
                 and b.target == entity.name), None)


def notifications(change: Mapping[str, Any]) -> list[Notification]:
    """The topics (and bodies) a ``sta.changed`` event is published to, without ``$select`` variants."""
    entity = ENTITIES.get(str(change.get("entity")))
    body = change.get("json")
    if entity is None or not isinstance(body, Mapping):
        return []
    op, ident = change.get("op"), change.get("id")
    out: list[Notification] = []
    if op == "created":
        out.append(Notification(f"{PREFIX}/{entity.set_name}", body))
        links = change.get("links") or {}
        for name, target_id in links.items():
            nav = entity.nav(str(name))
            back = _collection_back(entity, nav) if nav is not None else None
            if nav is None or back is None or not isinstance(target_id, int):
                continue
            out.append(Notification(f"{PREFIX}/{ENTITIES[nav.target].set_name}({target_id})/{back.name}", body))
    elif op == "updated" and isinstance(ident, int):
        base = f"{PREFIX}/{entity.set_name}({ident})"
        out.append(Notification(base, body))
        for name in change.get("changed") or []:
            if entity.prop(str(name)) is not None and name in body:
                out.append(Notification(f"{base}/{name}", {name: body[name]}, selectable=False))
    return out


def project(body: Mapping[str, Any], select: list[str]) -> dict[str, Any]:
    """``$select`` on an entity's JSON: properties by name, ``id``/``selfLink`` and navigation links by name."""
    wanted: set[str] = set()
    for name in select:
        name = name.strip()
        if name in ("id", "@iot.id"):
            wanted.add("@iot.id")
        elif name in ("selfLink", "@iot.selfLink"):
            wanted.add("@iot.selfLink")
        elif name:
            wanted.update((name, f"{name}@iot.navigationLink"))
    return {k: v for k, v in body.items() if k in wanted}


@dataclass
class NotifyStats:
    events: int = 0                  # sta.changed events seen
    idle: int = 0                    # events skipped because nobody listens (embedded broker)
    published: int = 0               # messages published
    dropped_queue_full: int = 0      # events dropped: the publisher could not keep up
    dropped_disconnected: int = 0    # events/messages dropped: the broker was away
    created: int = 0                 # Observations created from MQTT messages
    duplicates: int = 0              # messages whose Observation was already stored (redeliveries)
    refused: int = 0                 # messages dead-lettered
    ignored: int = 0                 # platform notifications and empty payloads seen on creation topics


class SensorThingsMqtt:
    """Wires the SensorThings MQTT extension onto the platform's broker, bridge and bus.

    ``start()`` registers the creation topics (on the embedded broker's interceptor, or as bridge routes with
    an external broker) and subscribes to ``sta.changed``; call it before ``bridge.start()``. ``stop()`` before
    the bridge and the broker stop: later creation publishes on the embedded broker are not acknowledged.
    """

    def __init__(self, sta: SensorThings, bridge: MqttBridge, broker: EmbeddedBroker | None,
                 dead_letters: DeadLetters, metrics: Metrics, *, queue_size: int = 10_000,
                 notify_qos: int = 0) -> None:
        self.sta, self.bridge, self.broker = sta, bridge, broker
        self.dead_letters, self.metrics = dead_letters, metrics
        self.notify_qos = notify_qos
        self.stats = NotifyStats()
        self._queue: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue(queue_size)
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._warned: set[str] = set()
        self._own = frozenset({bridge.client_id})

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.broker is not None:
            self.broker.intercept(CREATION_FILTERS, self._take, exempt=self._own)
        else:
            for pattern in CREATION_FILTERS:
                self.bridge.route(pattern, self._on_bridge_message, family="sensorthings")
        self._subscription = await self.sta.bus.subscribe("sta.changed", self._on_change, queue_size=10_000)
        self._task = asyncio.create_task(self._drain(), name="sta-mqtt-publisher")
        self.metrics.gauge_callback("citydata_sta_mqtt_total",
                                    "SensorThings MQTT extension counters (monotonic)", self._counters)

    async def stop(self) -> None:
        self._stopping = True
        if self._subscription is not None:
            await self._subscription.close()
            self._subscription = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _counters(self) -> dict[str, float]:
        return {k: float(v) for k, v in vars(self.stats).items()}

    # -- creation ------------------------------------------------------------------------------------------------
    async def create(self, topic: str, payload: bytes) -> bool:
        """Create the Observation a message on a creation topic carries. Returns False when the message is no
        creation (a platform notification, or empty); raises the ``CityDataError`` that refused it."""
        if not payload.strip():
            self.stats.ignored += 1
            return False
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError as err:
            raise ValidationFailed(f"the payload is not JSON: {err}", code="invalid_json") from err
        if is_notification(body):
            self.stats.ignored += 1
            return False
        target = creation_target(topic)
        if not isinstance(body, dict):
            raise ValidationFailed("the payload must be one Observation (a JSON object)", code="invalid_entity")
        outcome = (await self.sta.ingest.create([body], stream_id=target.stream_id, multi=target.multi,
                                                foi_id=target.foi_id, channel="mqtt"))[0]
        if isinstance(outcome, CityDataError):
            raise outcome
        if outcome.created:
            self.stats.created += 1
        else:
            self.stats.duplicates += 1
        return True

    async def _on_bridge_message(self, topic: str, payload: bytes) -> None:
        """External broker: the bridge dead-letters what ``create`` refuses."""
        try:
            await self.create(topic, payload)
        except CityDataError:
            self.stats.refused += 1
            raise

    async def _take(self, topic: str, payload: bytes) -> bool:
        """Embedded broker: called before the PUBACK. True: stored or dead-lettered (acknowledge, do not route);
        False: not a creation (route as usual); raises: not taken now (no acknowledgement)."""
        if self._stopping:
            raise Unavailable("the platform is stopping")
        self.metrics.mqtt_messages.labels("sensorthings").inc()
        try:
            return await self.create(topic, payload)
        except CityDataError as err:
            if err.status == Unavailable.status:
                raise
            reason = f"{err.code}: {err.message}"
        except Exception as err:
            log.exception("SensorThings MQTT creation on %s failed", topic)
            reason = f"internal_error: {type(err).__name__}"
        self.stats.refused += 1
        await self.dead_letters.record("mqtt", topic, payload, reason)
        return True

    # -- notifications ---------------------------------------------------------------------------------------
    async def _on_change(self, delivery: Delivery) -> None:
        """Bus subscriber: must stay quick (a slow live subscriber is cut off), so it only queues."""
        self.stats.events += 1
        if not self.bridge.connected.is_set():
            self.stats.dropped_disconnected += 1
            self._warn_once("away", "MQTT broker unreachable: SensorThings notifications are dropped (counted)")
            return
        if self.broker is not None and not self._listened():
            self.stats.idle += 1
            return
        try:
            self._queue.put_nowait(delivery.event.data)
        except asyncio.QueueFull:
            self.stats.dropped_queue_full += 1
            self._warn_once("full", "SensorThings MQTT publisher cannot keep up: notifications are dropped (counted)")

    def _listened(self) -> list[str]:
        """The subscribed filters (embedded broker) that may match a SensorThings topic."""
        assert self.broker is not None
        return [f for f in self.broker.subscription_filters(exclude=self._own)
                if f.startswith((f"{PREFIX}/", "+", "#"))]

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    async def _drain(self) -> None:
        while True:
            change = await self._queue.get()
            try:
                await self._publish(change)
            except Exception:
                log.exception("SensorThings MQTT notification failed")

    def messages(self, change: Mapping[str, Any], filters: list[str] | None) -> list[tuple[str, bytes]]:
        """(topic, payload) to publish for a change; ``filters``: the subscribed filters (None: unknown, so
        every base topic and no ``$select``)."""
        out: list[tuple[str, bytes]] = []
        seen: set[str] = set()
        selects = [f.split(SELECT, 1) for f in filters or [] if SELECT in f]
        for note in notifications(change):
            if filters is None or any(topic_matches(f, note.topic) for f in filters):
                seen.add(note.topic)
                out.append((note.topic, orjson.dumps(dict(note.body))))
            if not note.selectable:
                continue
            for base, select in selects:
                topic = f"{note.topic}{SELECT}{select}"
                if topic not in seen and topic_matches(base, note.topic):
                    seen.add(topic)
                    out.append((topic, orjson.dumps(project(note.body, select.split(",")))))
        return out

    async def _publish(self, change: Mapping[str, Any]) -> None:
        filters = self._listened() if self.broker is not None else None
        for topic, payload in self.messages(change, filters):
            if await self.bridge.publish(topic, payload, qos=self.notify_qos):
                self.stats.published += 1
                self._warned.discard("away")
                self._warned.discard("full")
            else:
                self.stats.dropped_disconnected += 1
                self._warn_once("away", "MQTT broker unreachable: SensorThings notifications are dropped (counted)")


__all__ = ["CREATION_FILTERS", "CreationTarget", "Notification", "NotifyStats", "SensorThingsMqtt",
           "creation_target", "is_notification", "notifications", "project"]
