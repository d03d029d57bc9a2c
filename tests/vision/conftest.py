"""Fixtures for the vision tests: a started platform (SQLite, no MQTT, models in-process), the face images of
``../shared/data/faces`` and their embeddings (computed once per session)."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import SHARED_DATA, bearer, make_settings, token_for

FACES = SHARED_DATA / "faces"
HERE = Path(__file__).resolve().parent


def face_path(name: str) -> Path:
    return FACES / "images" / name


def need_faces() -> None:
    if not (FACES / "pairs.csv").is_file():
        pytest.fail(f"face test data not found at {FACES}")


@pytest.fixture(scope="session")
def face_engine() -> Any:
    from citydata.vision.faces import FaceEngine

    return FaceEngine()


@pytest.fixture(scope="session")
def face_embeddings(face_engine: Any) -> dict[str, Any]:
    """file → embedding, for the single-face images of the manifest."""
    import cv2

    need_faces()
    out: dict[str, Any] = {}
    with open(FACES / "manifest.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["n_faces"] != "1":
                continue
            faces = face_engine.faces(cv2.imread(str(FACES / row["file"])))
            if faces:   # the largest face (the astronaut photo has a small second detection: her badge)
                out[row["file"]] = max(faces, key=lambda f: f.bbox[2] * f.bbox[3]).embedding
    return out


@pytest.fixture
async def vplatform(tmp_path: Path) -> AsyncIterator[Any]:
    from citydata.app import Platform

    p = Platform(make_settings(tmp_path, mqtt_url="none://", vision_workers=0, vision_fps=20.0,
                               vision_plate_track_ttl_s=0.5))
    async with p:
        yield p


@pytest.fixture
async def vclient(vplatform: Any) -> AsyncIterator[httpx.AsyncClient]:
    from citydata.api.app import serving_app

    transport = httpx.ASGITransport(app=serving_app(vplatform.app))
    async with httpx.AsyncClient(transport=transport, base_url="http://citydata.test", timeout=60) as c:
        yield c


async def headers(platform: Any, role: str) -> dict[str, str]:
    return bearer(await token_for(platform, role))


def camera_body(camera_id: str = "cam:patong-01", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": camera_id, "name": "Patong beach road", "lon": 98.2965, "lat": 7.8961,
                            "heading_deg": 270.0, "zone_id": "subdistrict:830302", "analytics": ["faces"]}
    body.update(extra)
    return body


def all_bytes_under(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in folder.rglob("*") if p.is_file()]


def embedding_traces(vec: Any) -> list[bytes]:
    """Byte patterns an embedding would leave if it were stored in any plain encoding."""
    v = np.asarray(vec, dtype=np.float32)
    return [v.tobytes()[:64], v.astype(np.float64).tobytes()[:64], f"{float(v[0])!r}".encode()[:10],
            f"{float(v[0]):.6f}".encode()]
