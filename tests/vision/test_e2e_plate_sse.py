"""End to end: a video clip with a hotlisted Thai plate, played through a camera's stream source on a real
server, becomes a ``vision.hotlist_hit`` alert on the SSE stream (``/api/v1/stream``)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from citydata.app import Platform
from tests.conftest import SHARED_DATA, bearer, free_port, make_settings, token_for
from tests.incidents.test_e2e_ioc import _read_sse


def need_capable_reader() -> None:
    """This test is about the pipeline (camera → consensus → hotlist → rule → SSE), not the reader's accuracy
    (tests/vision/plates measure that): it needs a reader that reads the clean test plate."""
    from citydata.vision.plates.synth import plate_image
    from citydata.vision.workers import _plate_reader

    got = _plate_reader().read_crop(plate_image("กข1234", "ภูเก็ต", width=170, seed=4))
    if got is None or got.text != "กข1234":
        pytest.fail(f"the installed plate model misreads the clean test plate ({got}); see tests/vision/plates")


def _clip(path: Path) -> None:
    from citydata.sim.cameras import car_frame, road_scene
    from citydata.vision.plates.synth import plate_image

    plate = plate_image("กข1234", "ภูเก็ต", width=170, seed=4)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    background = road_scene()
    for _ in range(5):
        out.write(background)
    for y in range(320, 40, -30):
        out.write(np.ascontiguousarray(car_frame(background, y, plate)))
    for _ in range(5):
        out.write(background)
    out.release()


async def _play_and_expect_alert(tmp_path: Path, clip: Path, plate: str, province: str | None) -> None:
    port = free_port()
    settings = make_settings(tmp_path, http_port=port, mqtt_url="none://", vision_workers=0, vision_fps=10.0,
                             vision_min_plate_frames=2, vision_plate_track_ttl_s=0.5)
    async with Platform(settings, serve_http=True) as p:
        assert p.vision is not None
        await p.vision.analyser.warm()
        if not p.vision.analyser.ready["plates"]:
            pytest.fail(f"plate models unavailable: {p.vision.analyser.reasons['plates']}")
        if province is not None:
            need_capable_reader()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            admin, police = bearer(await token_for(p, "admin")), bearer(await token_for(p, "police"))
            r = await http.post("/api/v1/vision/hotlist", headers=police, json={
                "plate": plate, "province": province, "list": "stolen", "reason": "reported stolen"})
            assert r.status_code == 201, r.text
            events: list[dict[str, Any]] = []
            ready = asyncio.Event()
            reader = asyncio.create_task(_read_sse(http, "/api/v1/stream", police, events, ready))
            await asyncio.wait_for(ready.wait(), 10)
            r = await http.post("/api/v1/cameras", headers=admin, json={
                "id": "cam:chalong-01", "name": "Chalong circle", "lon": 98.3397, "lat": 7.8468,
                "stream_url": str(clip), "analytics": ["plates"]})
            assert r.status_code == 201, r.text

            def hit() -> dict[str, Any] | None:
                return next((e["data"]["alert"] for e in events if e.get("event") == "alert"
                             and e["data"]["alert"]["kind"] == "vision.hotlist_hit"), None)

            async with asyncio.timeout(60):
                while hit() is None:
                    await asyncio.sleep(0.1)
            got = hit()
            assert got is not None and got["subject"] == plate.replace(" ", "")
            assert got["data"]["camera_id"] == "cam:chalong-01" and got["data"]["list"] == "stolen"
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def test_hotlisted_thai_plate_in_a_clip_reaches_sse(tmp_path: Path) -> None:
    clip = tmp_path / "junction.avi"
    _clip(clip)
    await _play_and_expect_alert(tmp_path, clip, "กข 1234", "ภูเก็ต")


async def test_hotlisted_latin_plate_in_a_real_photo_clip_reaches_sse(tmp_path: Path) -> None:
    """The same path on a real car photo (../shared/data/plates, a Latin plate as on Malaysian cars): the car
    creeps forward over several frames."""
    photo = SHARED_DATA / "plates" / "images" / "eu1.jpg"
    if not photo.is_file():
        pytest.fail(f"real plate photos not found at {photo.parent}")
    img = cv2.imread(str(photo))
    clip = tmp_path / "real.avi"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (800, 600))
    for i in range(6):
        frame = cv2.resize(img, (800, 600))
        shift = np.float32([[1, 0, 0], [0, 1, -6 * i]])
        out.write(cv2.warpAffine(frame, shift, (800, 600)))
    out.release()
    await _play_and_expect_alert(tmp_path, clip, "M5XSX", None)
