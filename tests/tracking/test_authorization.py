"""Every tracking route against every role, from the route table (as tests/api/test_authorization_matrix.py does
for the routers wired into the app)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute

from citydata.api.routes import tracking as routes
from citydata.auth import Role, allowed
from tests.conftest import bearer, token_for


async def test_tracking_authorization_matrix(tp: Any, tclient: Any) -> None:
    tokens = {role: await token_for(tp, role.value) for role in Role if role != Role.PUBLIC}
    checked = 0
    for route in routes.router.routes:
        assert isinstance(route, APIRoute)
        permission = next((d.call.permission for d in route.dependant.dependencies
                           if hasattr(d.call, "permission")), None)
        assert permission is not None, route.path
        url = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in route.methods - {"HEAD", "OPTIONS"}:
            for role in Role:
                headers = {} if role == Role.PUBLIC else bearer(tokens[role])
                r = await tclient.request(method, url, headers=headers, json={})
                if allowed(role, permission):
                    assert r.status_code not in (401, 403), (method, url, role, r.status_code, r.text)
                elif role == Role.PUBLIC:
                    assert r.status_code == 401, (method, url, role)
                else:
                    assert r.status_code == 403 and r.json()["code"] == "forbidden", (method, url, role)
                checked += 1
    assert checked >= 20 * len(Role)
