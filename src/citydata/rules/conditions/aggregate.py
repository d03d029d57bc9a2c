"""``aggregate``: sum, mean, min, max or count of the values in a time window, against a level.

    aggregate: {function: sum, window: 1h, above: 35, clear_below: 20}     # rain over 1 h
    aggregate: {function: mean, window: 1h, below: 4.0, clear_above: 4.5}  # mean dissolved oxygen

The window ends at the instance's newest event time (or, between events, at the engine's clock minus the
allowed lateness) and holds the points with ``end - window < t <= end``. Each series (datastream) is
aggregated on its own; across the series of one instance the highest (``above``) or lowest (``below``) wins.
Points are bounded (``max_points`` per series, oldest dropped and counted).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from citydata.rules.conditions.base import Condition, Fact, Trigger, add_point, running_sum, series_figures
from citydata.rules.spec import Reader

FUNCTIONS = ("sum", "mean", "min", "max", "count")
_VALUE = itemgetter(1)


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
        # map/itemgetter keeps the loop over a long window in C (a busy stream holds thousands of points)
        if self.function == "count":
            return float(len(points))
        if self.function == "sum":
            return float(sum(map(_VALUE, points)))
        if self.function == "mean":
            return float(sum(map(_VALUE, points)) / len(points))
        return float(min(map(_VALUE, points)) if self.function == "min" else max(map(_VALUE, points)))

    def evaluate(self, states: dict[str, dict[str, Any]], now: float) -> bool:
        st = states.setdefault(self.path, {})
        if self.function in ("sum", "count", "mean"):
            figures = self._running(st, now)
        else:
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

    def _running(self, st: dict[str, Any], now: float) -> list[float]:
        """Sum, count and mean from running totals per series (O(1) per event however long the window)."""
        out = []
        for series, points in st.get("s", {}).items():
            total, count = running_sum(st, series, points, now, self.window)
            if count >= self.min_points:
                out.append(total / count if self.function == "mean" else (float(count) if self.function == "count"
                                                                            else total))
        st["d"] = []
        return out

    def value(self, st: dict[str, Any]) -> float | None:
        x = st.get("x")
        return None if x is None else round(float(x), 3)
