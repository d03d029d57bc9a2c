"""The hottest ingest route served without FastAPI's router: the same handler, a shorter way in.

At 10x Phuket's peak the tourist app's position reports are about 1,700 requests a second, each carrying one
fix. Profiling ``POST /api/v1/tracking/pings`` under load put about half of each request's CPU in Starlette's
routing (a linear scan of ~150 routes), FastAPI's exception and exit-stack layers and its dependency solver, and
only a third in the work itself (authentication, parsing, the tracking service). ``HotRoutes`` is a plain ASGI
middleware, innermost of the user middlewares: for an exact (method, path) it builds the Starlette ``Request``,
runs the route's own permission dependency and its own handler function, and answers, with the same status,
body, headers and problem documents as the FastAPI route. Everything else passes through untouched.

The FastAPI route stays registered and calls the same function: it is what the OpenAPI document, the route
table (generated docs, the authorization matrix) and the metrics label describe, and ``create_app(...,
hot_routes=False)`` serves through it (the parity tests compare both ways).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from citydata.api.deps import require
from citydata.api.problems import citydata_problem
from citydata.auth import Principal
from citydata.errors import CityDataError

if TYPE_CHECKING:
    from citydata.app import Platform

Handler = Callable[["Platform", Principal, Request], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    method: str
    path: str
    permission: str
    status: int
    handler: Handler


class HotRoutes:
    """Serve ``routes`` before the router; ``route_objects`` are the FastAPI routes of the same paths (set in
    the scope, so the metrics and logs name the route exactly as for a routed request)."""

    def __init__(self, app: ASGIApp, platform: Platform, routes: list[HotRoute],
                 route_objects: dict[tuple[str, str], Any]) -> None:
        self.app, self.platform = app, platform
        self.routes = {(r.method, r.path): (r, require(r.permission), route_objects.get((r.method, r.path)))
                       for r in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (entry := self.routes.get((scope["method"], scope["path"]))) is None:
            await self.app(scope, receive, send)
            return
        route, check, route_object = entry
        if route_object is not None:
            scope["route"] = route_object
        request = Request(scope, receive)
        headers: list[tuple[bytes, bytes]] = []
        try:
            principal = await check(request)
            result = await route.handler(self.platform, principal, request)
            status, body, media = route.status, orjson.dumps(result.model_dump(mode="json")), b"application/json"
        except CityDataError as err:
            response = citydata_problem(err, scope["path"])
            status, body, media = response.status_code, bytes(response.body), b"application/problem+json"
            headers = [(k, v) for k, v in response.raw_headers if k not in (b"content-length", b"content-type")]
        headers += [(b"content-type", media), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def route_objects_of(routers: list[Any]) -> dict[tuple[str, str], Any]:
    """(method, path) -> the FastAPI route registered for it (the routers' own routes carry their full path)."""
    out: dict[tuple[str, str], Any] = {}
    for router in routers:
        for route in router.routes:
            for method in getattr(route, "methods", None) or ():
                out[(method, getattr(route, "path", ""))] = route
    return out
