"""Who may publish and subscribe to which MQTT topics (checked by the embedded broker on every packet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from citydata.ingest.mqtt import topic_matches

if TYPE_CHECKING:
    from citydata.auth import Principal

# (topic pattern, verb, permission). The first matching row decides; no row means refused.
TOPIC_RULES: tuple[tuple[str, str, str], ...] = (
    ("citydata/devices/+/heartbeat", "publish", "devices.write"),
    ("v1.1/#", "publish", "sensors.write"),
    ("v1.1/#", "subscribe", "sensors.read"),
    ("citydata/alerts/#", "subscribe", "alerts.read"),
)


def _filter_within(filter_: str, pattern: str) -> bool:
    """A subscription filter is allowed when every topic it can match is within the rule's pattern."""
    f_parts, p_parts = filter_.split("/"), pattern.split("/")
    for i, p in enumerate(p_parts):
        if p == "#":
            return True
        if i >= len(f_parts):
            return False
        f = f_parts[i]
        if f == "#" or (f == "+" and p != "+"):
            return False
        if p not in ("+", f):
            return False
    return len(f_parts) == len(p_parts)


def topic_allowed(principal: Principal, topic: str, verb: str) -> bool:
    if principal.token_id == "internal:platform":   # the platform's own session (app.INTERNAL_TOKEN_ID)
        return True
    for pattern, rule_verb, permission in TOPIC_RULES:
        if rule_verb != verb:
            continue
        matched = topic_matches(pattern, topic) if verb == "publish" else _filter_within(topic, pattern)
        if not matched:
            continue
        if not principal.can(permission):
            return False
        # a device token bound to one device publishes only for that device
        return not (verb == "publish" and pattern.startswith("citydata/devices/") and principal.device_id
                    and topic.split("/")[2] != principal.device_id)
    return False
