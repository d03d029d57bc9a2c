"""amqtt plugins that make the embedded broker check CityData API tokens, and take selected publishes before
they are acknowledged.

amqtt loads plugins by dotted class path from its config, so the broker's config names a ``gate`` key and the
plugins look up the live ``MqttGate`` (token verification, topic rules, publish interception) in ``GATES``.

Publish interception (``PublishInterceptPlugin``): amqtt 0.12's protocol handler puts an incoming PUBLISH on the
session's ``delivered_message_queue`` and only then sends the acknowledgement (QoS 1: ``await queue.put(msg)``
then PUBACK in ``ProtocolHandler._handle_qos1_message_flow``; QoS 2: put then PUBCOMP; QoS 0: ``put_nowait``).
The plugin replaces that queue, when a client connects, by an ``InterceptingQueue`` whose ``put`` first offers
the message to the gate's ``intercept`` callback and waits for it. So a capability that intercepts a topic
(the SensorThings ``v1.1/.../Observations`` creation topics) has stored the message before the device gets its
PUBACK. ``intercept`` returns True when it took the message (then the broker neither forwards nor retains it)
and False to let the broker route it as usual (including the ACL check). When it raises, the message is not
acknowledged: the client's connection is closed so that it sends the message again when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

log = logging.getLogger(__name__)

# (username, password) -> principal-like object or None
Verifier = Callable[[str | None, str | None], Awaitable[Any]]
# (principal, topic, "publish"|"subscribe") -> allowed
TopicRule = Callable[[Any, str, str], bool]


# (client id, topic) -> does an interceptor want messages on this topic from this client (cheap, synchronous)
Claims = Callable[[str, str], bool]
# (client id, topic, payload) -> True: taken (not routed further); False: route as usual; raises: not acknowledged
Intercept = Callable[[str, str, bytes], Awaitable[bool]]
# client id -> close that client's connection
DropClient = Callable[[str], Awaitable[None]]


@dataclass
class MqttGate:
    verify: Verifier
    allow_topic: TopicRule
    principals: dict[str, Any] = field(default_factory=dict)   # client id -> principal
    claims: Claims | None = None
    intercept: Intercept | None = None
    drop_client: DropClient | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)


class InterceptingQueue(asyncio.Queue[Any]):
    """A session's ``delivered_message_queue`` with the gate's publish interceptor in front (see the module doc)."""

    def __init__(self, gate: MqttGate, session: Session) -> None:
        super().__init__()
        self.gate, self.session = gate, session

    def _claimed(self, item: Any) -> bool:
        claims = self.gate.claims
        topic = getattr(item, "topic", None)
        return claims is not None and isinstance(topic, str) and claims(self.session.client_id or "", topic)

    async def _offer(self, item: Any) -> bool:
        """True when the interceptor took the message; raises when it could not be taken now."""
        intercept = self.gate.intercept
        if intercept is None:
            return False
        data = getattr(item, "data", None)
        return await intercept(self.session.client_id or "", str(item.topic), bytes(data or b""))

    async def put(self, item: Any) -> None:
        if self._claimed(item):
            try:
                taken = await self._offer(item)
            except Exception:
                # Not taken and not acknowledged: close the connection so the client sends it again later.
                log.warning("MQTT publish on %s from client %s not taken; closing the connection so it is "
                            "redelivered", item.topic, self.session.client_id, exc_info=True)
                self._drop()
                raise asyncio.CancelledError from None   # ends the flow without PUBACK/PUBCOMP, quietly
            if taken:
                return
        await super().put(item)

    def put_nowait(self, item: Any) -> None:
        if not self._claimed(item):
            super().put_nowait(item)
            return
        # QoS 0 (nothing to acknowledge): take it in the background.
        task = asyncio.get_running_loop().create_task(self._later(item))
        self.gate.background.add(task)
        task.add_done_callback(self.gate.background.discard)

    async def _later(self, item: Any) -> None:
        try:
            taken = await self._offer(item)
        except Exception:
            log.warning("MQTT QoS 0 publish on %s from client %s could not be taken; dropped", item.topic,
                        self.session.client_id, exc_info=True)
            return
        if not taken:
            with contextlib.suppress(asyncio.QueueFull):
                super().put_nowait(item)

    def _drop(self) -> None:
        drop, client_id = self.gate.drop_client, self.session.client_id
        if drop is None or not client_id:
            return
        task: asyncio.Task[None] = asyncio.ensure_future(drop(client_id))
        self.gate.background.add(task)
        task.add_done_callback(self.gate.background.discard)


class PublishInterceptPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Installs the ``InterceptingQueue`` on each session as it connects. It takes no part in the
    authentication decision (returns None), so it runs beside ``TokenAuthPlugin`` or the anonymous plugin."""

    @dataclass
    class Config:
        gate: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.gate = GATES[self.config.gate]

    async def authenticate(self, *, session: Session) -> bool | None:
        queue = session.delivered_message_queue
        if isinstance(queue, InterceptingQueue):   # a persistent session reconnecting
            queue.gate = self.gate
            return None
        replacement = InterceptingQueue(self.gate, session)
        while not queue.empty():
            asyncio.Queue.put_nowait(replacement, queue.get_nowait())
        session.delivered_message_queue = replacement
        return None


GATES: dict[str, MqttGate] = {}


class TokenAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Accept a connection when its username or password is a valid API token (or the platform's own key)."""

    @dataclass
    class Config:
        gate: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.gate = GATES[self.config.gate]

    async def authenticate(self, *, session: Session) -> bool | None:
        try:
            principal = await self.gate.verify(session.username, session.password)
        except Exception:
            log.warning("MQTT authentication error for client %s", session.client_id, exc_info=True)
            principal = None
        if principal is None:
            log.info("MQTT connection refused: bad credentials (client %s)", session.client_id)
            return False
        self.gate.principals[session.client_id] = principal
        return True


class TopicAclPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """Check every publish and subscribe against the platform's topic rules."""

    @dataclass
    class Config:
        gate: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.gate = GATES[self.config.gate]

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool | None:
        if session is None or topic is None or action is None:
            return False
        principal = self.gate.principals.get(session.client_id)
        if principal is None:
            return False
        verb = "publish" if action == Action.PUBLISH else "subscribe"
        allowed = self.gate.allow_topic(principal, topic, verb)
        if not allowed:
            log.info("MQTT %s refused on %s for client %s", verb, topic, session.client_id)
        return allowed
