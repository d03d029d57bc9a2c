"""MQTT topic rules: who may publish and subscribe where, including wildcards over restricted alert kinds."""

from __future__ import annotations

import pytest

from citydata.auth import Principal, Role
from citydata.ingest.topics import topic_allowed


def who(role: Role, device_id: str | None = None) -> Principal:
    return Principal(f"t-{role}", role, "token", device_id=device_id)


@pytest.mark.parametrize(("role", "topic", "verb", "ok"), [
    (Role.DEVICE, "citydata/devices/rain-1/heartbeat", "publish", True),
    (Role.PUBLIC, "citydata/devices/rain-1/heartbeat", "publish", False),
    (Role.DEVICE, "v1.1/Datastreams(1)/Observations", "publish", True),
    (Role.ANALYST, "v1.1/Datastreams(1)/Observations", "publish", False),
    (Role.PUBLIC, "v1.1/Datastreams(1)/Observations", "subscribe", True),
    (Role.PUBLIC, "v1.1/#", "subscribe", True),
    (Role.PUBLIC, "#", "subscribe", False),
    (Role.OPERATOR, "citydata/alerts/env/#", "subscribe", True),
    (Role.OPERATOR, "citydata/alerts/tracking/#", "subscribe", True),
    (Role.OPERATOR, "citydata/alerts/vision/#", "subscribe", False),
    (Role.OPERATOR, "citydata/alerts/#", "subscribe", False),       # would reach vision alerts
    (Role.OPERATOR, "citydata/alerts/+/flood_risk", "subscribe", False),
    (Role.POLICE, "citydata/alerts/#", "subscribe", True),
    (Role.HEALTH, "citydata/alerts/env/#", "subscribe", True),
    (Role.HEALTH, "citydata/alerts/tracking/overdue", "subscribe", False),
    (Role.HOTEL, "citydata/alerts/env/#", "subscribe", False),
    (Role.DEVICE, "citydata/alerts/#", "publish", False),
])
def test_topic_rules(role: Role, topic: str, verb: str, ok: bool) -> None:
    assert topic_allowed(who(role), topic, verb) is ok


def test_a_device_bound_token_speaks_only_for_its_device() -> None:
    bound = who(Role.DEVICE, device_id="rain-1")
    assert topic_allowed(bound, "citydata/devices/rain-1/heartbeat", "publish")
    assert not topic_allowed(bound, "citydata/devices/rain-2/heartbeat", "publish")
