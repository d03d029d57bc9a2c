"""The busiest ingest routes served ahead of FastAPI: the same handlers, a shorter way in.

At 10x Phuket's peak the tourist app's position reports are about 1,700 requests a second, each carrying one
fix. Profiling ``POST /api/v1/tracking/pings`` under load put about half of each request's CPU in Starlette's
routing (a linear scan of ~150 routes), FastAPI's exception and exit-stack layers and its dependency solver, and
only a third in the work itself (authentication, parsing, the tracking service). A later profile found another
tenth in the layers FastAPI wraps around every application (its server-error, telemetry and body-limit
middlewares, the first of which reads the environment on each request) and in our own metrics middleware.

``HotRoutes`` is therefore the outermost ASGI application that uvicorn serves (``serving_app``): for an exact
(method, path), or a path under a prefix route's prefix, it builds the Starlette ``Request``, runs the route's
own permission dependency and its own handler function, counts the request in the same metrics as
``MetricsMiddleware`` (same route label), and answers with the same status, body, headers and problem documents
as the FastAPI route, an unexpected error included (logged, then 500 ``internal_error``). Everything else goes to
the FastAPI application untouched. With CORS origins configured, a request that carries an ``Origin`` header (a
browser's) also goes through FastAPI, so its CORS middleware answers it; the phone app's requests carry none.

Served this way: tourist pings, SensorThings creates (``POST /v1.1/...``: a sensor's Observation), WiFi session
events and CCTV vendor events. A handler that meets a request FastAPI's own validation must answer (a body that is
not a JSON object, an over-long query parameter) raises ``NotHot``, and the front hands the request to FastAPI
with the body it already read, so that answer is FastAPI's own.

Each FastAPI route stays registered and calls the same function: it is what the OpenAPI document, the route
table (generated docs, the authorization matrix) and the metrics label describe, and ``create_app(...,
hot_routes=False)`` serves everything through it; the parity tests (``tests/api/test_hot_*.py``,
``tests/tracking/test_hot_route.py``) compare both ways.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citydata.api.deps import require
from citydata.api.problems import citydata_problem, internal_error_problem
from citydata.auth import Principal
from citydata.errors import CityDataError

if TYPE_CHECKING:
    from citydata.app import Platform

log = logging.getLogger(__name__)
Handler = Callable[["Platform", Principal, Request], Awaitable[BaseModel | Response]]
RecordRequest = Callable[[str, str, int, float], None]   # method, route path, status, seconds


class NotHot(Exception):
    """Raised by a hot handler for a request it leaves to FastAPI (a body or parameter that FastAPI's own
    validation must answer): the front hands the request on, with the body it already read."""


@dataclass(frozen=True, slots=True)
class HotRoute:
    """``path``: the FastAPI route's path. ``prefix``: for a route whose path ends in a parameter (``{name:path}``,
    or ``{name}`` with ``segment``), the fixed part before it; the route then serves every path under the prefix
    but those that other routes of the same method own (static paths only: a prefix shared with parameterised
    routes is refused).
    The handler returns a model (answered as JSON with ``status``) or a ready ``Response``."""

    method: str
    path: str
    permission: str
    status: int
    handler: Handler
    prefix: str | None = None
    segment: bool = False      # the rest after ``prefix`` is one path segment (a ``{name}``, not ``{name:path}``)


class HotRoutes:
    """Serve ``routes`` before ``app``; ``route_objects`` are the FastAPI routes of the same paths (set in the
    scope, so logs and handlers see the route exactly as for a routed request); ``record`` counts each answered
    request (``RequestMetrics.record``); ``cors``: requests with an ``Origin`` header go to ``app``."""

    def __init__(self, app: ASGIApp, platform: Platform, routes: list[HotRoute],
                 route_objects: dict[tuple[str, str], Any], record: RecordRequest, *, cors: bool = False) -> None:
        self.app, self.platform, self.record, self.cors = app, platform, record, cors
        self.application = app                   # what Starlette sets as scope["app"] (request.app.state)
        self.routes: dict[tuple[str, str], tuple[HotRoute, Any, Any]] = {}
        self.prefixed: list[tuple[str, str, bool, frozenset[str], tuple[HotRoute, Any, Any]]] = []
        for r in routes:
            entry = (r, require(r.permission), route_objects.get((r.method, r.path)))
            if r.prefix is None:
                self.routes[(r.method, r.path)] = entry
                continue
            others = [path for (method, path) in route_objects
                      if method == r.method and path.startswith(r.prefix) and path != r.path]
            if any("{" in path for path in others):
                raise ValueError(f"hot route {r.method} {r.path}: parameterised routes share its prefix")
            self.prefixed.append((r.method, r.prefix, r.segment, frozenset(others), entry))

    def _match(self, method: str, path: str) -> tuple[HotRoute, Any, Any] | None:
        entry = self.routes.get((method, path))
        if entry is None:
            for m, prefix, segment, others, candidate in self.prefixed:
                if m == method and path.startswith(prefix) and len(path) > len(prefix) and path not in others \
                        and not (segment and "/" in path[len(prefix):]):
                    return candidate
        return entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (entry := self._match(scope["method"], scope["path"])) is None \
                or (self.cors and any(k == b"origin" for k, _ in scope["headers"])):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route, check, route_object = entry
        scope["app"] = self.application
        if route_object is not None:
            scope["route"] = route_object
        request = Request(scope, receive)
        headers: list[tuple[bytes, bytes]] = []
        try:
            principal = await check(request)
            result = await route.handler(self.platform, principal, request)
            if isinstance(result, Response):
                status, body, media = result.status_code, bytes(result.body), None
                headers = list(result.raw_headers)
            else:
                status, body = route.status, orjson.dumps(result.model_dump(mode="json"))
                media = b"application/json"
        except NotHot:
            await self.app(scope, _replay(await request.body(), receive), send)   # counted by FastAPI's side
            return
        except Exception as err:
            if isinstance(err, CityDataError):
                response = citydata_problem(err, scope["path"])
            else:
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                response = internal_error_problem(scope["path"])
            status, body, media = response.status_code, bytes(response.body), b"application/problem+json"
            headers = [(k, v) for k, v in response.raw_headers if k not in (b"content-length", b"content-type")]
        if media is not None:
            headers += [(b"content-type", media), (b"content-length", str(len(body)).encode())]
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            self.record(scope["method"], route.path, status, time.perf_counter() - started)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` (already read) once, then what the connection says (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def route_objects_of(routers: list[Any]) -> dict[tuple[str, str], Any]:
    """(method, path) -> the FastAPI route registered for it (the routers' own routes carry their full path)."""
    out: dict[tuple[str, str], Any] = {}
    for router in routers:
        for route in router.routes:
            for method in getattr(route, "methods", None) or ():
                out[(method, getattr(route, "path", ""))] = route
    return out
