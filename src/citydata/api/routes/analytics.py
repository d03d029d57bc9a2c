"""Planning analytics for the dashboard: the query catalogue, each query's JSON result and its plot."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from citydata.analytics import AnalyticsService
from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal
from citydata.errors import Unavailable, ValidationFailed

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
Analyst = Annotated[Principal, Allowed("analytics.read")]


def _service(platform: Any) -> AnalyticsService:
    service = getattr(platform, "analytics", None)
    if service is None:
        raise Unavailable("analytics are not running on this node", code="analytics_unavailable")
    return service  # type: ignore[no-any-return]


def _describe(q: Any) -> dict[str, Any]:
    return {"name": q.name, "title": q.title, "description": q.description, "sources": list(q.sources),
            "params": [{"name": p.name, "type": p.type, "default": p.default, "description": p.description}
                       for p in q.params],
            "chart": {"kind": q.chart.kind, "x": q.chart.x, "y": q.chart.y, "value": q.chart.value}}


@router.get("", summary="The analytics queries, with their documentation and parameters")
async def list_queries(platform: PlatformDep, caller: Analyst) -> dict[str, Any]:
    return {"items": [_describe(q) for q in _service(platform).queries()]}


@router.get("/{name}", summary="Run one query: JSON rows, series and metadata for the dashboard")
async def run_query(name: str, request: Request, platform: PlatformDep, caller: Analyst) -> dict[str, Any]:
    result = await _service(platform).run(name, dict(request.query_params))
    return result.as_dict()


@router.get("/{name}/plot", summary="The query's chart as PNG or SVG (query parameter format)")
async def plot(name: str, request: Request, platform: PlatformDep, caller: Analyst) -> Response:
    params = dict(request.query_params)
    fmt = params.pop("format", "svg")
    if fmt not in ("png", "svg"):
        raise ValidationFailed("format is png or svg", code="bad_format")
    with tempfile.TemporaryDirectory() as tmp:
        path = await _service(platform).plot(name, params, Path(tmp) / f"plot.{fmt}")
        body = path.read_bytes()
    return Response(body, media_type="image/png" if fmt == "png" else "image/svg+xml")
