"""amqtt plugins that make the embedded broker check CityData API tokens.

amqtt loads plugins by dotted class path from its config, so the broker's config names a ``gate`` key and the
plugins look up the live ``MqttGate`` (token verification and topic rules) in ``GATES``.
"""

from __future__ import annotations

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


@dataclass
class MqttGate:
    verify: Verifier
    allow_topic: TopicRule
    principals: dict[str, Any] = field(default_factory=dict)   # client id -> principal


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
