"""``create_app(platform)``: the FastAPI application, with its routers, problem handlers and metrics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import Response

from citydata import __version__
from citydata.api.problems import install_problem_handlers

if TYPE_CHECKING:
    from citydata.app import Platform

DESCRIPTION = """CityData: the City Data Platform and Intelligence Operation Center API.

Authentication: `Authorization: Bearer <token>` with an API token (`citydata tokens create`) or a session from
`POST /api/v1/auth/login`. HTTP Basic with the token as password is also accepted (FROST-style clients).
Errors are `application/problem+json` with a machine `code`.
"""

TAGS = [
    {"name": "operations", "description": "Health, readiness and metrics."},
    {"name": "auth", "description": "Log in, sessions and API tokens."},
    {"name": "devices", "description": "The device registry and heartbeats."},
    {"name": "geography", "description": "The reference city: provinces, districts, checkpoints, places."},
    {"name": "admin", "description": "Dead letters, audit log and users (admin only)."},
    {"name": "sensors", "description": "Latest sensor values for dashboards."},
    {"name": "tracking", "description": "Tourist safety: checkpoint arrivals, app location reports, the 191 view, "
                                        "hotels, health, privacy requests."},
    {"name": "rules", "description": "Alert rules: rules as data, versions, dry-run validation."},
    {"name": "alerts", "description": "Alerts raised by the rules: list, acknowledge, clear."},
    {"name": "incidents", "description": "The 191 incident workflow: create, assign, dispatch, notes, SLA."},
    {"name": "agencies", "description": "Agencies and their notification endpoints; deliveries."},
    {"name": "cap", "description": "CAP 1.2 public warnings and their Atom feed."},
    {"name": "stream", "description": "Server-Sent Events: alerts, incidents, observations."},
    {"name": "sensorthings", "description": "OGC SensorThings API v1.1 (sensors, datastreams, observations)."},
]


def create_app(platform: Platform) -> FastAPI:
    from citydata.api.routes import (
        admin,
        agencies,
        alerts,
        auth,
        cap,
        devices,
        geography,
        incidents,
        ops,
        rules,
        sensors,
        sensorthings,
        stream,
        tracking,
    )

    app = FastAPI(title="CityData API", version=__version__, description=DESCRIPTION, openapi_tags=TAGS,
                  docs_url="/docs", redoc_url="/redoc", openapi_url="/openapi.json")
    app.state.platform = platform
    install_problem_handlers(app)
    if platform.settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=platform.settings.cors_origins,
                           allow_methods=["*"], allow_headers=["*"], allow_credentials=True)
    metrics = platform.metrics

    @app.middleware("http")
    async def _measure(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response: Response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        metrics.http_requests.labels(request.method, name, str(response.status_code)).inc()
        metrics.http_latency.labels(name).observe(time.perf_counter() - started)
        return response

    routers = [m.router for m in (ops, auth, devices, geography, sensors, rules, alerts, incidents, agencies, cap,
                                  stream, tracking, admin, sensorthings)]
    for router in routers:
        app.include_router(router)
    app.state.routers = routers   # the route table, for generated docs and the authorization tests
    return app
