"""Alerts: dedup by key (one alert, updated), clear and reopen as a new alert, redelivery, role filtering,
acknowledgement over the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from citydata.alerts.events import AlertRaised
from citydata.events import make_event
from tests.conftest import bearer, token_for
from tests.incidents.support import alert_payload, publish_raised, wait_for


async def test_flapping_rule_gives_one_updated_alert_and_a_cleared_one_is_not_reopened(backend_ioc: Any) -> None:
    p = backend_ioc
    from citydata.auth import ANONYMOUS, Principal, Role

    operator = Principal("op", Role.OPERATOR, "user")
    for i in range(6):
        p.clock.advance(30)
        await publish_raised(p, alert_payload(evidence_id=f"obs-{i}", at=p.clock.now(),
                                              severity="extreme" if i == 5 else "severe"))
    items = await wait_for(lambda: _with_occurrences(p, operator, 6), what="six occurrences")
    assert len(items) == 1
    alert = items[0]
    assert alert["state"] == "open" and alert["severity"] == "extreme"
    assert [e["id"] for e in alert["evidence"]] == [f"obs-{i}" for i in range(6)]

    await p.bus.publish(make_event("alert.cleared", "flood:ds:7", p.clock.now(), {
        "dedup_key": "flood:ds:7", "rule_id": "flood-level", "reason": "level back to normal",
        "observed_at": p.clock.now().isoformat()}))
    await wait_for(lambda: _state(p, operator, alert["id"], "cleared"), what="cleared")
    cleared = await p.ioc.alerts.get(alert["id"], operator)
    assert cleared["cleared_by"] == "rule:flood-level" and cleared["clear_reason"] == "level back to normal"

    await publish_raised(p, alert_payload(evidence_id="obs-99", at=p.clock.now()))
    fresh = await wait_for(lambda: _open(p, operator), what="a new alert")
    assert fresh[0]["id"] != alert["id"] and fresh[0]["occurrences"] == 1
    assert ANONYMOUS.can("alerts.read") is False


async def _with_occurrences(p: Any, who: Any, n: int) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = await p.ioc.alerts.list(who)
    return items if items and items[0]["occurrences"] == n else None


async def _state(p: Any, who: Any, alert_id: int, state: str) -> bool:
    return bool((await p.ioc.alerts.get(alert_id, who))["state"] == state)


async def _open(p: Any, who: Any) -> list[dict[str, Any]]:
    return list(await p.ioc.alerts.list(who, state="open"))


async def test_a_redelivered_event_is_applied_once(ioc_platform: Any) -> None:
    service = ioc_platform.ioc.alerts
    raised = AlertRaised.model_validate(alert_payload())
    first = await service.raise_alert(raised, event_id="e1")
    again = await service.raise_alert(raised, event_id="e1")
    later = await service.raise_alert(raised, event_id="e2")
    assert (first[0], again[0], later[0]) == ("opened", "unchanged", "updated")
    assert later[1]["occurrences"] == 2 and len(later[1]["evidence"]) == 1   # same evidence id merged


async def test_list_contract_filters_and_role_visibility(ioc_platform: Any, ioc_client: httpx.AsyncClient) -> None:
    p = ioc_platform
    service = p.ioc.alerts
    await service.raise_alert(AlertRaised.model_validate(alert_payload("flood:1")), event_id="a")
    p.clock.advance(minutes=10)
    since = p.clock.now()
    p.clock.advance(1)
    await service.raise_alert(AlertRaised.model_validate(alert_payload(
        "left:t1", kind="tracking.left_zone", severity="moderate", data={"zone": "province:83", "now_in": "81"})),
        event_id="b")
    operator = bearer(await token_for(p, "operator"))
    health = bearer(await token_for(p, "health"))

    r = await ioc_client.get("/api/v1/alerts", headers=operator)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [a["kind"] for a in items] == ["tracking.left_zone", "env.flood_risk"]
    for key in ("id", "kind", "severity", "category", "subject", "message", "opened_at", "state", "data"):
        assert key in items[0]
    r = await ioc_client.get("/api/v1/alerts", params={"kind": "env.*", "state": "open"}, headers=operator)
    assert [a["dedup_key"] for a in r.json()["items"]] == ["flood:1"]
    r = await ioc_client.get("/api/v1/alerts", params={"since": since.isoformat()}, headers=operator)
    assert [a["dedup_key"] for a in r.json()["items"]] == ["left:t1"]
    # health may read alerts, but not tracking-derived ones (those need tracking.read_positions)
    r = await ioc_client.get("/api/v1/alerts", headers=health)
    assert [a["kind"] for a in r.json()["items"]] == ["env.flood_risk"]
    tracking_id = items[0]["id"]
    assert (await ioc_client.get(f"/api/v1/alerts/{tracking_id}", headers=health)).status_code == 404
    assert (await ioc_client.get("/api/v1/alerts", params={"state": "bogus"}, headers=operator)).status_code == 400
    assert (await ioc_client.get("/api/v1/alerts")).status_code == 401


async def test_ack_over_the_api_is_recorded_and_a_cleared_alert_cannot_be_acked(
        ioc_platform: Any, ioc_client: httpx.AsyncClient) -> None:
    p = ioc_platform
    _, alert = await p.ioc.alerts.raise_alert(AlertRaised.model_validate(alert_payload()), event_id="x")
    police = bearer(await token_for(p, "police"))
    r = await ioc_client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=police, json={"note": "on it"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "acknowledged" and r.json()["acked_by"].startswith("token:")
    audit = await p.audit.query(subject_type="alert", subject_id=str(alert["id"]))
    assert [a["action"] for a in audit] == ["alert.ack"]
    r = await ioc_client.post(f"/api/v1/alerts/{alert['id']}/clear", headers=police, json={"reason": "false alarm"})
    assert r.json()["state"] == "cleared"
    r = await ioc_client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=police)
    assert r.status_code == 409 and r.json()["code"] == "alert_cleared"
    assert (await ioc_client.post("/api/v1/alerts/999999/ack", headers=police)).status_code == 404
    hotel = bearer(await token_for(p, "hotel"))
    assert (await ioc_client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=hotel)).status_code == 403


async def test_alert_raised_payload_is_validated_at_the_producer(ioc_platform: Any) -> None:
    from citydata.errors import ValidationFailed

    bad = alert_payload(severity="catastrophic")
    with pytest.raises(ValidationFailed):
        make_event("alert.raised", "k", ioc_platform.clock.now(), bad)
    ok = alert_payload(at=ioc_platform.clock.now() - timedelta(minutes=1))
    assert make_event("alert.raised", "k", ioc_platform.clock.now(), ok).data["severity"] == "severe"
