"""The authorization matrix, generated from the route table: every guarded route against every role."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute

from citydata.auth import Role, allowed
from tests.conftest import bearer, token_for

# Routes that are deliberately open to everyone (they check credentials themselves, or expose nothing).
OPEN_ROUTES = {"/healthz", "/readyz", "/metrics", "/api/v1/info", "/api/v1/auth/login", "/api/v1/auth/logout",
               "/api/v1/auth/me"}


def guarded_routes(app: Any) -> list[tuple[str, str, str]]:
    out = []
    for route in (r for router in app.state.routers for r in router.routes):
        if not isinstance(route, APIRoute):
            continue
        permission = next((d.call.permission for d in route.dependant.dependencies
                           if hasattr(d.call, "permission")), None)
        for method in route.methods - {"HEAD", "OPTIONS"}:
            out.append((method, route.path, permission))
    return out


async def test_every_route_declares_its_permission(platform: Any) -> None:
    for method, path, permission in guarded_routes(platform.app):
        if path in OPEN_ROUTES:
            continue
        assert permission is not None, f"{method} {path} declares no permission"


async def test_authorization_matrix(client: Any, platform: Any) -> None:
    tokens = {role: await token_for(platform, role.value) for role in Role if role != Role.PUBLIC}
    checked = 0
    for method, path, permission in guarded_routes(platform.app):
        if permission is None:
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        for role in Role:
            headers = {} if role == Role.PUBLIC else bearer(tokens[role])
            params = {"max_s": "0.05"} if path == "/api/v1/stream" else None   # SSE: end the stream quickly
            r = await client.request(method, url, headers=headers, json={}, params=params)
            if allowed(role, permission) and not (role == Role.PUBLIC and not platform.settings.read_public):
                assert r.status_code not in (401, 403), (method, path, role, r.status_code, r.text)
            elif role == Role.PUBLIC:
                assert r.status_code == 401, (method, path, role, r.status_code)
            else:
                assert r.status_code == 403, (method, path, role, r.status_code)
                assert r.json()["code"] == "forbidden"
            checked += 1
    assert checked >= 11 * 10
