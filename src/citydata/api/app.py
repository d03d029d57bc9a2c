"""``create_app(platform)``: the FastAPI application, with its routers, problem handlers and metrics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citydata import __version__
from citydata.api.hot_routes import HotRoutes, route_objects_of
from citydata.api.problems import document_problems, install_problem_handlers
from citydata.ops.metrics import Metrics

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
    {"name": "reports", "description": "Tourist problem reports: submit and follow up (public), read (responders)."},
    {"name": "cameras", "description": "CCTV camera registry, privacy masks, single-frame upload, signal states."},
    {"name": "vision", "description": "CCTV analytics: face watchlists and hits (audited), the plate hotlist, "
                                      "vendor analytics events, traffic counts."},
    {"name": "wifi", "description": "WiFi hotspots, session events (RADIUS accounting, AP logs) and footfall."},
    {"name": "web", "description": "The IOC dashboard (/ioc/), the tourist app (/app/) and their assets."},
    {"name": "analytics", "description": "Planning analytics: tourism, flood, safety, real estate (JSON and plots)."},
    {"name": "datasets", "description": "Imported government datasets: versions, typed rows, rejections."},
    {"name": "opendata", "description": "Open data: downloads (CSV, GeoJSON, Parquet), DCAT catalogue, API keys."},
    {"name": "ckan", "description": "CKAN-compatible open-data action API (/api/3/action/...)."},
]


class RequestMetrics:
    """Counts requests and times them per route template; the labelled children are looked up once
    (``labels()`` costs a few microseconds a call). Shared by ``MetricsMiddleware`` and ``HotRoutes``."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._latency: dict[str, Any] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = self.metrics.http_requests.labels(method, route, str(status))
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = self.metrics.http_latency.labels(route)
        count.inc()
        latency.observe(seconds)


class MetricsMiddleware:
    """Counts requests and times them per route template: plain ASGI (no per-request task or body copy, unlike
    ``@app.middleware``), so it costs microseconds."""

    def __init__(self, app: ASGIApp, requests: RequestMetrics) -> None:
        self.app, self.requests = app, requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.record(scope["method"], route, status, time.perf_counter() - started)


def serving_app(app: FastAPI) -> ASGIApp:
    """What the HTTP server serves: the hot routes' front (``citydata.api.hot_routes``) when ``create_app``
    made one, else the FastAPI application."""
    front: ASGIApp | None = getattr(app.state, "front", None)
    return front if front is not None else app


def create_app(platform: Platform, *, hot_routes: bool = True) -> FastAPI:
    """The HTTP API. ``hot_routes=False`` serves every route through FastAPI's router (the parity tests)."""
    from citydata.api.routes import (
        admin,
        agencies,
        alerts,
        analytics,
        auth,
        cameras,
        cap,
        ckan,
        datasets,
        devices,
        geography,
        incidents,
        opendata,
        ops,
        reports,
        rules,
        sensors,
        sensorthings,
        stream,
        tracking,
        vision,
        web,
        wifi,
    )

    app = FastAPI(title="CityData API", version=__version__, description=DESCRIPTION, openapi_tags=TAGS,
                  docs_url="/docs", redoc_url="/redoc", openapi_url="/openapi.json")
    app.state.platform = platform
    install_problem_handlers(app)
    document_problems(app)
    # the SensorThings router first: most traffic goes there, and its paths only match under /v1.1
    routers = [m.router for m in (sensorthings, ops, auth, devices, geography, sensors, rules, alerts, incidents,
                                  agencies, cap, stream, tracking, admin, reports, web, cameras, vision)]
    routers.append(wifi.router)
    routers.extend([analytics.router, datasets.router, opendata.router, ckan.router])
    for router in routers:
        app.include_router(router)
    app.state.routers = routers   # the route table, for generated docs and the authorization tests
    # middlewares, innermost first: CORS, the request metrics
    cors = bool(platform.settings.cors_origins)
    if cors:
        app.add_middleware(CORSMiddleware, allow_origins=platform.settings.cors_origins,
                           allow_methods=["*"], allow_headers=["*"], allow_credentials=True)
    requests = RequestMetrics(platform.metrics)
    app.add_middleware(MetricsMiddleware, requests=requests)
    # the busiest ingest routes ahead of all of FastAPI (``serving_app``)
    hot = [*tracking.HOT_ROUTES, *sensorthings.HOT_ROUTES, *vision.HOT_ROUTES, *wifi.HOT_ROUTES]
    app.state.front = HotRoutes(app, platform, hot, route_objects_of(routers), requests.record,
                                cors=cors) if hot_routes else None
    return app
