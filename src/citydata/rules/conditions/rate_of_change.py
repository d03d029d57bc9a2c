"""``rate_of_change``: how much a value rose (or fell) within a time window.

    rate_of_change: {window: 30m, rise: 0.3, clear_below: 0.1}   # water level up more than 0.3 m in 30 min
    rate_of_change: {window: 1h, fall: 2.0}

The rise is the newest value minus the lowest value in the window (a fall: the highest minus the newest), so
a rise that started just before a dip still counts from the bottom. Values are in the datastream's own unit
(the shipped water-level sensors report metres). Each series on its own; the largest change wins.
"""

from __future__ import annotations

from typing import Any

from citydata.rules.conditions.base import Condition, Fact, add_point, series_figures
from citydata.rules.spec import Reader, RuleInvalid


class RateOfChange(Condition):
    kind = "rate_of_change"
    timed = True

    def configure(self, spec: Reader) -> None:
        window = spec.duration("window", required=True)
        assert window is not None
        self.window = window
        if spec.has("rise") == spec.has("fall"):
            raise RuleInvalid(spec.path, "needs exactly one of rise or fall")
        self.rising = spec.has("rise")
        key = "rise" if self.rising else "fall"
        level = spec.number(key, required=True, minimum=0)
        assert level is not None
        self.level = level
        clear = spec.number("clear_below", level)
        assert clear is not None
        if clear > level:
            raise RuleInvalid(spec.at("clear_below"), f"must not be above {key} ({level:g})")
        self.clear = clear

    def update(self, st: dict[str, Any], fact: Fact) -> None:
        x = fact.number(self.field)
        if x is not None:
            add_point(st, fact.series, fact.t, x, self.window, self.limits)

    def _change(self, inside: list[list[float]]) -> float:
        values = [p[1] for p in inside]
        return values[-1] - min(values) if self.rising else max(values) - values[-1]

    def evaluate(self, states: dict[str, dict[str, Any]], now: float) -> bool:
        st = states.setdefault(self.path, {})
        changes = series_figures(st, now, self.window, 2, self._change)
        on = bool(st.get("on", False))
        if changes:
            x = max(changes)
            on = x >= self.clear if on else x > self.level
            st["x"] = x
        else:
            on, st["x"] = False, None
        st["on"] = on
        return on

    def value(self, st: dict[str, Any]) -> float | None:
        x = st.get("x")
        return None if x is None else round(float(x), 3)
