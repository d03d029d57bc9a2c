"""Plates: the hotlist (one look-alike character tolerated, audited changes), the keyed hash that is all that is
kept of other plates, and a vendor ANPR event on the hotlist raising the alert."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import httpx
from sqlalchemy import select

from citydata.vision.crypto import PlateHasher
from citydata.vision.schema import vision_plate_hits, vision_plate_sightings
from tests.vision.conftest import all_bytes_under, camera_body, headers


def test_plate_hash_is_keyed() -> None:
    a, b = PlateHasher(b"k" * 40), PlateHasher(b"j" * 40)
    assert a("กข1234") == a("กข1234") != b("กข1234")
    assert a("กข1234") != hashlib.sha256("กข1234".encode()).hexdigest()
    key = hmac.new(b"k" * 40, b"citydata/vision/plate-hash", hashlib.sha256).digest()
    assert a("กข1234") == hmac.new(key, "กข1234".encode(), hashlib.sha256).hexdigest()


async def test_hotlist_hits_and_hashed_sightings(vplatform: Any, vclient: httpx.AsyncClient) -> None:
    admin, police = await headers(vplatform, "admin"), await headers(vplatform, "police")
    device, operator = await headers(vplatform, "device"), await headers(vplatform, "operator")
    await vclient.post("/api/v1/cameras", json=camera_body("cam:j1", analytics=["plates"]), headers=admin)
    r = await vclient.post("/api/v1/vision/hotlist", headers=police, json={
        "plate": "ฌข 1234", "province": "ภูเก็ต", "list": "stolen", "reason": "reported stolen 21/11"})
    assert r.status_code == 201 and r.json()["plate"] == "ฌข1234"
    assert (await vclient.post("/api/v1/vision/hotlist", headers=operator, json={
        "plate": "กก1", "reason": "nope"})).status_code == 403

    async def anpr(plate: str, province: str | None = "ภูเก็ต") -> dict[str, Any]:
        r = await vclient.post("/api/v1/vision/vendor/acme", headers=device, json={
            "camera_id": "cam:j1", "type": "plate", "plate": plate, "province": province, "confidence": 0.9})
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert (await anpr("ณข 1234"))["events"] == ["vision.hotlist_hit"]       # one look-alike: still a hit
    assert (await anpr("ณฆ 1234"))["events"] == []                           # two differences: not a hit
    assert (await anpr("ฌข 1234", "กระบี่"))["events"] == []                 # another province's plate
    assert (await anpr("ขก 9876"))["events"] == []
    hits = await vplatform.store.fetch_all(select(vision_plate_hits))
    assert [(h["plate"], h["read_text"], h["list"]) for h in hits] == [("ฌข1234", "ณข1234", "stolen")]
    sightings = await vplatform.store.fetch_all(select(vision_plate_sightings))
    hasher = vplatform.vision.hasher
    assert sorted(s["plate_hash"] for s in sightings) == sorted(hasher(p) for p in ("ณฆ1234", "ฌข1234", "ขก9876"))
    r = await vclient.get("/api/v1/vision/traffic/counts", params={"since": "2000-01-01T00:00:00Z"}, headers=admin)
    assert r.json() == [{"camera_id": "cam:j1", "sightings": 3, "vehicles": 3}]
    for _ in range(100):
        alerts = [a for a in (await vclient.get("/api/v1/alerts", headers=admin)).json()["items"]
                  if a["kind"] == "vision.hotlist_hit"]
        if alerts:
            break
        await asyncio.sleep(0.05)
    assert alerts and alerts[0]["subject"] == "ฌข1234" and alerts[0]["data"]["list"] == "stolen"
    actions = [a["action"] for a in await vplatform.audit.query(limit=50)]
    assert "vision.hotlist_add" in actions
    # the plain text of non-hotlist plates is nowhere on disk
    await vplatform.store.stop()
    for path, data in all_bytes_under(vplatform.settings.data_dir):
        for plate in ("ขก9876", "ณฆ1234", "ขก 9876"):
            assert plate.encode() not in data, (plate, path)
            assert plate.encode("utf-16-le") not in data, (plate, path)
    await vplatform.store.start()
