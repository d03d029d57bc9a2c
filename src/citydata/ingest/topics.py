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
    # alerts about people are filtered like the API does: tracking and CCTV alerts only to the roles that see them
    ("citydata/alerts/tracking/#", "subscribe", "tracking.read_positions"),
    ("citydata/alerts/vision/#", "subscribe", "vision.watchlist"),
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


def _overlap(a: str, b: str) -> bool:
    """True when some topic matches both filters."""
    a_parts, b_parts = a.split("/"), b.split("/")
    for i in range(max(len(a_parts), len(b_parts))):
        x = a_parts[i] if i < len(a_parts) else None
        y = b_parts[i] if i < len(b_parts) else None
        if x == "#" or y == "#":
            return True
        if x is None or y is None:
            return False
        if x != "+" and y != "+" and x != y:
            return False
    return True


def topic_allowed(principal: Principal, topic: str, verb: str) -> bool:
    if principal.token_id == "internal:platform":   # the platform's own session (app.INTERNAL_TOKEN_ID)
        return True
    if verb == "subscribe":
        # within a rule the principal holds, and every narrower rule the filter reaches into holds too
        # (a wildcard on citydata/alerts/# must not receive tracking alerts a role may not see)
        inside = [perm for pattern, v, perm in TOPIC_RULES if v == verb and _filter_within(topic, pattern)]
        if not inside or not principal.can(inside[0]):
            return False
        return all(principal.can(perm) for pattern, v, perm in TOPIC_RULES if v == verb and _overlap(topic, pattern))
    for pattern, rule_verb, permission in TOPIC_RULES:
        if rule_verb != verb or not topic_matches(pattern, topic):
            continue
        if not principal.can(permission):
            return False
        # a device token bound to one device publishes only for that device
        return not (pattern.startswith("citydata/devices/") and principal.device_id
                    and topic.split("/")[2] != principal.device_id)
    return False
