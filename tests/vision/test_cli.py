"""``citydata vision enroll`` and ``match-face`` on the shared face photos, against a real database; errors are
one line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from citydata.cli.vision import app
from tests.vision.conftest import face_path, need_faces


def test_enroll_then_match_face(tmp_path: Path) -> None:
    need_faces()
    env = {"CITYDATA_DATA_DIR": str(tmp_path / "data"), "CITYDATA_MQTT_URL": "none://"}
    r = CliRunner().invoke(app, ["enroll", "--watchlist", "wanted", "--subject", "case-7", "--reason",
                                 "warrant 7", str(face_path("joe_biden_01.jpg"))], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[-1])["photos"] == 1
    r = CliRunner().invoke(app, ["match-face", str(face_path("group_obama_biden_01.jpg"))], env=env)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 2 and all(len(row["bbox"]) == 4 for row in rows)
    hits = [row for row in rows if row["subject"]]
    assert [h["subject"] for h in hits] == ["case-7"] and hits[0]["score"] <= 0.07
    other = next(row for row in rows if not row["subject"])
    assert other["score"] > 0.07
    r = CliRunner().invoke(app, ["match-face", str(tmp_path / "missing.jpg")], env=env)
    assert r.exit_code != 0 and "cannot read" in r.output
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    r = CliRunner().invoke(app, ["enroll", "-w", "wanted", "-s", "x", str(bad)], env=env)
    assert r.exit_code != 0 and "could not be decoded" in r.output


def test_scan_a_video_through_a_camera(tmp_path: Path) -> None:
    need_faces()
    import asyncio

    import cv2
    import numpy as np

    from citydata.app import Platform
    from citydata.vision.cameras import CameraIn
    from tests.conftest import make_settings

    async def seed() -> None:
        async with Platform(make_settings(tmp_path, mqtt_url="none://", vision_workers=0)) as p:
            assert p.vision is not None
            await p.vision.put_camera(CameraIn(id="cam:scan", name="scan", lon=98.3, lat=7.9, analytics=["faces"]))

    asyncio.run(seed())
    env = {"CITYDATA_DATA_DIR": str(tmp_path / "data"), "CITYDATA_MQTT_URL": "none://"}
    r = CliRunner().invoke(app, ["enroll", "-w", "wanted", "-s", "case-9", "--reason", "warrant 9",
                                 str(face_path("barack_obama_01.jpg"))], env=env)
    assert r.exit_code == 0, r.output
    clip = tmp_path / "clip.avi"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 2.0, (640, 480))
    for name in ("lin_manuel_miranda_01.jpg", "barack_obama_02.jpg"):
        person = cv2.imread(str(face_path(name)))
        frame = np.full((480, 640, 3), 200, np.uint8)
        s = 400 / max(person.shape[:2])
        person = cv2.resize(person, (int(person.shape[1] * s), int(person.shape[0] * s)))
        frame[:person.shape[0], :person.shape[1]] = person
        out.write(frame)
    out.release()
    r = CliRunner().invoke(app, ["scan", str(clip), "--camera", "cam:scan", "--fps", "2"], env=env)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    hits = [row for row in rows if row.get("kind") == "vision.watchlist_hit"]
    assert len(hits) == 1 and hits[0]["data"]["subject_id"] == "case-9"
    assert rows[-1]["summary"]["faces"] == 2 and rows[-1]["summary"]["faces_discarded"] == 1
    r = CliRunner().invoke(app, ["scan", str(clip), "--camera", "cam:nope"], env=env)
    assert r.exit_code != 0 and "no camera" in r.output


def test_read_plate(tmp_path: Path) -> None:
    """A rendered Thai plate in a road scene: read when the plate models are installed, else one clear error."""
    from citydata.sim.cameras import car_frame, road_scene
    from citydata.vision.plates.synth import jpeg_bytes, plate_image
    from citydata.vision.workers import AnalyticUnavailable, _plate_reader

    image = tmp_path / "car.jpg"
    image.write_bytes(jpeg_bytes(car_frame(road_scene(), 200, plate_image("กข1234", "ภูเก็ต", width=170))))
    r = CliRunner().invoke(app, ["read-plate", str(image)])
    try:
        _plate_reader()
    except AnalyticUnavailable as err:
        assert r.exit_code != 0 and "unavailable" in r.output and str(err)[:20] in r.output
        return
    from tests.vision.test_e2e_plate_sse import need_capable_reader

    need_capable_reader()
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert any(row["text"] == "กข1234" and row["province"] == "ภูเก็ต" for row in rows), rows


def test_read_plate_with_regions(tmp_path: Path) -> None:
    """``--regions eu`` settles a look-alike by the Slovak format; an unknown region is a one-line error."""
    from tests.conftest import SHARED_DATA

    photo = SHARED_DATA / "plates" / "images" / "test_090.jpg"  # RK-550AO; its last letter reads as 0 unconstrained
    env = {"CITYDATA_DATA_DIR": str(tmp_path / "data")}
    r = CliRunner().invoke(app, ["read-plate", str(photo), "--regions", "eu"], env=env)
    assert r.exit_code == 0, r.output
    texts = [json.loads(line)["text"] for line in r.stdout.splitlines() if line.startswith("{")]
    assert "RK550AO" in texts, texts
    r = CliRunner().invoke(app, ["read-plate", str(photo), "--regions", "th"], env=env)
    assert r.exit_code == 0, r.output
    texts = [json.loads(line)["text"] for line in r.stdout.splitlines() if line.startswith("{")]
    assert "RK550A0" in texts, texts  # Thai only: no Latin format, the greedy reading
    r = CliRunner().invoke(app, ["read-plate", str(photo), "--regions", "th,atlantis"], env=env)
    assert r.exit_code != 0 and "unknown plate region 'atlantis'" in r.output
    assert len(r.output.strip().splitlines()) == 1
