"""Tourist problem reports: submit with a photo (EXIF stripped except GPS), the alert through the rule pack,
follow-up by code, audited reads, validation errors per field, idempotent replays, rate limit and purge."""

from __future__ import annotations

import asyncio
import base64
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest
from PIL import Image

from citydata.reports.photo import GPS_IFD
from tests.conftest import bearer, token_for

PATONG = (7.8961, 98.2962)


def photo_jpeg(with_gps: bool = True) -> bytes:
    image = Image.new("RGB", (640, 480), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "Canon"              # Make
    exif[0x013B] = "Jane Doe"           # Artist
    exif[0xA431] = "SN-123456"          # BodySerialNumber (in the main IFD here, still must go)
    exif[0x0112] = 6                    # orientation: rotate
    if with_gps:
        exif[GPS_IFD] = {1: "N", 2: (7.0, 53.0, 46.0), 3: "E", 4: (98.0, 17.0, 46.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


async def wait_alert(client: httpx.AsyncClient, headers: dict[str, str], code: str) -> dict[str, Any]:
    for _ in range(200):
        r = await client.get("/api/v1/alerts", params={"kind": "report.citizen"}, headers=headers)
        assert r.status_code == 200, r.text
        for alert in r.json()["items"]:
            if alert["subject"] == code:
                return dict(alert)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no alert for report {code}")


async def test_report_with_photo_becomes_an_alert(backend_platform: Any) -> None:
    p = backend_platform
    transport = httpx.ASGITransport(app=p.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        photo = base64.b64encode(photo_jpeg()).decode()
        r = await client.post("/api/v1/reports", json={
            "category": "scam", "text": "Jet-ski operator demands 20000 baht for a scratch", "lang": "en",
            "photo": f"data:image/jpeg;base64,{photo}", "client_ref": "abc12345-queue-1"})
        assert r.status_code == 201, r.text
        code = r.json()["code"]
        assert r.json()["location"]["source"] == "photo"           # no browser fix: the photo's GPS
        # the same queued report sent again is stored once
        again = await client.post("/api/v1/reports", json={
            "category": "scam", "text": "Jet-ski operator demands 20000 baht for a scratch",
            "client_ref": "abc12345-queue-1"})
        assert again.json() == {"code": code, "created_at": again.json()["created_at"], "duplicate": True}

        operator = bearer(await token_for(p, "operator"))
        alert = await wait_alert(client, operator, code)
        assert alert["data"]["category"] == "scam" and alert["data"]["has_photo"] is True
        assert alert["zone_id"] == "subdistrict:830202"                # Patong
        assert "Jet-ski" not in str(alert)                              # the text stays in the report

        status = await client.get(f"/api/v1/reports/status/{code}")
        assert status.json()["state"] == "in_ioc"
        assert "text" not in status.json()
        await client.post(f"/api/v1/alerts/{alert['id']}/ack", headers=operator)
        assert (await client.get(f"/api/v1/reports/status/{code}")).json()["state"] == "acknowledged"

        # the public cannot read reports; responders can, and every read is audited
        assert (await client.get(f"/api/v1/reports/{code}")).status_code == 401
        hotel = bearer(await token_for(p, "hotel", agency="hotel_a"))
        assert (await client.get(f"/api/v1/reports/{code}", headers=hotel)).status_code == 403
        detail = (await client.get(f"/api/v1/reports/{code}", headers=operator)).json()
        assert detail["text"].startswith("Jet-ski") and detail["has_photo"]
        jpeg = (await client.get(f"/api/v1/reports/{code}/photo", headers=operator)).content
        image = Image.open(io.BytesIO(jpeg))
        assert image.size == (480, 640)                                 # orientation applied to the pixels
        exif = image.getexif()
        assert set(exif) == {GPS_IFD}                                   # make, artist, serial, orientation gone
        assert exif.get_ifd(GPS_IFD)[2] == (7.0, 53.0, 46.0)
        admin = bearer(await token_for(p, "admin"))
        audit = (await client.get("/api/v1/admin/audit", headers=admin)).json()["items"]
        assert {"report.read", "report.photo"} <= {a["action"] for a in audit}

        # the stored ciphertext is not the text
        from sqlalchemy import select

        from citydata.reports.schema import reports
        row = await p.store.fetch_one(select(reports).where(reports.c.code == code))
        assert "Jet-ski" not in row["text_ct"] and row["photo_ct"] is not None

        # retention: text and photo go, the category and place stay
        purged = await p.reports.purge(p.clock.now() + timedelta(days=91))
        assert purged == 1
        detail = (await client.get(f"/api/v1/reports/{code}", headers=operator)).json()
        assert detail["text"] is None and not detail["has_photo"] and detail["category"] == "scam"


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"category": "ufo", "text": "hello there"}, "category", "invalid"),
    ({"category": "scam", "text": "x"}, "text", "invalid"),
    ({"category": "scam", "text": "hello there", "lat": 95, "lon": 98.3}, "lat", "invalid"),
    ({"category": "scam", "text": "hello there", "lat": 7.9}, "lat", "invalid_location"),
    ({"category": "scam", "text": "hello there", "photo": "bm90IGFuIGltYWdl"}, "photo", "invalid_photo"),
    ({"category": "scam", "text": "hello there", "photo": "%%%"}, "photo", "invalid_photo"),
])
async def test_validation_errors_name_the_field(client: httpx.AsyncClient, body: dict[str, Any], field: str,
                                                code: str) -> None:
    r = await client.post("/api/v1/reports", json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == code
    fields = {e["field"] for e in problem.get("errors", [])} | {problem.get("field")}
    assert field in fields


async def test_rate_limit_and_unknown_code(platform: Any, client: httpx.AsyncClient) -> None:
    limit = platform.settings.reports_per_client_hour
    for i in range(limit):
        r = await client.post("/api/v1/reports", json={"category": "noise", "text": f"loud bar {i}",
                                                       "lat": PATONG[0], "lon": PATONG[1]})
        assert r.status_code == 201, r.text
    r = await client.post("/api/v1/reports", json={"category": "noise", "text": "one more"})
    assert r.status_code == 429 and r.json()["code"] == "reports_rate_limited"
    assert (await client.get("/api/v1/reports/status/R-AAAA-AAAA")).status_code == 404
    assert (await client.get("/api/v1/reports/status/nonsense")).status_code in (400, 404)


async def test_a_report_replayed_concurrently_is_stored_once(platform: Any) -> None:
    """Two sends of one queued report in the same writer batch: one is stored, both get its code (the unique
    client_ref turns the second insert into a conflict, answered with the stored report)."""
    from sqlalchemy import func, select

    from citydata.reports import ReportIn
    from citydata.reports.schema import reports

    body = ReportIn(category="scam", text="taxi meter off", client_ref="race-1234-abcd")
    first, second = await asyncio.gather(platform.reports.submit(body, "10.0.0.1"),
                                         platform.reports.submit(body, "10.0.0.1"))
    assert first["code"] == second["code"]
    assert sorted([first["duplicate"], second["duplicate"]]) == [False, True]
    assert await platform.store.scalar(select(func.count()).select_from(reports)
                                       .where(reports.c.client_ref == "race-1234-abcd")) == 1
