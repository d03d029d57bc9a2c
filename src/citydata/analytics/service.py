"""``AnalyticsService``: runs the registered queries (``citydata.analytics.queries``) for the API, the CLI and
the open-data catalogue, with a short cache of identical requests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from citydata.analytics.model import QUERIES, Context, Query, Result, get_query

if TYPE_CHECKING:
    from citydata.clock import Clock
    from citydata.config import Settings
    from citydata.geo import Geography
    from citydata.store import Store

CACHE_S = 30.0


class AnalyticsService:
    def __init__(self, store: Store, geography: Geography, settings: Settings, clock: Clock) -> None:
        from citydata.datasets import DatasetService

        self.datasets = DatasetService(store, geography, clock)
        self.ctx = Context(store, geography, settings, clock, self.datasets)
        self._cache: dict[str, tuple[float, Result]] = {}

    def queries(self) -> list[Query]:
        get_query("tourism_density")   # imports the built-ins
        return list(QUERIES.values())

    async def run(self, name: str, params: dict[str, Any] | None = None, *, cache: bool = True) -> Result:
        query = get_query(name)
        bound = query.bind(params or {}, self.ctx.clock.now())
        key = f"{name}:{sorted((k, str(v)) for k, v in bound.items())}"
        hit = self._cache.get(key)
        if cache and hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        async with self.ctx.store.read_session():
            result = await query.run(self.ctx, bound)
        self._cache[key] = (time.monotonic(), result)
        if len(self._cache) > 256:
            self._cache.pop(next(iter(self._cache)))
        return result

    async def plot(self, name: str, params: dict[str, Any] | None, path: Path) -> Path:
        from citydata.analytics.plots import render

        result = await self.run(name, params, cache=False)
        return render(get_query(name), result, path)
