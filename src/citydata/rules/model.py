"""Rules as data: the rule document, its validation (with the path of a bad field) and its compiled form.

A rule document (YAML or JSON)::

    id: do-low-beaches                 # [a-z0-9][a-z0-9_.-]*, stable
    name: Low dissolved oxygen at the beaches
    description: ...
    enabled: true
    version: 3                         # assigned by the server on every change (ignored on input)
    source: {observed_property: dissolved_oxygen}          # which events feed the rule (a selector)
    group_by: datastream               # one rule instance (and alert) per: datastream | device | zone |
                                       #   key | traveller | camera | none | field:<dotted path>
    condition: {aggregate: {function: mean, window: 1h, below: 4.0, clear_above: 4.5, name: do_mean}}
    renotify: 5m                       # at most one update of a firing alert per this much event time
    alert:
      kind: env.low_oxygen             # dotted
      severity: moderate               # minor | moderate | severe | extreme (CAP 1.2)
      category: Env                    # CAP 1.2 category
      urgency: expected                # immediate | expected | future | past | unknown
      certainty: observed              # observed | likely | possible | unlikely | unknown
      message: "Mean dissolved oxygen {do_mean:.1f} mg/L at {subject}"
      message_th: "..."                # optional
      data: {}                         # optional fixed fields added to the alert's data
      copy_fields: [zone, now_in]      # optional payload fields of the newest event copied into data
      cap_draft:                       # optional: ask for a CAP warning draft (an operator approves it)
        event: Flash flood
        headline_en: ...               # every *_en/*_th text is a template too
        ...

Placeholders: ``rule_id rule_name subject value zone_id zone_name zone_name_th device_id datastream_id
observed_at`` and the ``name`` of every condition leaf, with optional format specs (``{value:.1f}``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from citydata.rules.conditions.base import BindContext, Condition, parse_condition
from citydata.rules.selector import Selector, parse_selector
from citydata.rules.spec import Reader, RuleInvalid

SEVERITIES = ("minor", "moderate", "severe", "extreme")
CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
              "CBRNE", "Other")
URGENCIES = ("immediate", "expected", "future", "past", "unknown")
CERTAINTIES = ("observed", "likely", "possible", "unlikely", "unknown")
GROUPS = ("datastream", "device", "zone", "key", "traveller", "camera", "none")
GROUP_FIELDS = {"traveller": "traveller_id", "camera": "camera_id"}
BASE_PLACEHOLDERS = frozenset({"rule_id", "rule_name", "subject", "value", "zone_id", "zone_name",
                               "zone_name_th", "device_id", "datastream_id", "observed_at", "unit"})
CAP_TEXTS = ("headline_en", "headline_th", "description_en", "description_th", "instruction_en",
             "instruction_th", "area_desc")
ID_PATTERN = r"[a-z0-9][a-z0-9_.-]{0,99}"
KIND_PATTERN = r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+"


class _Safe(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        if value is None:
            return "-"
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _Safe()


def render(template: str | None, values: Mapping[str, Any]) -> str | None:
    """Fill a validated template; missing values render as ``-``."""
    if template is None:
        return None
    return _FORMATTER.vformat(template, (), _Defaulting(values))


class _Defaulting(dict[str, Any]):
    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)

    def __missing__(self, key: str) -> Any:
        return None


def check_template(template: str, path: str, known: frozenset[str]) -> None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:
        raise RuleInvalid(path, f"bad template ({err})") from err
    for _, name, _, _ in parts:
        if name is None:
            continue
        base = name.split(".")[0].split("[")[0]
        if not base or base.isdigit():
            raise RuleInvalid(path, "placeholders must be named, like {value}")
        if base not in known:
            raise RuleInvalid(path, f"unknown placeholder {{{base}}}; known: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class AlertSpec:
    kind: str
    severity: str
    category: str
    urgency: str
    certainty: str
    message: str
    message_th: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    cap_draft: dict[str, str] | None = None
    copy_fields: tuple[str, ...] = ()


@dataclass
class Rule:
    id: str
    name: str
    description: str
    enabled: bool
    source: Selector
    group_by: str
    condition: Condition
    alert: AlertSpec
    renotify_s: float
    version: int = 0
    doc: dict[str, Any] = field(default_factory=dict)

    def datastream_ids(self) -> set[int]:
        """Every Datastream the rule names explicitly (each must exist)."""
        ids = set(self.source.datastreams)
        for leaf in self.condition.leaves():
            if leaf.where is not None:
                ids |= leaf.where.datastreams
        return ids

    def bind(self, ctx: BindContext) -> Rule:
        self.condition.bind(ctx)
        return self


def _alert(reader: Reader, known: frozenset[str]) -> AlertSpec:
    message = reader.req_text("message")
    check_template(message, reader.at("message"), known)
    message_th = reader.text("message_th")
    if message_th is not None:
        check_template(message_th, reader.at("message_th"), known)
    data = reader.raw("data", {})
    if not isinstance(data, dict):
        raise RuleInvalid(reader.at("data"), "must be a mapping")
    cap: dict[str, str] | None = None
    cap_reader = reader.sub("cap_draft")
    if cap_reader is not None:
        cap = {"event": cap_reader.req_text("event", max_len=200)}
        for key in CAP_TEXTS:
            text = cap_reader.text(key)
            if text is not None:
                check_template(text, cap_reader.at(key), known)
                cap[key] = text
        if "headline_en" not in cap:
            raise RuleInvalid(cap_reader.at("headline_en"), "is required")
        cap_reader.done()
    spec = AlertSpec(
        kind=reader.req_text("kind", pattern=KIND_PATTERN, max_len=100),
        severity=reader.choice("severity", SEVERITIES),
        category=reader.choice("category", CATEGORIES),
        urgency=reader.choice("urgency", URGENCIES, "unknown"),
        certainty=reader.choice("certainty", CERTAINTIES, "observed"),
        message=message, message_th=message_th, data=dict(data), cap_draft=cap,
        copy_fields=tuple(reader.strings("copy_fields")))
    reader.done()
    return spec


def parse_rule(doc: Any, *, ctx: BindContext | None = None) -> Rule:
    """Validate a rule document; ``RuleInvalid`` names the bad field. With ``ctx`` the rule is also bound
    (places resolved) so it is ready for the engine."""
    reader = Reader(doc, "")
    rule_id = reader.req_text("id", pattern=ID_PATTERN)
    name = reader.req_text("name", max_len=200)
    description = reader.text("description", "") or ""
    enabled = reader.boolean("enabled", True)
    reader.raw("version")
    source_doc = reader.raw("source")
    if source_doc is None:
        raise RuleInvalid("source", "is required (a selector such as {observed_property: precipitation})")
    source = parse_selector(source_doc, "source")
    group_by = reader.text("group_by", "datastream") or "datastream"
    if group_by not in GROUPS and not (group_by.startswith("field:") and len(group_by) > 6):
        raise RuleInvalid("group_by", f"must be one of {', '.join(GROUPS)} or field:<path>")
    if reader.raw("condition") is None:
        raise RuleInvalid("condition", "is required")
    condition = parse_condition(reader.raw("condition"), "condition")
    names = [leaf.name for leaf in condition.leaves() if leaf.name]
    if len(names) != len(set(names)):
        raise RuleInvalid("condition", "condition names must be unique within a rule")
    renotify = reader.duration("renotify", 300.0)
    assert renotify is not None
    alert_reader = reader.sub("alert")
    if alert_reader is None:
        raise RuleInvalid("alert", "is required")
    alert = _alert(alert_reader, BASE_PLACEHOLDERS | frozenset(names))
    reader.done()
    clean = {k: v for k, v in dict(doc).items() if k != "version"}
    rule = Rule(rule_id, name, description, enabled, source, group_by, condition, alert, renotify, doc=clean)
    if ctx is not None:
        rule.bind(ctx)
    return rule
