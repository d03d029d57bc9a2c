"""Operations: /healthz (alive), /readyz (dependencies), /metrics (Prometheus), /api/v1/info."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from citydata import __version__
from citydata.api.deps import PlatformDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: every dependency is reachable",
            responses={503: {"description": "A dependency is down; the body says which"}})
async def readyz(platform: PlatformDep) -> JSONResponse:
    checks = await platform.readiness()
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(platform: PlatformDep) -> Response:
    await platform.readiness()
    return Response(platform.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/api/v1/info", summary="What this node runs and where to connect")
async def info(platform: PlatformDep) -> dict[str, Any]:
    s = platform.settings
    return {
        "name": "CityData", "version": __version__, "city": s.city, "timezone": s.timezone,
        "store": platform.store.dialect, "bus": s.bus_url.split("://", 1)[0],
        "mqtt_url": platform.mqtt_url or None,
        "links": {"docs": "/docs", "openapi": "/openapi.json", "metrics": "/metrics"},
    }
