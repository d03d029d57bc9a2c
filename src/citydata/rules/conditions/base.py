"""One base class for every condition kind, and the registry that finds them.

A condition kind is one module in this package defining a ``Condition`` subclass with a ``kind`` name: the
registry imports every module here on first use, so a new kind is a new file. A rule's ``condition`` is a
tree; leaves look at facts (events), ``all``/``any`` combine them.

Leaves keep their per-instance state in a plain JSON-ready dict (``state[leaf.path]``), so the engine can
checkpoint and restore it as is. The protocol:

* ``update(st, fact)`` feeds one fact that passed the leaf's ``where`` selector;
* ``evaluate(states, now)`` says whether the (sub)tree holds at ``now`` (event time, epoch seconds), applying
  hysteresis (it may flip ``st["on"]``);
* ``value(st)`` is the leaf's current figure for messages (``{name}`` placeholders).

Syntax of a condition: ``{threshold: {above: 50}}`` or ``{kind: threshold, above: 50}``; common leaf fields:
``name`` (placeholder name), ``where`` (a selector, see ``citydata.rules.selector``), ``field`` (the number
to use: dotted path in the event payload, default ``result``).
"""

from __future__ import annotations

import abc
import bisect
import importlib
import math
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

from citydata.rules.selector import Selector, dotted, parse_selector
from citydata.rules.spec import Reader, RuleInvalid, join

if TYPE_CHECKING:
    from citydata.geo import Geography
    from citydata.rules.catalogue import StreamInfo

DEFAULT_MAX_POINTS = 10_000


@dataclass(slots=True)
class Fact:
    """An event as conditions see it: event time in epoch seconds, the number it carries, the series."""

    kind: str
    key: str
    id: str
    t: float
    data: dict[str, Any]
    info: StreamInfo | None = None
    series: str = ""
    lon: float | None = None
    lat: float | None = None

    def number(self, path: str) -> float | None:
        value = self.data.get(path) if "." not in path else dotted(self.data, path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)


@dataclass
class Limits:
    """Bounds on memory, and counters of what was dropped to stay within them."""

    max_points: int = DEFAULT_MAX_POINTS
    dropped_points: int = 0
    late_points: int = 0


@dataclass
class BindContext:
    geography: Geography | None = None
    limits: Limits = field(default_factory=Limits)


class Condition(abc.ABC):
    kind: ClassVar[str] = ""
    timed: ClassVar[bool] = False       # its truth changes as time passes without facts (windows, absence)
    leaf: ClassVar[bool] = True

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = ""
        self.where: Selector | None = None
        self.field = "result"
        self.limits = Limits()

    # -- parsing ---------------------------------------------------------------------------------------------
    @classmethod
    def from_body(cls, body: Any, path: str) -> Condition:
        """Build from the body of ``{kind: body}`` (or the flat mapping without its ``kind``)."""
        reader = Reader(body, path)
        cond = cls(path)
        cond.name = reader.text("name", pattern=r"[a-z][a-z0-9_]{0,40}") or ""
        where = reader.raw("where")
        cond.where = None if where is None else parse_selector(where, reader.at("where"))
        cond.field = reader.text("field", "result") or "result"
        cond.configure(reader)
        reader.done()
        return cond

    @abc.abstractmethod
    def configure(self, spec: Reader) -> None:
        """Read the kind's own fields (raise ``RuleInvalid`` with the field's path)."""

    def bind(self, ctx: BindContext) -> None:
        """Resolve what needs the platform (places); called when the rule is compiled."""
        self.limits = ctx.limits

    # -- the tree --------------------------------------------------------------------------------------------
    def leaves(self) -> Iterator[Condition]:
        yield self

    def is_timed(self) -> bool:
        return any(leaf.timed for leaf in self.leaves())

    def accepts(self, fact: Fact) -> bool:
        return self.where is None or self.where.matches(fact.kind, fact.data, fact.info)

    # -- evaluation ------------------------------------------------------------------------------------------
    def update(self, st: dict[str, Any], fact: Fact) -> None:  # noqa: B027 - optional for leaves
        """Feed one fact."""

    @abc.abstractmethod
    def evaluate(self, states: dict[str, dict[str, Any]], now: float) -> bool: ...

    def value(self, st: dict[str, Any]) -> float | None:
        return None

    def values(self, states: dict[str, dict[str, Any]]) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for leaf in self.leaves():
            if leaf.name:
                out[leaf.name] = leaf.value(states.get(leaf.path, {}))
        return out

    def first_value(self, states: dict[str, dict[str, Any]]) -> float | None:
        for leaf in self.leaves():
            v = leaf.value(states.get(leaf.path, {}))
            if v is not None:
                return v
        return None


# -- shared pieces ------------------------------------------------------------------------------------------

class Trigger:
    """A comparison with hysteresis: ``above: X`` (raise when > X) with ``clear_below: Y`` (clear when < Y,
    default X), or ``below: X`` with ``clear_above: Y``."""

    def __init__(self, spec: Reader, *, above: str = "above", below: str = "below") -> None:
        has_above, has_below = spec.has(above), spec.has(below)
        if has_above == has_below:
            raise RuleInvalid(spec.path, f"needs exactly one of {above} or {below}")
        self.rising = has_above
        key = above if has_above else below
        level = spec.number(key, required=True)
        assert level is not None
        self.level = level
        clear_key = "clear_below" if has_above else "clear_above"
        clear = spec.number(clear_key, level)
        assert clear is not None
        if (has_above and clear > level) or (not has_above and clear < level):
            raise RuleInvalid(spec.at(clear_key), f"must be on the clearing side of {key} ({level:g})")
        self.clear = clear

    def step(self, on: bool, x: float) -> bool:
        if self.rising:
            return x >= self.clear if on else x > self.level
        return x <= self.clear if on else x < self.level

    def pick(self, values: list[float]) -> float:
        """Across several series, the one that matters most (the highest for ``above``)."""
        return max(values) if self.rising else min(values)


_TIME = itemgetter(0)
_VALUE = itemgetter(1)


def add_point(st: dict[str, Any], series: str, t: float, v: float, keep_s: float, limits: Limits) -> None:
    """Insert ``(t, v)`` into the series (sorted by time; a late point goes to its place), dropping what is
    older than ``keep_s`` before the newest point and the oldest beyond ``limits.max_points``."""
    all_series: dict[str, list[list[float]]] = st.setdefault("s", {})
    points = all_series.get(series)
    if points is None:
        points = all_series[series] = []
    dirty = st.get("d")
    if dirty is None:
        st["d"] = [series]
    elif series not in dirty:
        dirty.append(series)
    if not points or t >= points[-1][0]:
        points.append([t, v])
    else:
        newest = points[-1][0]
        if t <= newest - keep_s:
            limits.late_points += 1
            return
        bisect.insort(points, [t, v], key=lambda p: p[0])
    running_now = st.get("r", {}).get(series)
    if running_now is not None and running_now[0] < t <= running_now[1]:
        running_now[2] += v        # a point inside the range the running aggregate already covers
        running_now[3] += 1
    horizon = points[-1][0] - keep_s
    if points[0][0] <= horizon:
        cut = bisect.bisect_right(points, horizon, key=lambda p: p[0])
        running = st.get("r", {}).get(series)
        if running is not None:   # keep the running aggregate right: it covers running[0] < t <= running[1]
            inside = [p[1] for p in points[:cut] if running[0] < p[0] <= running[1]]
            running[2] -= math.fsum(inside)
            running[3] -= len(inside)
            running[0] = max(running[0], horizon)
        del points[:cut]
    if len(points) > limits.max_points:
        extra = len(points) - limits.max_points
        limits.dropped_points += extra
        del points[:extra]
        _touch(st, series)


def _touch(st: dict[str, Any], series: str) -> None:
    """Forget the running aggregate of ``series`` (see ``running_sum``)."""
    running = st.get("r")
    if running is not None:
        running.pop(series, None)


def running_sum(st: dict[str, Any], series: str, points: list[list[float]], now: float,
                window: float) -> tuple[float, int]:
    """(sum, count) of the points with ``now - window < t <= now``, kept incrementally per series.

    The cache ``st["r"][series] = [lo, hi, sum, count]`` covers ``lo < t <= hi``. When the window slides forward
    only the points that left it and those that entered are visited (each point twice in its life), instead of
    the whole window at every event. ``add_point`` keeps it right for points inserted out of order and for
    points it trims; points dropped by the bound, or a window that moved backwards, start the sum again from
    the points (``_touch``)."""
    lo, hi = now - window, now
    running: dict[str, list[float]] = st.setdefault("r", {})
    cached = running.get(series)
    key = _TIME
    if cached is None or lo < cached[0] or hi < cached[1]:
        a = bisect.bisect_right(points, lo, key=key)
        b = bisect.bisect_right(points, hi, key=key)
        total, count = math.fsum(map(_VALUE, points[a:b])), b - a
    else:
        old_lo, old_hi, total, count_f = cached
        count = int(count_f)
        if lo > old_lo:   # points that left the window (some may already have been trimmed away: skip those)
            a = bisect.bisect_right(points, old_lo, key=key)
            b = bisect.bisect_right(points, lo, key=key)
            gone = points[a:b]
            total -= math.fsum(map(_VALUE, gone))
            count -= len(gone)
        if hi > old_hi:   # points that entered
            a = bisect.bisect_right(points, max(old_hi, lo), key=key)
            b = bisect.bisect_right(points, hi, key=key)
            new = points[a:b]
            total += math.fsum(map(_VALUE, new))
            count += len(new)
    running[series] = [lo, hi, total, float(count)]
    return total, count


def series_figures(st: dict[str, Any], now: float, window: float, min_points: int,
                   compute: Callable[[list[list[float]]], float]) -> list[float]:
    """``compute`` over each series' window ending at ``now``, cached per series (``f``), each with the time
    its oldest point in the window expires (``u``). Only the series that got a point since the last
    evaluation (``d``) are computed again, unless the earliest expiry (``n``) has passed or time went back,
    so an instance fed by hundreds of series (``group_by: zone``) costs about one computation per event."""
    figures: dict[str, float | None] | None = st.get("f")
    series_points: dict[str, list[list[float]]] = st.get("s", {})
    if figures is None or now >= st.get("n", float("inf")) or now < st.get("at", float("-inf")):
        todo: Any = series_points.keys()
        figures = st["f"] = {}
        until: dict[str, float] = {}
        st["u"] = until
    else:
        todo = st.get("d", ())
        until = st["u"]
    for series in todo:
        points = series_points.get(series)
        inside = window_points(points, now, window) if points else []
        figures[series] = compute(inside) if len(inside) >= min_points else None
        until[series] = inside[0][0] + window if inside else float("inf")
    if todo:
        st["n"] = min(until.values(), default=float("inf"))
    st["d"] = []
    st["at"] = now
    return [v for v in figures.values() if v is not None]


def window_points(points: list[list[float]], now: float, window: float) -> list[list[float]]:
    """The points with ``now - window < t <= now``."""
    lo = bisect.bisect_right(points, now - window, key=lambda p: p[0])
    hi = bisect.bisect_right(points, now, key=lambda p: p[0])
    return points[lo:hi]


# -- the registry -------------------------------------------------------------------------------------------

_KINDS: dict[str, type[Condition]] = {}


def condition_kinds() -> dict[str, type[Condition]]:
    """Every condition kind, found by importing each module of this package once."""
    if not _KINDS:
        package = importlib.import_module("citydata.rules.conditions")
        for module in pkgutil.iter_modules(package.__path__):
            if module.name == "base":
                continue
            mod = importlib.import_module(f"citydata.rules.conditions.{module.name}")
            for value in vars(mod).values():
                if isinstance(value, type) and issubclass(value, Condition) and value.kind:
                    _KINDS[value.kind] = value
    return _KINDS


def parse_condition(value: Any, path: str) -> Condition:
    kinds = condition_kinds()
    if not isinstance(value, dict):
        raise RuleInvalid(path, "must be a mapping like {threshold: {...}}")
    if "kind" in value:
        kind = value["kind"]
        if kind not in kinds:
            raise RuleInvalid(join(path, "kind"), f"unknown condition kind; one of {', '.join(sorted(kinds))}")
        body: Any = {k: v for k, v in value.items() if k != "kind"}
        if not kinds[kind].leaf:
            body = value.get("of")
            extra = set(value) - {"kind", "of"}
            if extra:
                raise RuleInvalid(join(path, sorted(extra)[0]), "unknown field")
            return kinds[kind].from_body(body, join(path, "of"))
        return kinds[kind].from_body(body, path)
    if len(value) != 1:
        raise RuleInvalid(path, "must have exactly one key, the condition kind "
                                f"({', '.join(sorted(kinds))}), or a 'kind' field")
    kind, body = next(iter(value.items()))
    if kind not in kinds:
        raise RuleInvalid(join(path, str(kind)), f"unknown condition kind; one of {', '.join(sorted(kinds))}")
    return kinds[kind].from_body(body, join(path, kind))
