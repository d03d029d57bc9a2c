"""``absence``: no event for a while (a sensor, a device or a traveller gone silent).

    absence: {for: 30m}

Holds when the newest event of the instance is older than ``for`` at the time of evaluation. Between events
the engine evaluates it on its clock's timer (``clock.sleep``), at clock time minus the allowed lateness, so
it fires ``for`` (+ lateness, + at most one tick) after the last event, and clears on the next event. An
instance exists once it has seen one event (``device.registered`` counts when the rule selects it).
"""

from __future__ import annotations

from typing import Any

from citydata.rules.conditions.base import Condition, Fact
from citydata.rules.spec import Reader, RuleInvalid


class Absence(Condition):
    kind = "absence"
    timed = True

    def configure(self, spec: Reader) -> None:
        after = spec.duration("for") or spec.duration("after")
        if after is None:
            raise RuleInvalid(spec.at("for"), "is required (a duration like 30m)")
        self.after = after

    def update(self, st: dict[str, Any], fact: Fact) -> None:
        if fact.t > st.get("last", float("-inf")):
            st["last"] = fact.t

    def evaluate(self, states: dict[str, dict[str, Any]], now: float) -> bool:
        st = states.setdefault(self.path, {})
        last = st.get("last")
        on = last is not None and now - float(last) > self.after
        st["on"] = on
        st["x"] = None if last is None else now - float(last)
        return on

    def value(self, st: dict[str, Any]) -> float | None:
        x = st.get("x")
        return None if x is None else round(float(x) / 60.0, 1)   # minutes of silence
