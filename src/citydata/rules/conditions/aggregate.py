"""``aggregate``: sum, mean, min, max or count of the values in a time window, against a level.

    aggregate: {function: sum, window: 1h, above: 35, clear_below: 20}     # rain over 1 h
    aggregate: {function: mean, window: 1h, below: 4.0, clear_above: 4.5}  # mean dissolved oxygen

The window ends at the instance's newest event time (or, between events, at the engine's clock minus the
allowed lateness) and holds the points with ``end - window < t <= end``. Each series (datastream) is
aggregated on its own; across the series of one instance the highest (``above``) or lowest (``below``) wins.
Points are bounded (``max_points`` per series, oldest dropped and counted).
"""

from __future__ import annotations

from typing import Any

from citydata.rules.conditions.base import Condition, Fact, Trigger, add_point, series_figures
from citydata.rules.spec import Reader

FUNCTIONS = ("sum", "mean", "min", "max", "count")


class Aggregate(Condition):
    kind = "aggregate"
    timed = True

    def configure(self, spec: Reader) -> None:
        self.function = spec.choice("function", FUNCTIONS)
        window = spec.duration("window", required=True)
        assert window is not None
        self.window = window
        self.min_points = spec.integer("min_points", 1, minimum=1)
        self.trigger = Trigger(spec)

    def update(self, st: dict[str, Any], fact: Fact) -> None:
        x = 1.0 if self.function == "count" else fact.number(self.field)
        if x is not None:
            add_point(st, fact.series, fact.t, x, self.window, self.limits)

    def _figure(self, points: list[list[float]]) -> float:
        values = [p[1] for p in points]
        if self.function in ("sum", "count"):
            return float(sum(values))
        if self.function == "mean":
            return float(sum(values) / len(values))
        return float(min(values) if self.function == "min" else max(values))

    def evaluate(self, states: dict[str, dict[str, Any]], now: float) -> bool:
        st = states.setdefault(self.path, {})
        figures = series_figures(st, now, self.window, self.min_points, self._figure)
        on = bool(st.get("on", False))
        if figures:
            x = self.trigger.pick(figures)
            on = self.trigger.step(on, x)
            st["x"] = x
        else:
            on, st["x"] = False, None
        st["on"] = on
        return on

    def value(self, st: dict[str, Any]) -> float | None:
        x = st.get("x")
        return None if x is None else round(float(x), 3)
