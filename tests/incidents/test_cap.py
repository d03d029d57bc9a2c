"""CAP 1.2: documents valid against the OASIS schema (areas by polygon or by place name, Thai and English),
Update and Cancel threads, rule drafts that wait for an operator, the public Atom feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from lxml import etree

from citydata.alerts.events import CapDraftRequested
from citydata.errors import ValidationFailed
from citydata.events import make_event
from citydata.incidents.cap import CAP_NS, Reference, WarningSpec, build_alert, cap_time, resolve_areas
from tests.conftest import bearer, token_for
from tests.incidents.support import assert_valid_cap, cap_schema, wait_for

NS = {"cap": CAP_NS, "a": "http://www.w3.org/2005/Atom"}
SQUARE = {"type": "Polygon", "coordinates": [[[98.28, 7.88], [98.32, 7.88], [98.32, 7.92], [98.28, 7.92],
                                              [98.28, 7.88]]]}


def _spec(**kw: Any) -> WarningSpec:
    base: dict[str, Any] = {
        "event": "Flash flood", "event_th": "น้ำท่วมฉับพลัน", "category": "Met", "severity": "severe",
        "urgency": "immediate", "certainty": "likely", "response_type": ["Avoid", "Monitor"],
        "headline_en": "Flash flood warning for Kathu", "headline_th": "เตือนภัยน้ำท่วมฉับพลัน อำเภอกะทู้",
        "description_en": "Heavy rain; water levels rising fast.", "description_th": "ฝนตกหนัก ระดับน้ำสูงขึ้นเร็ว",
        "instruction_en": "Move to higher ground.", "instruction_th": "อพยพขึ้นที่สูง"}
    base.update(kw)
    return WarningSpec.model_validate(base)


def test_cap_time_has_an_offset_and_no_fraction() -> None:
    assert cap_time(datetime(2026, 11, 21, 2, 30, 5, 123456, tzinfo=UTC)) == "2026-11-21T09:30:05+07:00"


def test_documents_validate_and_the_schema_is_strict(ioc_geography: Any) -> None:
    spec = _spec(places=["Kathu", "subdistrict:830101"], polygon=SQUARE,
                 expires=datetime(2026, 11, 22, tzinfo=UTC))
    areas = resolve_areas(spec, ioc_geography)
    assert len(areas) == 3 and areas[1].geocodes and areas[1].polygons
    sent = datetime(2026, 11, 21, 2, 30, tzinfo=UTC)
    xml = build_alert(identifier="phuket.ioc.1", sender="ioc@phuket", sent=sent, status="Actual", msg_type="Alert",
                      spec=spec, areas=areas, sender_name="Phuket IOC", web="http://x/cap/alerts/phuket.ioc.1.xml")
    doc = assert_valid_cap(xml)
    infos = doc.findall("cap:info", NS)
    assert [i.findtext("cap:language", namespaces=NS) for i in infos] == ["th-TH", "en-US"]
    assert infos[0].findtext("cap:headline", namespaces=NS) == "เตือนภัยน้ำท่วมฉับพลัน อำเภอกะทู้"
    assert infos[1].findtext("cap:severity", namespaces=NS) == "Severe"
    polygon = infos[1].findtext("cap:area/cap:polygon", namespaces=NS)
    pairs = polygon.split()
    assert pairs[0] == pairs[-1] == "7.880000,98.280000" and len(pairs) == 5   # lat,lon; closed ring
    # the shipped schema is the real one: it rejects what CAP forbids
    schema = cap_schema()
    broken = etree.fromstring(xml)
    broken.find("cap:sent", NS).text = "2026-11-21T02:30:00Z"          # CAP forbids Z
    assert not schema.validate(broken)
    broken = etree.fromstring(xml)
    broken.find("cap:info/cap:severity", NS).text = "severe"           # enumerations are case-sensitive
    assert not schema.validate(broken)
    broken = etree.fromstring(xml)
    broken.remove(broken.find("cap:scope", NS))                        # scope is required
    assert not schema.validate(broken)

    update = build_alert(identifier="phuket.ioc.2", sender="ioc@phuket", sent=sent + timedelta(hours=1),
                         status="Actual", msg_type="Update", spec=spec, areas=areas, sender_name="Phuket IOC",
                         references=[Reference("ioc@phuket", "phuket.ioc.1", cap_time(sent))])
    assert assert_valid_cap(update).findtext("cap:references", namespaces=NS) == \
        "ioc@phuket,phuket.ioc.1,2026-11-21T09:30:00+07:00"
    with pytest.raises(ValidationFailed):
        build_alert(identifier="phuket.ioc.3", sender="ioc@phuket", sent=sent, status="Actual", msg_type="Cancel",
                    spec=spec, areas=areas, sender_name="x")


def test_area_errors(ioc_geography: Any) -> None:
    with pytest.raises(ValidationFailed, match="no place"):
        resolve_areas(_spec(places=["Atlantis"]), ioc_geography)
    with pytest.raises(ValidationFailed, match="polygon"):
        resolve_areas(_spec(polygon={"type": "Point", "coordinates": [98.3, 7.9]}), ioc_geography)
    with pytest.raises(ValidationFailed, match="area"):
        resolve_areas(_spec(), ioc_geography)


@pytest.fixture
async def ioc_geography(tmp_path: Any) -> Any:
    from citydata.clock import DrivenClock
    from citydata.geo import Geography, ensure_reference_city
    from citydata.store import create_store
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    store = create_store(settings, DrivenClock())
    await store.start()
    try:
        await ensure_reference_city(store, settings, DrivenClock())
        return await Geography.from_store(store)
    finally:
        await store.stop()


async def test_operator_issues_updates_and_cancels(ioc_platform: Any, ioc_client: httpx.AsyncClient) -> None:
    p = ioc_platform
    op = bearer(await token_for(p, "operator"))
    body = _spec(places=["Patong"]).model_dump(mode="json")
    r = await ioc_client.post("/api/v1/cap/warnings", headers=op, json=body)
    assert r.status_code == 201, r.text
    warning = r.json()
    assert warning["state"] == "active" and [m["msg_type"] for m in warning["messages"]] == ["Alert"]
    first = warning["messages"][0]["identifier"]
    p.clock.advance(minutes=30)
    r = await ioc_client.put(f"/api/v1/cap/warnings/{warning['id']}", headers=op,
                             json={**body, "severity": "extreme", "headline_en": "Flash flood: now extreme"})
    assert [m["msg_type"] for m in r.json()["messages"]] == ["Alert", "Update"]
    second = r.json()["messages"][1]["identifier"]
    doc = assert_valid_cap((await ioc_client.get(f"/cap/alerts/{second}.xml")).content)
    assert first in doc.findtext("cap:references", namespaces=NS)
    feed = etree.fromstring((await ioc_client.get("/cap/feed.xml")).content)
    assert [e.findtext("a:title", namespaces=NS) for e in feed.findall("a:entry", NS)] == ["Flash flood: now extreme"]
    r = await ioc_client.post(f"/api/v1/cap/warnings/{warning['id']}/cancel", headers=op)
    assert r.json()["state"] == "cancelled"
    cancel = r.json()["messages"][-1]
    doc = assert_valid_cap((await ioc_client.get(f"/cap/alerts/{cancel['identifier']}.xml")).content)
    assert doc.findtext("cap:msgType", namespaces=NS) == "Cancel"
    assert len(doc.findtext("cap:references", namespaces=NS).split()) == 2
    r = await ioc_client.post(f"/api/v1/cap/warnings/{warning['id']}/cancel", headers=op)
    assert r.status_code == 409
    r = await ioc_client.post("/api/v1/cap/warnings", headers=op, json={**body, "headline_th": None})
    assert r.status_code == 400 and r.json()["code"] == "thai_missing"
    police = bearer(await token_for(p, "police"))
    assert (await ioc_client.post("/api/v1/cap/warnings", headers=police, json=body)).status_code == 403
    audit = await p.audit.query(subject_type="cap_warning", subject_id=warning["id"])
    assert sorted(a["action"] for a in audit) == ["cap.cancel", "cap.issue", "cap.update"]


async def test_rule_drafts_are_never_public_until_an_operator_approves(ioc_platform: Any,
                                                                       ioc_client: httpx.AsyncClient) -> None:
    p = ioc_platform
    req = CapDraftRequested(dedup_key="flood:ds:7", event="Flash flood", category="Met", severity="severe",
                            headline_en="Flash flood likely in Kathu", headline_th=None,
                            description_en="Level rising.", area_desc="Kathu", area_place_ids=["district:8302"])
    await p.bus.publish(make_event("cap.draft_requested", "flood-level:flood:ds:7", p.clock.now(), req))

    async def drafts() -> list[dict[str, Any]]:
        return list(await p.ioc.cap.list("draft"))

    draft = (await wait_for(drafts, what="a draft"))[0]
    assert draft["origin"] == "rule" and draft["current_message"] is None
    feed = etree.fromstring((await ioc_client.get("/cap/feed.xml")).content)
    assert feed.findall("a:entry", NS) == []
    # the same request again refreshes the one draft
    await p.bus.publish(make_event("cap.draft_requested", "flood-level:flood:ds:7", p.clock.now(),
                                   req.model_copy(update={"headline_en": "Flash flood expected in Kathu"})))
    await wait_for(lambda: _headline(p, draft["id"], "Flash flood expected in Kathu"), what="the refresh")
    assert len(await drafts()) == 1
    op = bearer(await token_for(p, "operator"))
    r = await ioc_client.post(f"/api/v1/cap/warnings/{draft['id']}/approve", headers=op)
    assert r.status_code == 400 and r.json()["code"] == "thai_missing"     # the operator must complete it
    edited = {**draft["spec"], "headline_th": "คาดว่าจะเกิดน้ำท่วมฉับพลันในกะทู้", "description_th": "ระดับน้ำสูงขึ้น"}
    r = await ioc_client.post(f"/api/v1/cap/warnings/{draft['id']}/approve", headers=op, json=edited)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "active" and r.json()["approved_by"].startswith("token:")
    feed = etree.fromstring((await ioc_client.get("/cap/feed.xml")).content)
    links = [e.find("a:link", NS).get("href") for e in feed.findall("a:entry", NS)]
    assert len(links) == 1 and links[0].endswith(".xml")
    identifier = links[0].rsplit("/", 1)[1][:-4]
    assert_valid_cap((await ioc_client.get(f"/cap/alerts/{identifier}.xml")).content)


async def _headline(p: Any, warning_id: str, text: str) -> bool:
    return bool((await p.ioc.cap.get(warning_id))["spec"]["headline_en"] == text)
