"""The authorization matrix of the IOC routes, generated from their route table: every route against every
role (incidents, alerts, agencies, CAP and deliveries; the stream with ``max_s`` so it ends)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.routing import APIRoute

from citydata.api.routes import agencies, alerts, cap, incidents, stream
from citydata.auth import Role, allowed
from tests.conftest import bearer, token_for

IOC_ROUTERS = (incidents, alerts, agencies, cap, stream)


def ioc_routes() -> list[tuple[str, str, str | None]]:
    out = []
    for module in IOC_ROUTERS:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            permission = next((d.call.permission for d in route.dependant.dependencies
                               if hasattr(d.call, "permission")), None)
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                out.append((method, route.path, permission))
    return out


def test_every_ioc_route_declares_a_permission() -> None:
    routes = ioc_routes()
    assert all(permission is not None for _, _, permission in routes), routes
    incident_routes = [r for r in routes if r[1].startswith("/api/v1/incidents")]
    assert len(incident_routes) == 9


async def test_authorization_matrix(ioc_platform: Any, ioc_client: httpx.AsyncClient) -> None:
    p = ioc_platform
    tokens = {role: await token_for(p, role.value) for role in Role if role != Role.PUBLIC}
    op = bearer(tokens[Role.OPERATOR])
    # a real incident assigned to tourist_police, so reads by agency roles reach the scoping check
    iid = (await ioc_client.post("/api/v1/incidents", headers=op, json={"title": "matrix"})).json()["id"]
    await ioc_client.post(f"/api/v1/incidents/{iid}/dispatch", headers=op, json={"agency": "tourist_police"})
    checked = 0
    for method, path, permission in ioc_routes():
        assert permission is not None
        url = path.replace("{incident_id}", str(iid))
        url = re.sub(r"\{[^}]+\}", "x", url)
        params = {"max_s": "0.05"} if path == "/api/v1/stream" else None
        for role in Role:
            headers = {} if role == Role.PUBLIC else bearer(tokens[role])
            r = await ioc_client.request(method, url, headers=headers, json={}, params=params)
            if allowed(role, permission):
                assert r.status_code not in (401, 403), (method, path, role, r.status_code, r.text)
            elif role == Role.PUBLIC:
                assert r.status_code == 401, (method, path, role, r.status_code)
            else:
                assert r.status_code == 403, (method, path, role, r.status_code)
                assert r.json()["code"] == "forbidden"
            checked += 1
    assert checked == len(ioc_routes()) * len(Role)


async def test_incident_reads_are_scoped_per_role(ioc_platform: Any, ioc_client: httpx.AsyncClient) -> None:
    """Of the roles holding incidents.read, agency roles see the tourist police's incident only as that agency."""
    p = ioc_platform
    op = bearer(await token_for(p, "operator"))
    iid = (await ioc_client.post("/api/v1/incidents", headers=op, json={"title": "scoped"})).json()["id"]
    await ioc_client.post(f"/api/v1/incidents/{iid}/dispatch", headers=op, json={"agency": "tourist_police"})
    expected = {Role.ADMIN: 200, Role.OPERATOR: 200, Role.TOURIST_POLICE: 200, Role.POLICE: 404,
                Role.MARINE_POLICE: 404, Role.HEALTH: 404}
    for role in Role:
        if not allowed(role, "incidents.read"):
            continue
        headers = bearer(await token_for(p, role.value))
        for path in (f"/api/v1/incidents/{iid}", f"/api/v1/incidents/{iid}/history"):
            r = await ioc_client.get(path, headers=headers)
            assert r.status_code == expected[role], (role, path, r.status_code)
        listed = (await ioc_client.get("/api/v1/incidents", headers=headers)).json()["items"]
        assert ([i["id"] for i in listed] == [iid]) == (expected[role] == 200), role
