"""Property tests (hypothesis) on the parsers that read outside input: MQTT topics and filters, SensorThings
creation topics, WiFi log lines in every format, rule documents and durations, dataset cell values, device
heartbeats. Each parser either returns a value or raises its own refusal error (which becomes a 4xx answer or a
dead letter with the reason); any other exception is a crash, and fails the test."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from citydata.datasets.types import TYPES, BadValue
from citydata.datasets.types import parse as parse_cell
from citydata.devices import HeartbeatIn
from citydata.errors import CityDataError, ValidationFailed
from citydata.ingest.mqtt import topic_matches
from citydata.ingest.topics import _filter_within, _overlap
from citydata.rules.model import parse_rule
from citydata.rules.spec import RuleInvalid, parse_duration
from citydata.sensorthings.mqtt import CREATION_FILTERS, creation_target
from citydata.wifi.model import ParseError
from citydata.wifi.parsers import Context, formats, parse_line

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CTX = Context(now=datetime(2026, 11, 21, 5, 0, tzinfo=UTC), tz=ZoneInfo("Asia/Bangkok"))

# -- MQTT topics -----------------------------------------------------------------------------------------------

LEVEL = st.sampled_from(["v1.1", "citydata", "devices", "alerts", "Observations", "Datastreams(1)", "x", "", "+"])
TOPIC = st.lists(st.one_of(LEVEL, st.text(max_size=6)), min_size=1, max_size=5).map("/".join)
FILTER = st.builds(lambda levels, tail: "/".join(levels + (["#"] if tail else [])),
                   st.lists(st.one_of(LEVEL, st.just("+")), min_size=1, max_size=4), st.booleans())
CONCRETE = st.lists(st.sampled_from(["v1.1", "citydata", "alerts", "tracking", "a", "b", ""]), min_size=1,
                    max_size=5).map("/".join)


@FUZZ
@given(FILTER, CONCRETE)
def test_topic_matching_agrees_with_a_reference_matcher(pattern: str, topic: str) -> None:
    import re

    regex = "^" + "/".join("[^/]*" if p == "+" else ".*" if p == "#" else re.escape(p)
                           for p in pattern.split("/")) + "$"
    if pattern.endswith("/#"):   # "a/#" also matches "a" itself (MQTT 3.1.1 section 4.7.1.2)
        regex = "^" + regex[1:-1].removesuffix("/.*") + "(/.*)?$"
    assert topic_matches(pattern, topic) == bool(re.match(regex, topic)), (pattern, topic)


@FUZZ
@given(FILTER, FILTER, CONCRETE)
def test_a_filter_within_a_rule_only_matches_topics_of_the_rule(filter_: str, rule: str, topic: str) -> None:
    """The ACL's soundness: a subscription allowed under a rule never receives a topic outside it, and two
    filters that both match a topic are seen as overlapping."""
    if _filter_within(filter_, rule) and topic_matches(filter_, topic):
        assert topic_matches(rule, topic), (filter_, rule, topic)
    if topic_matches(filter_, topic) and topic_matches(rule, topic):
        assert _overlap(filter_, rule), (filter_, rule, topic)


@FUZZ
@given(st.one_of(TOPIC, st.text(max_size=80)))
@example("v1.1/Datastreams(99999999999999999999)/Observations")
@example("v1.1/Datastreams(-1)/Observations")
def test_creation_topics_parse_or_are_refused(topic: str) -> None:
    try:
        target = creation_target(topic)
    except ValidationFailed as err:
        assert err.code == "invalid_topic"
        return
    assert any(topic_matches(f, topic) for f in CREATION_FILTERS)
    assert target.stream_id is None or 0 <= target.stream_id < 10**18


# -- WiFi log lines --------------------------------------------------------------------------------------------

SEEDS = [
    "<30>Nov 21 10:15:01 wifi-patong-001 hostapd: wlan0: AP-STA-CONNECTED 3c:22:fb:12:34:56",
    "<134>Nov 21 10:15:01 wifi-old-town-003 12345: %DOT11-6-ASSOC: Interface Dot11Radio0, Station "
    "wifi-old-town-003 3c22.fb12.3456 Associated KEY_MGMT[NONE]",
    "<133>Nov 21 10:15:01 controller stm[2519]: <501095> <NOTI> |AP wifi-kata-007@10.1.1.7 stm|  Assoc "
    "request @ 10:15:01.180185: 3c:22:fb:12:34:56 (SN 2): AP 10.1.1.7-24:de:c6:aa:bb:cc-wifi-kata-007",
    '{"Acct-Status-Type": "Interim-Update", "Calling-Station-Id": "3C-22-FB-12-34-56", "NAS-Identifier": '
    '"wifi-patong-001", "Acct-Session-Id": "5F3A0001", "Acct-Session-Time": 600, "Event-Timestamp": '
    '"Nov 21 2026 10:15:01 +07"}',
    '{"event": "associate", "mac": "3c:22:fb:12:34:56", "hotspot_id": "wifi-kata-001", "time": 1795230901}',
    '<134>Nov 21 10:15:01 radius1 radiusd[99]: Acct-Status-Type = Stop, User-Name = "guest", '
    'Calling-Station-Id = "3C-22-FB-12-34-56", NAS-Identifier = "wifi-patong-001", Acct-Session-Id = "5F3A0001"',
]


@st.composite
def mutated_line(draw: st.DrawFn) -> str:
    """A real line with a slice cut out, a slice replaced by random text, or truncated."""
    line = draw(st.sampled_from(SEEDS))
    i = draw(st.integers(0, len(line)))
    j = draw(st.integers(i, min(len(line), i + 30)))
    how = draw(st.sampled_from(["cut", "replace", "truncate", "insert"]))
    junk = draw(st.text(max_size=12))
    if how == "cut":
        return line[:i] + line[j:]
    if how == "replace":
        return line[:i] + junk + line[j:]
    if how == "insert":
        return line[:i] + junk + line[i:]
    return line[:i]


@FUZZ
@given(st.one_of(mutated_line(), st.text(max_size=200)), st.sampled_from(formats()))
def test_wifi_parsers_return_a_record_or_a_parse_error(line: str, fmt: str) -> None:
    try:
        rec = parse_line(line, fmt, CTX)
    except ParseError as err:
        assert str(err)          # the dead-letter reason
        return
    assert rec.at.tzinfo is not None
    assert rec.kind in ("start", "stop", "interim", "probe", "session") or isinstance(rec.kind, str)


# -- rule documents --------------------------------------------------------------------------------------------

JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
                       | st.text(max_size=12),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                   max_size=4),
                       max_leaves=20)
VALID_RULE: dict[str, Any] = {
    "id": "rain-heavy", "name": "Heavy rain", "source": {"observed_property": "precipitation"},
    "condition": {"type": "threshold", "above": 50, "for": "10m"},
    "alert": {"severity": "warning", "title": "Heavy rain at {place}"},
}


@st.composite
def mutated_rule(draw: st.DrawFn) -> Any:
    doc = json.loads(json.dumps(VALID_RULE))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*doc, "renotify", "group_by", "enabled"]))
        if draw(st.booleans()):
            doc[key] = draw(JSONISH)
        else:
            doc.pop(key, None)
    if draw(st.booleans()) and isinstance(doc.get("condition"), dict):
        doc["condition"][draw(st.sampled_from(["type", "above", "for", "below", "window", "aggregate"]))] = \
            draw(JSONISH)
    return doc


@FUZZ
@given(st.one_of(mutated_rule(), JSONISH))
def test_rule_documents_parse_or_are_refused_with_a_path(doc: Any) -> None:
    try:
        parse_rule(doc)
    except ValidationFailed as err:
        assert err.message
        assert isinstance(err, RuleInvalid) or err.code


@FUZZ
@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none()))
@example(float("nan"))
@example(float("inf"))
def test_durations_are_positive_finite_seconds_or_refused(value: Any) -> None:
    try:
        seconds = parse_duration(value, "for")
    except RuleInvalid:
        return
    assert math.isfinite(seconds) and seconds > 0


# -- dataset cells, heartbeats -----------------------------------------------------------------------------

@FUZZ
@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none()),
       st.sampled_from(TYPES))
def test_dataset_cells_parse_or_give_a_reason(value: Any, type_: str) -> None:
    try:
        out = parse_cell(value, type_)
    except BadValue as err:
        assert str(err)
        return
    if type_ == "number" and isinstance(out, float):
        assert math.isfinite(out) or not isinstance(value, str) or value.strip().lower() in ("nan", "inf")


@FUZZ
@given(JSONISH)
def test_heartbeat_payloads_validate_or_are_refused(doc: Any) -> None:
    try:
        HeartbeatIn.model_validate(doc)
    except ValidationError:
        pass
    except CityDataError as err:
        assert err.status < 500
