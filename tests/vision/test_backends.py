"""The vision tables on SQLite and PostgreSQL: migrations, the registry, encrypted enrolment, hits and the
hotlist survive a restart; and the worker-process pool gives the same embeddings as the in-process engine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from citydata.auth import Principal, Role
from citydata.config import Settings
from citydata.errors import Unavailable
from citydata.vision.cameras import CameraIn
from citydata.vision.schema import vision_embeddings
from citydata.vision.workers import Analyser
from tests.vision.conftest import face_path, need_faces


async def test_vision_state_survives_a_restart(backend_settings: Settings, face_embeddings: dict[str, Any]) -> None:
    from citydata.app import Platform

    settings = backend_settings.model_copy(update={"mqtt_url": "none://", "vision_workers": 0})
    police = Principal("officer", Role.POLICE, "user")
    async with Platform(settings) as p:
        assert p.vision is not None
        await p.vision.put_camera(CameraIn(id="cam:1", name="one", lon=98.3, lat=7.9, analytics=["faces"],
                                           masks=[[[0, 0], [5, 0], [5, 5]]]))
        await p.vision.watchlists.enrol(police, "wanted", "case-1", [face_embeddings["images/joe_biden_01.jpg"]],
                                        reason="warrant", expires_at=p.clock.now() + timedelta(days=1))
        await p.vision.hotlist.add(police, "กข 1234", list_name="stolen", reason="stolen car")
        rows = await p.store.fetch_all(select(vision_embeddings))
        assert len(rows) == 1 and rows[0]["vector_ct"].startswith("k1:")
    async with Platform(settings) as p:
        assert p.vision is not None
        assert p.vision.cameras.get("cam:1")["masks"] == [[[0.0, 0.0], [5.0, 0.0], [5.0, 5.0]]]
        m = p.vision.watchlists.match(face_embeddings["images/joe_biden_02.jpg"])
        assert m is not None and m.subject_id == "case-1"
        assert p.vision.watchlists.match(face_embeddings["images/barack_obama_02.jpg"]) is None
        assert p.vision.hotlist.match("กข1234") is not None


async def test_worker_process_pool_matches_in_process(face_embeddings: dict[str, Any]) -> None:
    need_faces()
    import cv2

    analyser = Analyser(1)
    analyser.start()
    try:
        faces = await analyser.faces(cv2.imread(str(face_path("joe_biden_02.jpg"))))
    finally:
        analyser.stop()
    assert len(faces) == 1
    assert np.allclose(faces[0].embedding, face_embeddings["images/joe_biden_02.jpg"], atol=1e-4)


async def test_a_killed_worker_is_replaced(face_embeddings: dict[str, Any]) -> None:
    need_faces()
    import os
    import signal

    import cv2
    import pytest

    image = cv2.imread(str(face_path("joe_biden_01.jpg")))
    analyser = Analyser(1)
    analyser.start()
    try:
        assert len(await analyser.faces(image)) == 1
        pool: Any = analyser._pool
        for pid in list(pool._processes):
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(Unavailable, match="worker process died"):
            await analyser.faces(image)
        assert analyser.restarts == 1
        faces = await analyser.faces(image)          # a fresh worker
        assert np.allclose(faces[0].embedding, face_embeddings["images/joe_biden_01.jpg"], atol=1e-4)
    finally:
        analyser.stop()
