"""The IOC dashboard and the tourist app in a real browser (Chromium) against a real server.

* An operator signs in, sees the province and the checkpoints on the map (checked on the screenshot, at the
  position the map's own projection gives), receives a live alert caused by an MQTT observation sent during
  the test, acknowledges it, opens an incident from it and dispatches it; the stream indicator shows a dropped
  connection and the reconnection; the CAP composer previews and issues a warning for a drawn area.
* A hotel signs in and sees only its own guests.
* A tourist sees the warnings, the nearest WiFi hotspot and the nearest hospital, sends a report with a photo
  (which reaches the IOC as an alert, with the photo), and a report made offline is queued and sent later.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from citydata.reports.photo import GPS_IFD
from tests.browser.conftest import PASSWORD, LiveServer, shot
from tests.browser.pixels import province_drawn, province_on_screen

pytestmark = pytest.mark.e2e
PATONG = {"latitude": 7.8961, "longitude": 98.2962}
TIMEOUT = 20_000


def sign_in(browser: Any, server: LiveServer, username: str, **context: Any) -> Any:
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-GB", **context)
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{server.url}/ioc/")
    page.fill("#login-username", username)
    page.fill("#login-password", "wrong password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-form [data-form-error]:not([hidden])")     # the server's error, shown
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("body[data-ready=true]")
    page.page_errors = errors
    return page


def rain_gauge(server: LiveServer) -> int:
    """A rain gauge at Patong with one precipitation datastream; returns the datastream id."""
    r = server.http.post("/v1.1/Things", headers=server.admin, json={
        "name": "Patong rain gauge", "description": "tipping bucket",
        "Locations": [{"name": "Patong", "description": "gauge", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [98.2985, 7.8955]}}],
        "Datastreams": [{"name": "Patong rain", "description": "rain per 10 minutes",
                         "unitOfMeasurement": {"name": "millimetre", "symbol": "mm", "definition": "mm"},
                         "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                         "ObservedProperty": {"name": "precipitation", "description": "rain",
                                              "definition": "precipitation"},
                         "Sensor": {"name": "bucket", "description": "tipping bucket",
                                    "encodingType": "application/pdf", "metadata": "x"}}]})
    assert r.status_code == 201, r.text
    thing = r.headers["location"].rsplit("/", 1)[-1]
    r = server.http.get(f"/v1.1/{thing}/Datastreams", headers=server.admin)
    return int(r.json()["value"][0]["@iot.id"])


def test_operator_map_live_alert_incident_dispatch_and_cap(browser: Any, live_server: LiveServer) -> None:
    server = live_server
    server.user("op.somchai", "operator")
    datastream = rain_gauge(server)
    device = server.token("device", "rain gauge")
    page = sign_in(browser, server, "op.somchai")

    # the map: province, districts, sub-districts, checkpoints and piers as vector layers
    counts = page.evaluate("""() => { const r = window.citydata.reference
        return { province: r.province.getLayers().length, checkpoints: r.checkpoints.getLayers().length,
                 piers: r.piers.getLayers().length, districts: r.districts.getLayers().length } }""")
    assert counts == {"province": 1, "checkpoints": 5, "piers": 7, "districts": 3}
    page.wait_for_timeout(500)                                   # let the canvas renderer paint
    png = page.locator("#map").screenshot(path=str(shot_path("ioc-map")))
    outline, width, height = province_on_screen(page)
    assert outline.area > 0.03 * width * height                  # the map is fitted to the province
    drawn = province_drawn(png, outline)
    assert drawn["samples"] > 200, drawn
    assert drawn["drawn"] > 0.9 and drawn["tinted"] > 0.8, drawn
    image = Image.open(io.BytesIO(png)).convert("RGB")
    magenta = 0
    for xy in page.evaluate("""() => window.citydata.reference.checkpoints.getLayers().map((m) => {
            const p = window.citydata.map.latLngToContainerPoint(m.getLatLng()); return [p.x, p.y] })"""):
        x, y = round(xy[0]), round(xy[1])
        if 0 <= x < image.width and 0 <= y < image.height:
            r, g, b = image.getpixel((x, y))[:3]
            magenta += int(r > 150 and g < 80 and b > 60)         # the checkpoint marker's colour (#c2185b)
    assert magenta >= 4, magenta

    # a live alert caused by an MQTT observation sent now: 48 mm of rain is "heavy rain" (over 35 mm in 24 h)
    page.wait_for_selector("#stream-status[data-state=live]")
    now = datetime.now(UTC).replace(microsecond=0)
    server.publish_mqtt(f"v1.1/Datastreams({datastream})/Observations",
                        json.dumps({"result": 48.0, "phenomenonTime": now.isoformat()}).encode(), device)
    item = page.wait_for_selector('#alerts li[data-kind="env.heavy_rain"]')
    assert "48.0 mm" in item.inner_text()
    shot(page, "ioc-alert")

    item.query_selector("button.ack").click()
    page.wait_for_selector('#alerts li[data-kind="env.heavy_rain"].acked')
    page.click('#alerts li[data-kind="env.heavy_rain"] button.to-incident')
    card = page.wait_for_selector('#board [data-state="new"] article.incident')
    incident_id = card.get_attribute("data-incident-id")
    assert "Heavy rain" in card.inner_text()
    assert page.inner_text(f'[data-incident-id="{incident_id}"] .sla')         # the SLA timer runs
    page.select_option(f"#dispatch-{incident_id}", "tourist_police")
    page.click(f'[data-incident-id="{incident_id}"] form.dispatch button')
    page.wait_for_selector(f'#board [data-state="dispatched"] [data-incident-id="{incident_id}"]')
    page.click(f'[data-incident-id="{incident_id}"] summary')
    page.fill(f"#note-{incident_id}", "Crew on the way from Patong station")
    page.click(f'[data-incident-id="{incident_id}"] form.note button')
    page.wait_for_selector(f'[data-incident-id="{incident_id}"] .notes li:has-text("Crew on the way")')
    got = server.http.get(f"/api/v1/incidents/{incident_id}", headers=server.admin).json()
    assert got["state"] == "dispatched" and got["agencies"] == ["tourist_police"]
    assert got["alert_ids"] and got["notes"][-1]["text"] == "Crew on the way from Patong station"

    # CAP composer: an area drawn on the map, the server's validation next to the field, the XML preview
    page.fill("#cap-event", "Flash flood")
    page.fill("#cap-headline_en", "Flash-flood risk in Patong")
    page.fill("#cap-description_en", "Heavy rain over the Patong hills.")
    page.click("#cap-issue")
    page.wait_for_selector("#err-cap-headline_th:not([hidden])")              # Thai text required
    page.click("#cap-draw")
    for lat, lon in ((7.91, 98.28), (7.91, 98.32), (7.87, 98.32), (7.87, 98.28)):
        point = page.evaluate(f"() => {{ const p = window.citydata.map.latLngToContainerPoint([{lat}, {lon}]); "
                              f"return [p.x, p.y] }}")
        page.locator("#map").click(position={"x": point[0], "y": point[1]})
    page.click("#cap-finish")
    assert page.inner_text("#cap-area-info").startswith("4")
    page.fill("#cap-headline_th", "เสี่ยงน้ำท่วมฉับพลันที่ป่าตอง")
    page.fill("#cap-description_th", "ฝนตกหนักบนเขาป่าตอง")
    page.click("#cap-preview")
    xml = page.wait_for_selector("#cap-xml:not([hidden])").inner_text()
    assert "<polygon>" in xml and "th-TH" in xml and "Flash-flood risk in Patong" in xml
    page.click("#cap-issue")
    page.wait_for_selector("#cap-result a")
    feed = server.http.get("/cap/feed.xml").text
    assert "Flash-flood risk in Patong" in feed

    # the live stream drops (the server restarts) and the dashboard shows it, then reconnects by itself
    server.stop()
    page.wait_for_selector("#stream-status[data-state=down]")
    assert "reconnecting" in page.inner_text("#stream-status")
    server.proc = server.spawn()
    page.wait_for_selector("#stream-status[data-state=live]", timeout=40_000)

    # Thai: the language switch changes the labels
    page.select_option("#lang", "th")
    assert page.inner_text("#h-alerts") == "การแจ้งเตือนสด"
    page.select_option("#lang", "en")
    page.locator("#map").scroll_into_view_if_needed()
    shot(page, "ioc", readme=True, full_page=False)
    assert not page.page_errors, page.page_errors
    page.context.close()


def shot_path(name: str) -> Any:
    from tests.browser.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


def arrival(server: LiveServer, immigration: str, name: str, passport: str, hotel: str) -> str:
    r = server.http.post("/api/v1/tracking/arrivals", headers={"Authorization": f"Bearer {immigration}"}, json={
        "checkpoint": "HKT", "arrived_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "traveller": {"name": name, "passport_no": passport, "nationality": "DEU", "birth_date": "1990-04-02"},
        "hotel_id": hotel, "consent": {"tracking": True}})
    assert r.status_code in (200, 201), r.text
    return str(r.json()["traveller_id"])


def test_hotel_sees_only_its_guests(browser: Any, live_server: LiveServer) -> None:
    server = live_server
    immigration = server.token("immigration", "HKT immigration")
    ours = [arrival(server, immigration, "Anna Schmidt", "C01X00T47", "hotel_andaman"),
            arrival(server, immigration, "Jonas Weber", "C01X00T48", "hotel_andaman")]
    theirs = arrival(server, immigration, "Lena Fischer", "C01X00T49", "hotel_kata")
    server.user("andaman.desk", "hotel", agency="hotel_andaman")
    page = sign_in(browser, server, "andaman.desk")
    page.wait_for_selector("#guests tbody tr[data-traveller]")
    shown = page.eval_on_selector_all("#guests tbody tr[data-traveller]", "rows => rows.map(r => r.dataset.traveller)")
    assert sorted(shown) == sorted(ours) and theirs not in shown
    for panel in ("#panel-alerts", "#panel-incidents", "#panel-cap", "#panel-attention"):
        assert page.locator(panel).is_hidden()
    # names only with a purpose (audited)
    page.fill("#purpose", "guest check-in at the front desk")
    page.click("#names-form button")
    page.wait_for_selector('#guests td:has-text("Anna Schmidt")')
    assert "Lena Fischer" not in page.inner_text("#guests")
    shot(page, "ioc-hotel")
    assert not page.page_errors, page.page_errors
    page.context.close()


def photo_with_gps() -> bytes:
    image = Image.new("RGB", (800, 600), (200, 180, 60))
    for x in range(0, 800, 40):
        for y in range(0, 600, 40):
            image.putpixel((x, y), (20, 20, 20))
    exif = Image.Exif()
    exif[0x013B] = "Tourist Name"
    exif[GPS_IFD] = {1: "N", 2: (7.0, 53.0, 46.0), 3: "E", 4: (98.0, 17.0, 46.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_tourist_app_warnings_wifi_help_and_reports(browser: Any, live_server: LiveServer, tmp_path: Any) -> None:
    server = live_server
    r = server.http.post("/api/v1/cap/warnings", headers=server.admin, json={
        "event": "High surf", "headline_en": "Strong rip currents at Patong and Karon",
        "headline_th": "คลื่นลมแรงและกระแสน้ำย้อนกลับที่ป่าตองและกะรน", "description_en": "Red flags are up.",
        "description_th": "ชักธงแดงห้ามลงเล่นน้ำ", "category": "Safety", "severity": "severe",
        "places": ["subdistrict:830202"]})
    assert r.status_code == 201, r.text
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                              has_touch=True, locale="en-GB", geolocation=PATONG, permissions=["geolocation"])
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{server.url}/app/")
    page.select_option("#lang", "en")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector('#warnings li:has-text("Strong rip currents")')
    help_text = page.inner_text("#help")
    assert "Hospital" in help_text and "Police station" in help_text and "Kathu Police Station" in help_text
    nearest = server.http.get("/api/v1/wifi/public/hotspots",
                              params={"lat": PATONG["latitude"], "lon": PATONG["longitude"], "limit": 1}).json()
    first = page.wait_for_selector("#wifi li.wifi-spot").inner_text()
    assert nearest["features"][0]["properties"]["name"] in first, first      # the nearest hotspot to Patong
    assert first.split("\n")[1].endswith(("m away", "km away"))

    # a report with a photo and the browser's location
    photo = tmp_path / "scam.jpg"
    photo.write_bytes(photo_with_gps())
    page.select_option("#r-category", "scam")
    page.fill("#r-text", "x")
    page.click("#report-form button[type=submit]")
    page.wait_for_selector("#err-text:not([hidden])")                         # the server's message, at the field
    page.fill("#r-text", "Jet-ski operator demands 30000 baht for an old scratch")
    page.set_input_files("#r-photo", str(photo))
    page.click("#report-form button[type=submit]")
    code = page.wait_for_selector("#report-result .code").inner_text()
    assert code.startswith("R-")
    page.select_option("#lang", "zh")
    assert page.inner_text("#h-report") == "报告问题"
    page.select_option("#lang", "en")
    shot(page, "app", readme=True)

    # offline: the report waits in the outbox, and goes when the connection is back
    ctx.set_offline(True)
    page.fill("#r-text", "Lost my passport near Bangla Road")
    page.select_option("#r-category", "lost")
    page.click("#report-form button[type=submit]")
    page.wait_for_selector("#report-result .queued")
    ctx.set_offline(False)
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    queued_code = page.wait_for_selector("#report-result .sent .code", timeout=30_000).inner_text()
    assert queued_code.startswith("R-") and queued_code != code
    assert not errors, errors

    # the report reaches the IOC as an alert, with its photo
    server.user("op.malee", "operator")
    ioc = sign_in(browser, server, "op.malee")
    item = ioc.wait_for_selector(f'#alerts li[data-kind="report.citizen"]:has-text("{code}")')
    item.query_selector("button.view-report").click()
    ioc.wait_for_selector('#report-view .report-text:has-text("Jet-ski operator")')
    ioc.wait_for_function("() => { const i = document.querySelector('#report-view img'); "
                          "return i && i.complete && i.naturalWidth === 800 }")
    shot(ioc, "ioc-report")
    follow = page.fill("#f-code", code)
    del follow
    page.click("#follow-form button")
    page.wait_for_selector('#follow-result:has-text("With the operations center")')
    ioc.context.close()
    ctx.close()
