"""``event_match``: a typed bus event of a kind (and with payload fields) happened.

    event_match: {event: vision.watchlist_hit, data: {list: wanted}, hold: 30m}

Holds from a matching event until ``hold`` (default 1 h) passes without another one (evaluated on the
engine's timer), or until an event of a ``clear_on`` kind (e.g. ``tracking.overdue_cleared``) arrives.
Every further match while it holds updates the alert's evidence (one alert, updated).
"""

from __future__ import annotations

from typing import Any

from citydata.rules.conditions.base import Condition, Fact
from citydata.rules.selector import Selector, parse_selector
from citydata.rules.spec import Reader, RuleInvalid


class EventMatch(Condition):
    kind = "event_match"
    timed = True

    def configure(self, spec: Reader) -> None:
        events = spec.strings("event") + spec.strings("events")
        if not events:
            raise RuleInvalid(spec.at("event"), "is required (an event kind pattern like vision.watchlist_hit)")
        data = spec.raw("data")
        self.match: Selector = parse_selector({"events": events, **({"data": data} if data else {})}, spec.path)
        clear_on = spec.strings("clear_on")
        self.clear_on: Selector | None = parse_selector({"events": clear_on}, spec.at("clear_on")) \
            if clear_on else None
        hold = spec.duration("hold", 3600.0)
        assert hold is not None
        self.hold = hold

    def accepts(self, fact: Fact) -> bool:
        if not super().accepts(fact):
            return False
        return self.match.matches(fact.kind, fact.data, None) or (
            self.clear_on is not None and self.clear_on.kind_ok(fact.kind))

    def update(self, st: dict[str, Any], fact: Fact) -> None:
        if self.clear_on is not None and self.clear_on.kind_ok(fact.kind) \
                and not self.match.matches(fact.kind, fact.data, None):
            if fact.t >= st.get("last", float("-inf")):
                st["last"] = None
                st["cleared"] = fact.t
            return
        if fact.t < st.get("cleared", float("-inf")):
            return
        if st.get("last") is None or fact.t > st["last"]:
            st["last"] = fact.t
        st["n"] = int(st.get("n", 0)) + 1

    def evaluate(self, states: dict[str, dict[str, Any]], now: float) -> bool:
        st = states.setdefault(self.path, {})
        last = st.get("last")
        on = last is not None and now - float(last) < self.hold
        st["on"] = on
        return on

    def value(self, st: dict[str, Any]) -> float | None:
        n = st.get("n")
        return None if n is None else float(n)
