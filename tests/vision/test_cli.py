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
