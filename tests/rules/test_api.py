"""The rules routes on a started platform (the router is included here until app wiring lands)."""

from __future__ import annotations

from typing import Any

from citydata.rules import RulesService
from tests.conftest import bearer, token_for

RULE = {"id": "api-rule", "name": "API rule", "source": {"observed_property": "precipitation"},
        "condition": {"all": [{"aggregate": {"function": "sum", "window": "1h", "above": 30}}]},
        "alert": {"kind": "env.test", "severity": "minor", "category": "Met", "message": "{value} mm"}}


async def test_rules_routes(platform: Any, client: Any) -> None:
    from citydata.api.routes import rules as routes

    if getattr(platform, "rules", None) is None:
        platform.rules = RulesService(platform.store, platform.bus, platform.clock, geography=platform.geography)
        await platform.rules.start(pack="phuket", engine=False)
    if not any(getattr(r, "path", "") == "/api/v1/rules" for r in platform.app.routes):
        platform.app.include_router(routes.router)
    admin = bearer(await token_for(platform, "admin"))
    analyst = bearer(await token_for(platform, "analyst"))

    listed = (await client.get("/api/v1/rules", headers=analyst)).json()["items"]
    assert any(r["id"] == "flash-flood-risk" for r in listed)

    bad = {**RULE, "condition": {"all": [{"aggregate": {"function": "sum", "window": "soon", "above": 30}}]}}
    r = await client.post("/api/v1/rules/validate", json=bad, headers=analyst)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "rule_invalid" and r.json()["path"] == "condition.all[0].aggregate.window"
    r = await client.post("/api/v1/rules", json={**RULE, "source": {"datastreams": [424242]}}, headers=admin)
    assert r.status_code == 400 and r.json()["path"] == "source.datastreams"
    assert (await client.post("/api/v1/rules/validate", json=RULE, headers=analyst)).json()["valid"] is True

    assert (await client.post("/api/v1/rules", json=RULE, headers=analyst)).status_code == 403
    r = await client.post("/api/v1/rules", json=RULE, headers=admin)
    assert r.status_code == 201 and r.json()["version"] == 1
    assert (await client.post("/api/v1/rules", json=RULE, headers=admin)).status_code == 409
    r = await client.put("/api/v1/rules/api-rule", json={**RULE, "enabled": False}, headers=admin)
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["enabled"] is False
    versions = (await client.get("/api/v1/rules/api-rule/versions", headers=analyst)).json()["items"]
    assert [v["version"] for v in versions] == [1, 2]
    assert (await client.delete("/api/v1/rules/api-rule", headers=admin)).json()["version"] == 3
    assert (await client.get("/api/v1/rules/api-rule", headers=analyst)).status_code == 404
