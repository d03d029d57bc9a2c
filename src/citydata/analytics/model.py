"""Planning analytics as data: each ``Query`` names its sources, documents what it computes, declares its
parameters and its chart, and runs one async function over the store. The registry (``QUERIES``) is what the
API, the CLI, the open-data catalogue and docs/analytics.md are built from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from citydata.errors import NotFound, ValidationFailed

if TYPE_CHECKING:
    from citydata.clock import Clock
    from citydata.config import Settings
    from citydata.datasets import DatasetService
    from citydata.geo import Geography
    from citydata.store import Store


@dataclass(frozen=True)
class Param:
    name: str
    type: str                 # datetime, number, integer, text
    default: Any
    description: str


@dataclass(frozen=True)
class Chart:
    kind: str                 # heatmap, scatter, timeseries, bar
    x: str
    y: str
    value: str = ""
    label: str = ""
    title: str = ""


@dataclass
class Result:
    query: str
    params: dict[str, Any]
    columns: list[str]
    rows: list[dict[str, Any]]
    series: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "params": {k: v.isoformat() if isinstance(v, datetime) else v
                                                for k, v in self.params.items()},
                "columns": self.columns, "rows": self.rows, "series": self.series, "meta": self.meta}


@dataclass
class Context:
    store: Store
    geography: Geography
    settings: Settings
    clock: Clock
    datasets: DatasetService
    _hours: dict[datetime, int] = field(default_factory=dict)

    @property
    def tz(self) -> tzinfo:
        return ZoneInfo(self.settings.timezone)

    def local_hour(self, t: datetime) -> int:
        """The hour of day of ``t`` in the display time zone (cached: rollup rows share their hours)."""
        hour = self._hours.get(t)
        if hour is None:
            if len(self._hours) > 200_000:
                self._hours.clear()
            hour = self._hours[t] = t.astimezone(self.tz).hour
        return hour

    def area(self, code: str) -> dict[str, Any]:
        place = self.geography.get(f"subdistrict:{code}")
        return {"subdistrict": code, "name_en": place.name_en if place else code,
                "name_th": place.name_th if place else None}


Runner = Callable[[Context, dict[str, Any]], Awaitable[Result]]

WINDOW = (Param("start", "datetime", None, "Start of the window (default: end minus 30 days)."),
          Param("end", "datetime", None, "End of the window, exclusive (default: the current hour)."))


@dataclass(frozen=True)
class Query:
    name: str
    title: str
    description: str
    sources: tuple[str, ...]
    params: tuple[Param, ...]
    chart: Chart
    run: Runner

    def bind(self, given: dict[str, Any], now: datetime) -> dict[str, Any]:
        """The parameters with defaults filled in and values typed; unknown names are refused."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValidationFailed(f"{self.name}: unknown parameter(s) {', '.join(unknown)} "
                                   f"(known: {', '.join(known)})", code="bad_parameter")
        out: dict[str, Any] = {}
        for p in self.params:
            value = given.get(p.name, p.default)
            if value is not None and isinstance(value, str):
                try:
                    if p.type == "datetime":
                        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
                        if value.tzinfo is None:
                            raise ValueError("a UTC offset is required")
                    elif p.type == "number":
                        value = float(value)
                    elif p.type == "integer":
                        value = int(value)
                except ValueError as err:
                    raise ValidationFailed(f"{self.name}: parameter {p.name}: {err}", code="bad_parameter") from err
            out[p.name] = value
        if "end" in known:
            end = out.get("end") or now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            start = out.get("start") or end - timedelta(days=30)
            if start >= end:
                raise ValidationFailed(f"{self.name}: start must be before end", code="bad_parameter")
            if end - start > timedelta(days=400):
                raise ValidationFailed(f"{self.name}: the window is at most 400 days", code="bad_parameter")
            out["start"], out["end"] = start, end
        return out


QUERIES: dict[str, Query] = {}


def register(query: Query) -> Query:
    QUERIES[query.name] = query
    return query


def get_query(name: str) -> Query:
    import importlib

    importlib.import_module("citydata.analytics.queries")   # registers the built-in queries

    query = QUERIES.get(name)
    if query is None:
        raise NotFound(f"no analytics query {name!r} (known: {', '.join(sorted(QUERIES))})",
                       code="query_not_found")
    return query
