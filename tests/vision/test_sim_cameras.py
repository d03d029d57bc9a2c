"""The simulator's CCTV feed against a platform: cameras registered, the demo subject enrolled, and the
subject's pass in front of the beach camera raises the watchlist alert."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from citydata.sim.cameras import FACE_CAM, SUBJECT, CameraFeed, road_scene, street_scene
from tests.vision.conftest import headers


async def test_face_camera_feed_raises_the_watchlist_alert(vplatform: Any) -> None:
    admin = await headers(vplatform, "admin")
    transport = httpx.ASGITransport(app=vplatform.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", headers=admin, timeout=60) as http:
        feed = CameraFeed(seed=3, period_s=0.05)
        await feed.setup(http)
        assert {c["id"] for c in (await http.get("/api/v1/cameras")).json()} >= {FACE_CAM["id"]}
        stop = asyncio.Event()
        await feed._faces(http, stop, time.monotonic() + 2.5)
        assert feed.stats.frames >= 3 and feed.stats.errors == 0 and feed.stats.subject_passes >= 1
        for _ in range(100):
            alerts = (await http.get("/api/v1/alerts")).json()["items"]
            hits = [a for a in alerts if a["kind"] == "vision.watchlist_hit"]
            if hits:
                break
            await asyncio.sleep(0.05)
        assert hits and hits[0]["data"]["subject_id"] == SUBJECT
        assert {h["subject_id"] for h in (await http.get("/api/v1/vision/hits")).json()} == {SUBJECT}


def test_scenes_are_frames() -> None:
    import random

    import numpy as np

    img = street_scene(random.Random(1), np.full((100, 80, 3), 255, np.uint8))
    assert img.shape == (480, 640, 3)
    assert road_scene().shape == (480, 640, 3)
