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
from tests.conftest import bearer, free_port, make_settings, token_for
from tests.incidents.test_e2e_ioc import _read_sse


def need_capable_reader() -> None:
    """This test is about the pipeline (camera → consensus → hotlist → rule → SSE), not the reader's accuracy
    (tests/vision/plates measure that): it needs a reader that reads the clean test plate."""
    from citydata.vision.plates.synth import plate_image
    from citydata.vision.workers import _plate_reader

    got = _plate_reader().read_crop(plate_image("กข1234", "ภูเก็ต", width=170, seed=4))
    if got is None or got.text != "กข1234":
        pytest.skip(f"the installed plate model misreads the clean test plate ({got}); see tests/vision/plates")


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


async def test_hotlisted_plate_in_a_clip_reaches_sse(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, http_port=port, mqtt_url="none://", vision_workers=0, vision_fps=10.0,
                             vision_min_plate_frames=2, vision_plate_track_ttl_s=0.5)
    clip = tmp_path / "junction.avi"
    _clip(clip)
    async with Platform(settings, serve_http=True) as p:
        assert p.vision is not None
        await p.vision.analyser.warm()
        if not p.vision.analyser.ready["plates"]:
            pytest.skip(f"plate models unavailable: {p.vision.analyser.reasons['plates']}")
        need_capable_reader()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            admin, police = bearer(await token_for(p, "admin")), bearer(await token_for(p, "police"))
            operator = bearer(await token_for(p, "operator"))
            r = await http.post("/api/v1/vision/hotlist", headers=police, json={
                "plate": "กข 1234", "province": "ภูเก็ต", "list": "stolen", "reason": "reported stolen"})
            assert r.status_code == 201, r.text
            events: list[dict[str, Any]] = []
            ready = asyncio.Event()
            reader = asyncio.create_task(_read_sse(http, "/api/v1/stream", operator, events, ready))
            await asyncio.wait_for(ready.wait(), 10)
            r = await http.post("/api/v1/cameras", headers=admin, json={
                "id": "cam:chalong-01", "name": "Chalong circle", "lon": 98.3397, "lat": 7.8468,
                "stream_url": str(clip), "analytics": ["plates"]})
            assert r.status_code == 201, r.text

            def hit() -> dict[str, Any] | None:
                return next((e for e in events if isinstance(e.get("data"), dict)
                             and e["data"].get("kind") == "vision.hotlist_hit"), None)

            async with asyncio.timeout(60):
                while hit() is None:
                    await asyncio.sleep(0.1)
            got = hit()
            assert got is not None and got["data"]["subject"] == "กข1234"
            assert got["data"]["data"]["camera_id"] == "cam:chalong-01"
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
