"""Notifications: signed webhooks, retries with backoff on the driven clock, dead letters shown to admins, a
slow receiver that blocks nothing, e-mail through a real SMTP server, and the LINE Messaging API push shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from citydata.clock import DrivenClock
from citydata.incidents.notify.webhook import verify_signature
from tests.conftest import bearer, make_settings, token_for
from tests.incidents.smtp_sink import SmtpSink
from tests.incidents.support import start_platform, stop_platform, wait_for

SECRET = "webhook-secret-0123456789abcdef"


async def _dispatch(p: Any, client: httpx.AsyncClient, agency: str, title: str = "Boat capsized") -> int:
    op = bearer(await token_for(p, "operator"))
    iid = int((await client.post("/api/v1/incidents", headers=op, json={"title": title, "priority": "P1"})
               ).json()["id"])
    r = await client.post(f"/api/v1/incidents/{iid}/dispatch", headers=op, json={"agency": agency})
    assert r.status_code == 200, r.text
    return iid


async def _set_agency(p: Any, client: httpx.AsyncClient, agency: str, **fields: Any) -> dict[str, Any]:
    admin = bearer(await token_for(p, "admin"))
    r = await client.put(f"/api/v1/agencies/{agency}", headers=admin, json={"name": agency, **fields})
    assert r.status_code in (200, 201), r.text
    assert "webhook_secret" not in r.json()
    return dict(r.json())


async def test_webhook_is_signed_and_failures_retry_then_dead_letter(ioc_platform: Any,
                                                                    ioc_client: httpx.AsyncClient,
                                                                    receiver: Any) -> None:
    p = ioc_platform
    good, bad = receiver(), receiver(status=500)
    await _set_agency(p, ioc_client, "marine_police", webhook_url=good.url + "/in", webhook_secret=SECRET)
    await _set_agency(p, ioc_client, "hospital", webhook_url=bad.url + "/in", webhook_secret=SECRET)
    iid = await _dispatch(p, ioc_client, "marine_police")
    await _dispatch(p, ioc_client, "hospital", "Injured diver")
    await wait_for(lambda: good.requests and bad.requests, what="both receivers called")
    req = good.requests[0]
    assert verify_signature(SECRET, req["body"], req["headers"]["x-citydata-signature"])
    assert not verify_signature("another-secret-0123456789", req["body"], req["headers"]["x-citydata-signature"])
    assert req["headers"]["x-citydata-timestamp"].isdigit()
    body = json.loads(req["body"])
    assert body["event"] == "incident.dispatched" and body["incident"]["id"] == iid

    attempts = p.settings.ioc_delivery_attempts
    backoff = p.settings.ioc_delivery_backoff_s
    for n in range(1, attempts):
        await wait_for(lambda n=n: len(bad.requests) == n, what=f"attempt {n}")
        await p.ioc.deliveries.drain()
        rows = await p.ioc.deliveries.list(agency_id="hospital")
        assert rows[0]["state"] == "pending" and rows[0]["attempts"] == n
        p.clock.advance(backoff * 2 ** (n - 1) - 1)
        assert await p.ioc.deliveries.run_once() == 0          # not due yet: exponential backoff
        p.clock.advance(1)
        p.ioc.deliveries.wake()
    await wait_for(lambda: len(bad.requests) == attempts, what="the last attempt")
    await p.ioc.deliveries.drain()
    admin = bearer(await token_for(p, "admin"))
    dead = (await ioc_client.get("/api/v1/admin/deliveries", params={"state": "dead"}, headers=admin)).json()["items"]
    assert [(d["agency_id"], d["attempts"], d["last_error"]) for d in dead] == \
        [("hospital", attempts, "webhook answered 500")]
    letters = await p.dead_letters.list(source="notify")
    assert letters[0]["channel"] == "webhook:hospital" and letters[0]["detail"]["delivery_id"] == dead[0]["id"]
    op = bearer(await token_for(p, "operator"))
    assert (await ioc_client.get("/api/v1/admin/deliveries", headers=op)).status_code == 403
    assert len(good.requests) == 1                        # the good one was delivered once
    bad.status = 204
    r = await ioc_client.post(f"/api/v1/admin/deliveries/{dead[0]['id']}/retry", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "pending"
    await wait_for(lambda: len(bad.requests) == attempts + 1, what="the replay")
    await p.ioc.deliveries.drain()
    assert (await p.ioc.deliveries.list(agency_id="hospital"))[0]["state"] == "delivered"


async def test_a_hanging_receiver_blocks_neither_the_api_nor_other_agencies(tmp_path: Path, receiver: Any) -> None:
    settings = make_settings(tmp_path, mqtt_url="none://", ioc_delivery_timeout_s=1.0)
    p, ours = await start_platform(settings, DrivenClock())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app), base_url="http://t") as client:
            slow, fast = receiver(delay=5.0), receiver()
            await _set_agency(p, client, "police", webhook_url=slow.url, webhook_secret=SECRET)
            await _set_agency(p, client, "tourist_police", webhook_url=fast.url, webhook_secret=SECRET)
            loop_time = __import__("asyncio").get_running_loop().time
            started = loop_time()
            await _dispatch(p, client, "police")
            await _dispatch(p, client, "tourist_police")
            assert loop_time() - started < 1.0                  # dispatch never waits for a receiver
            await wait_for(lambda: fast.requests, timeout=0.9, what="the fast receiver, before the slow one times out")
            await p.ioc.deliveries.drain()
            rows = {r["agency_id"]: r for r in await p.ioc.deliveries.list()}
            assert rows["tourist_police"]["state"] == "delivered"
            assert rows["police"]["state"] == "pending" and rows["police"]["last_error"] == "webhook ReadTimeout"
    finally:
        await stop_platform(p, ours)


async def test_email_goes_through_a_real_smtp_server(tmp_path: Path) -> None:
    sink = SmtpSink()
    await sink.start()
    try:
        settings = make_settings(tmp_path, mqtt_url="none://", ioc_smtp_host="127.0.0.1", ioc_smtp_port=sink.port,
                                 ioc_smtp_from="ioc@phuket.example")
        p, ours = await start_platform(settings, DrivenClock())
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app), base_url="http://t") as client:
                await _set_agency(p, client, "health", email="duty@health.example")
                iid = await _dispatch(p, client, "health", "Food poisoning at hotel")
                await wait_for(lambda: sink.messages, what="an e-mail")
        finally:
            await stop_platform(p, ours)
    finally:
        await sink.stop()
    got = sink.messages[0]
    assert got.rcpt_to == ["duty@health.example"] and got.mail_from == "ioc@phuket.example"
    assert got.message["Subject"] == f"[P1] Incident #{iid}: Food poisoning at hotel (dispatched to you)"
    text = got.message.get_body(("plain",))
    assert text is not None and "State: dispatched" in text.get_content()
    attached = [part for part in got.message.iter_attachments()]
    assert json.loads(attached[0].get_content())["incident"]["id"] == iid


async def test_line_push_request_shape(tmp_path: Path, receiver: Any) -> None:
    line_api = receiver()
    settings = make_settings(tmp_path, mqtt_url="none://", ioc_line_api_url=line_api.url,
                             ioc_line_channel_token="line-channel-token-for-tests")
    p, ours = await start_platform(settings, DrivenClock())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=p.app), base_url="http://t") as client:
            await _set_agency(p, client, "tourist_police", line_to="U4af4980629")
            iid = await _dispatch(p, client, "tourist_police", "Missing child on Patong beach")
            await wait_for(lambda: line_api.requests, what="a LINE push")
            await p.ioc.deliveries.drain()
            assert (await p.ioc.deliveries.list())[0]["channel"] == "line"
    finally:
        await stop_platform(p, ours)
    req = line_api.requests[0]
    assert req["path"] == "/v2/bot/message/push"
    assert req["headers"]["authorization"] == "Bearer line-channel-token-for-tests"
    assert len(req["headers"]["x-line-retry-key"]) == 36
    body = json.loads(req["body"])
    assert body["to"] == "U4af4980629" and body["messages"][0]["type"] == "text"
    assert f"Incident #{iid}: Missing child" in body["messages"][0]["text"]


@pytest.mark.parametrize("field,value", [("webhook_secret", "short"), ("email", "not-an-address"),
                                         ("webhook_url", "ftp://x")])
async def test_agency_endpoints_are_validated(ioc_platform: Any, ioc_client: httpx.AsyncClient, field: str,
                                              value: str) -> None:
    admin = bearer(await token_for(ioc_platform, "admin"))
    r = await ioc_client.put("/api/v1/agencies/police", headers=admin, json={"name": "Police", field: value})
    assert r.status_code == 400
