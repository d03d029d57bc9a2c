"""Traffic discipline: stop-line crossings on red and wrong-way travel from tracked positions (unit and through
a camera), vendor edge-analytics events through the one adapter, and the alerts the rule pack raises."""

from __future__ import annotations

import asyncio
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from citydata.errors import ValidationFailed
from citydata.vision.tracker import CentroidTracker
from citydata.vision.traffic import SignalStates, check_lines, evaluate
from citydata.vision.vendor import parse_vendor_event
from tests.vision.conftest import camera_body, headers

STOP = {"id": "stop-north", "kind": "stop_line", "points": [[0, 200], [640, 200]], "signal": "sig-1",
        "forward": [0, -1]}
LANE = {"id": "lane-north", "kind": "direction", "zone": [[0, 0], [640, 0], [640, 480], [0, 480]],
        "direction": [0, -1], "min_travel_px": 60}


def _drive(lines: list[dict[str, Any]], signals: SignalStates, ys: list[int]) -> list[Any]:
    tracker = CentroidTracker("t")
    out = []
    for i, y in enumerate(ys):
        tracks, _ = tracker.update([(300, y, 40, 30)], float(i))
        for tr in tracks:
            out.extend(evaluate("cam", lines, tr, signals))
    return out


def test_red_light_only_on_red_and_only_forward() -> None:
    lines = check_lines([STOP])
    signals = SignalStates()
    north = [400, 330, 260, 190, 120, 60]
    assert _drive(lines, signals, north) == []                 # unknown signal ("off"): nothing
    signals.set("cam", "sig-1", "green")
    assert _drive(lines, signals, north) == []
    signals.set("cam", "sig-1", "red")
    got = _drive(lines, signals, north)
    assert [(v.kind, v.line) for v in got] == [("red_light", "stop-north")]    # once per track
    assert _drive(lines, signals, list(reversed(north))) == []  # crossing backwards is not running the light
    with pytest.raises(ValidationFailed):
        signals.set("cam", "sig-1", "purple")


def test_wrong_way_needs_real_travel_against_the_lane() -> None:
    lines = check_lines([LANE])
    got = _drive(lines, SignalStates(), [100, 130, 160, 190])
    assert [(v.kind, v.line) for v in got] == [("wrong_way", "lane-north")]
    assert _drive(lines, SignalStates(), [100, 110, 120]) == []            # 20 px: jitter, not travel
    assert _drive(lines, SignalStates(), [300, 250, 200, 150]) == []       # the right way


def test_line_definitions_are_checked() -> None:
    with pytest.raises(ValidationFailed):
        check_lines([{"id": "x", "kind": "stop_line", "points": [[0, 0]]}])
    with pytest.raises(ValidationFailed):
        check_lines([{"id": "x", "kind": "teleport"}])


def test_vendor_shapes() -> None:
    ev = parse_vendor_event("onvif", {"Topic": "tns1:RuleEngine/LineDetector/Crossed",
                                      "UtcTime": "2026-11-21T10:00:00Z",
                                      "Source": {"VideoSource": "cam:j1", "Rule": "stop-north"},
                                      "Data": {"ObjectId": "42", "Signal": "red", "Likelihood": 0.9}})
    assert (ev.camera_id, ev.violation, ev.line, ev.track_id, ev.confidence) == ("cam:j1", "red_light",
                                                                                "stop-north", "42", 0.9)
    ev = parse_vendor_event("acme", {"camera_id": "cam:j1", "type": "wrong_way", "line": "lane-2"})
    assert ev.violation == "wrong_way" and ev.time is None
    for bad in ({"camera_id": "cam:j1", "type": "speeding"}, {"type": "red_light"},
                {"camera_id": "cam:j1", "type": "plate"}, {"camera_id": "c", "type": "red_light", "time": "noon"}):
        with pytest.raises(ValidationFailed):
            parse_vendor_event("acme", bad)
    with pytest.raises(ValidationFailed):
        parse_vendor_event("onvif", {"Topic": "tns1:VideoSource/MotionAlarm", "Source": {"VideoSource": "c"}})


async def _alerts(client: httpx.AsyncClient, auth: dict[str, str], kind: str) -> list[dict[str, Any]]:
    for _ in range(100):
        items = [a for a in (await client.get("/api/v1/alerts", headers=auth)).json()["items"] if a["kind"] == kind]
        if items:
            return items
        await asyncio.sleep(0.05)
    return []


async def test_red_light_through_a_camera_and_vendor_wrong_way_raise_alerts(vplatform: Any,
                                                                            vclient: httpx.AsyncClient) -> None:
    admin, device = await headers(vplatform, "admin"), await headers(vplatform, "device")
    await vclient.post("/api/v1/cameras", headers=admin, json=camera_body(
        "cam:junction-01", analytics=["traffic"], lines=[STOP]))
    r = await vclient.put("/api/v1/cameras/cam:junction-01/signals/sig-1", json={"state": "red"}, headers=device)
    assert r.status_code == 200
    road = np.full((480, 640, 3), 90, np.uint8)
    for _i in range(40):                     # a still road (the background model learns it)
        _ok, jpg = cv2.imencode(".jpg", road)
        await vclient.post("/api/v1/cameras/cam:junction-01/frames", content=jpg.tobytes(), headers=device)
    for y in range(420, 20, -40):           # a car drives north across the stop line at y=200
        frame = road.copy()
        cv2.rectangle(frame, (280, y - 30), (360, y + 30), (30, 30, 200), -1)
        _ok, jpg = cv2.imencode(".jpg", frame)
        await vclient.post("/api/v1/cameras/cam:junction-01/frames", content=jpg.tobytes(), headers=device)
    got = await _alerts(vclient, admin, "vision.red_light")
    assert len(got) == 1 and got[0]["data"]["line"] == "stop-north" and got[0]["data"]["source"] == "citydata"

    r = await vclient.post("/api/v1/vision/vendor/acme", headers=device, json={
        "camera_id": "cam:junction-01", "type": "wrong_way", "line": "lane-2", "track_id": "7"})
    assert r.status_code == 200 and r.json()["events"] == ["vision.wrong_way"]
    got = await _alerts(vclient, admin, "vision.wrong_way")
    assert got and got[0]["data"]["source"] == "vendor:acme"
    r = await vclient.post("/api/v1/vision/vendor/acme", headers=device, json={"camera_id": "cam:x", "type": "x"})
    assert r.status_code == 400 and r.json()["code"] == "unsupported_vendor_event"
