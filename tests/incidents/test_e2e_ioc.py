"""End to end on a real server (uvicorn on a free port, embedded MQTT broker): an observation and an alert
reach a real SSE client; the alert is listed, acknowledged, turned into an incident and dispatched to the
tourist police through the API; the agency's webhook receiver gets a correctly signed call; MQTT integrators
get the alert on citydata/alerts/#; an operator issues a CAP warning and the feed and the document validate
against the OASIS CAP 1.2 schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
from lxml import etree

from citydata.clock import SystemClock
from citydata.incidents.notify.webhook import verify_signature
from tests.conftest import bearer, free_port, make_settings, token_for
from tests.incidents.support import alert_payload, assert_valid_cap, publish_raised, start_platform, stop_platform

SECRET = "tourist-police-webhook-secret-42"


async def _read_sse(client: httpx.AsyncClient, url: str, headers: dict[str, str], out: list[dict[str, Any]],
                    ready: asyncio.Event) -> None:
    with contextlib.suppress(httpx.HTTPError):
        await _read_sse_once(client, url, headers, out, ready)


async def _read_sse_once(client: httpx.AsyncClient, url: str, headers: dict[str, str], out: list[dict[str, Any]],
                         ready: asyncio.Event) -> None:
    async with client.stream("GET", url, headers={**headers, "Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if line.startswith(": connected"):
                ready.set()
            elif line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("id: "):
                event["id"] = line[4:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and "event" in event:
                out.append(event)
                event = {}


async def _until(predicate: Any, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_observation_to_alert_to_incident_to_webhook_to_cap(tmp_path: Path, receiver: Any) -> None:
    port, mqtt_port = free_port(), free_port()
    settings = make_settings(tmp_path, http_port=port, mqtt_url=f"embedded://127.0.0.1:{mqtt_port}")
    p, ours = await start_platform(settings, SystemClock(), serve_http=True)
    hook = receiver()
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            admin = bearer(await token_for(p, "admin"))
            op_token = await token_for(p, "operator")
            op = bearer(op_token)
            r = await http.put("/api/v1/agencies/tourist_police", headers=admin, json={
                "name": "Tourist Police", "webhook_url": hook.url + "/191", "webhook_secret": SECRET})
            assert r.status_code == 200, r.text

            # a live SSE client (the operator) and an MQTT integrator
            events: list[dict[str, Any]] = []
            ready = asyncio.Event()
            reader = asyncio.create_task(_read_sse(http, "/api/v1/stream", op, events, ready))
            mqtt_messages: list[aiomqtt.Message] = []
            async with aiomqtt.Client("127.0.0.1", mqtt_port, username=op_token, password=op_token) as mqtt:
                await mqtt.subscribe("citydata/alerts/env/#", qos=1)   # an operator may not wildcard over vision alerts

                async def collect() -> None:
                    with contextlib.suppress(aiomqtt.MqttError):
                        async for message in mqtt.messages:
                            mqtt_messages.append(message)

                collector = asyncio.create_task(collect())
                await asyncio.wait_for(ready.wait(), 10)

                # an observation arrives over the SensorThings API ...
                r = await http.post("/v1.1/Things", headers=op, json={
                    "name": "Khlong Bang Yai gauge", "description": "water level",
                    "Locations": [{"name": "gauge", "description": "Khlong Bang Yai", "encodingType":
                                   "application/geo+json", "location": {"type": "Point",
                                                                        "coordinates": [98.3, 7.9]}}],
                    "Datastreams": [{"name": "level", "description": "water level",
                                     "unitOfMeasurement": {"name": "metre", "symbol": "m", "definition": "m"},
                                     "observationType": "http://www.opengis.net/def/observationType/"
                                                        "OGC-OM/2.0/OM_Measurement",
                                     "ObservedProperty": {"name": "level", "description": "water level",
                                                          "definition": "level"},
                                     "Sensor": {"name": "gauge", "description": "radar", "encodingType":
                                                "application/pdf", "metadata": "x"}}]})
                assert r.status_code == 201, r.text
                r = await http.get(r.headers["location"].split(base, 1)[-1] + "/Datastreams", headers=op)
                ds = r.json()["value"][0]["@iot.id"]
                r = await http.post(f"/v1.1/Datastreams({ds})/Observations", headers=op,
                                    json={"result": 2.4, "phenomenonTime": "2026-11-21T02:30:00Z"})
                assert r.status_code == 201, r.text
                await _until(lambda: any(e["event"] == "observation" for e in events))
                obs = next(e for e in events if e["event"] == "observation")["data"]
                assert obs["datastream_id"] == ds and obs["result"] == 2.4

                # ... and the rules engine (here: its contract, published directly) raises an alert
                await publish_raised(p, alert_payload(f"flood:ds:{ds}", evidence_id=str(obs["id"])))
                await _until(lambda: any(e["event"] == "alert" for e in events))
                sse_alert = next(e for e in events if e["event"] == "alert")
                assert sse_alert["id"] and sse_alert["data"]["change"] == "opened"
                alert_id = sse_alert["data"]["alert"]["id"]
                await _until(lambda: bool(mqtt_messages))
                assert str(mqtt_messages[0].topic) == "citydata/alerts/env/flood_risk"
                assert json.loads(mqtt_messages[0].payload)["alert"]["id"] == alert_id
                collector.cancel()

            r = await http.get("/api/v1/alerts", params={"kind": "env.flood_risk", "state": "open"}, headers=op)
            assert [a["id"] for a in r.json()["items"]] == [alert_id]
            r = await http.post(f"/api/v1/alerts/{alert_id}/ack", headers=op)
            assert r.json()["state"] == "acknowledged"

            r = await http.post("/api/v1/incidents", headers=op, json={
                "alert_ids": [alert_id], "title": "Flooding, Khlong Bang Yai", "priority": "P2"})
            assert r.status_code == 201, r.text
            incident_id = r.json()["id"]
            r = await http.post(f"/api/v1/incidents/{incident_id}/dispatch", headers=op,
                                json={"agency": "tourist_police"})
            assert r.json()["state"] == "dispatched"
            await _until(lambda: any(e["event"] == "incident" and e["data"]["change"] == "dispatched"
                                     for e in events))

            await _until(lambda: bool(hook.requests))
            call = hook.requests[0]
            assert call["path"] == "/191"
            assert verify_signature(SECRET, call["body"], call["headers"]["x-citydata-signature"])
            body = json.loads(call["body"])
            assert body["event"] == "incident.dispatched" and body["incident"]["id"] == incident_id
            assert body["incident"]["alert_ids"] == [alert_id]

            # the tourist police see their incident on their own stream; resume with Last-Event-ID
            tp = bearer(await token_for(p, "tourist_police", agency="tourist_police"))
            first_id = events[0].get("id") or next(e["id"] for e in events if "id" in e)
            r = await http.get("/api/v1/stream", headers={**tp, "Last-Event-ID": first_id},
                               params={"max_s": "0.3"})
            replayed = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
            assert "incident" in replayed and "alert" in replayed

            r = await http.post("/api/v1/cap/warnings", headers=op, json={
                "event": "Flash flood", "event_th": "น้ำท่วมฉับพลัน", "category": "Met", "severity": "severe",
                "urgency": "immediate", "certainty": "observed", "headline_en": "Flash flood in Kathu",
                "headline_th": "น้ำท่วมฉับพลันในกะทู้", "description_en": "Khlong Bang Yai is overflowing.",
                "description_th": "คลองบางใหญ่ล้นตลิ่ง", "places": ["Kathu"]})
            assert r.status_code == 201, r.text
            feed_response = await http.get("/cap/feed.xml")
            assert feed_response.headers["content-type"].startswith("application/atom+xml")
            feed = etree.fromstring(feed_response.content)
            links = [e.get("href") for e in feed.iter("{http://www.w3.org/2005/Atom}link")
                     if e.get("type") == "application/cap+xml"]
            assert len(links) == 1 and links[0].startswith(settings.base_url)
            cap_response = await http.get(links[0].replace(settings.base_url, ""))
            assert cap_response.headers["content-type"].startswith("application/cap+xml")
            doc = assert_valid_cap(cap_response.content)
            assert doc.findtext("{urn:oasis:names:tc:emergency:cap:1.2}msgType") == "Alert"
            reader.cancel()
    finally:
        await stop_platform(p, ours)
