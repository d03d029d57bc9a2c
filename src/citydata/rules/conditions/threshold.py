"""``threshold``: the latest value crosses a level, with hysteresis.

    threshold: {above: 4.0, clear_below: 3.5}      # raise above 4.0, clear below 3.5
    threshold: {below: 4.0, clear_above: 4.5, field: result}

Per series (datastream, or event key): the latest value by event time wins (an older value arriving late is
counted and ignored); across the series of one instance (``group_by: zone``) the highest (``above``) or the
lowest (``below``) latest value is compared.
"""

from __future__ import annotations

from typing import Any

from citydata.rules.conditions.base import Condition, Fact, Trigger
from citydata.rules.spec import Reader


class Threshold(Condition):
    kind = "threshold"

    def configure(self, spec: Reader) -> None:
        self.trigger = Trigger(spec)

    def update(self, st: dict[str, Any], fact: Fact) -> None:
        x = fact.number(self.field)
        if x is None:
            return
        latest: dict[str, list[float]] | None = st.get("v")
        if latest is None:
            latest = st["v"] = {}
        prev = latest.get(fact.series)
        if prev is not None and fact.t < prev[0]:
            self.limits.late_points += 1
            return
        latest[fact.series] = [fact.t, x]

    def evaluate(self, states: dict[str, dict[str, Any]], now: float) -> bool:
        st = states.get(self.path)
        if st is None:
            st = states[self.path] = {}
        latest = st.get("v")
        if not latest:
            return False
        x = next(iter(latest.values()))[1] if len(latest) == 1 else self.trigger.pick(
            [p[1] for p in latest.values()])
        on = self.trigger.step(st.get("on", False), x)
        st["on"], st["x"] = on, x
        return on

    def value(self, st: dict[str, Any]) -> float | None:
        x = st.get("x")
        return None if x is None else float(x)
