"""The CCTV feed: simulated cameras post frames to ``POST /api/v1/cameras/{id}/frames`` like an edge encoder.

* ``cam:patong-beach-01`` (faces): passers-by on Patong beach road, photos from ``data/vision`` pasted into a
  street scene. Now and then the demo watchlist subject (``case-demo-001``, enrolled at setup from one photo)
  walks by, photographed differently, so the watchlist rule raises an alert.
* ``cam:chalong-junction-01`` (plates + traffic): cars with rendered Thai plates drive north through the
  junction, several frames each (the plate consensus works per vehicle). One in four carries the demo hotlist
  plate ``กข 1234 ภูเก็ต``; the others are random and are kept only as keyed hashes. The signal cycles green /
  red through ``PUT /cameras/{id}/signals/sig-1``, and cars sometimes cross the stop line on red.

Frames are built at run time with OpenCV (a few KB of code, no video files in the repository). The platform
analyses each frame as it arrives; when its queue is full it answers 429 and the frame is dropped (counted).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)

WATCHLIST, SUBJECT = "demo-wanted", "case-demo-001"
ENROL_PHOTO = "barack_obama_01.jpg"
SUBJECT_PHOTOS = ("barack_obama_02.jpg", "barack_obama_04.jpg")
PASSERS_BY = ("lin_manuel_miranda_01.jpg", "alex_lacamoire_02.jpg", "eileen_collins_01.jpg")
HOTLIST_PLATE, HOTLIST_PROVINCE = "กข1234", "ภูเก็ต"
FACE_CAM: dict[str, Any] = {
            "id": "cam:patong-beach-01", "name": "Patong beach road (Thawewong Rd)", "lon": 98.2936, "lat": 7.8938,
            "heading_deg": 200.0, "zone_id": None, "analytics": ["faces"],
            "masks": [[[560, 0], [640, 0], [640, 120], [560, 120]]]}      # a hotel window in view: masked
STOP_Y = 250
JUNCTION_CAM: dict[str, Any] = {"id": "cam:chalong-junction-01", "name": "Chalong circle, northbound", "lon": 98.3397,
                "lat": 7.8468, "heading_deg": 180.0, "zone_id": None, "analytics": ["plates", "traffic"],
                "lines": [{"id": "stop-north", "kind": "stop_line", "points": [[0, STOP_Y], [640, STOP_Y]],
                           "signal": "sig-1", "forward": [0, -1]}]}


def _photo(name: str) -> np.ndarray:
    data = resources.files("citydata.sim").joinpath("data", "vision", name).read_bytes()
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, name
    return img


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 88])
    assert ok
    return buf.tobytes()


def street_scene(rng: random.Random, person: np.ndarray) -> np.ndarray:
    """A 640×480 street with one person's photo pasted at a random place."""
    scene = np.zeros((480, 640, 3), np.uint8)
    scene[:] = (190, 200, 205)
    scene[300:] = (120, 120, 118)                                   # pavement
    for x in range(0, 640, 80):                                     # shop fronts
        cv2.rectangle(scene, (x + 5, 40), (x + 70, 290), (rng.randint(90, 200), rng.randint(90, 200), 160), -1)
    h, w = person.shape[:2]
    s = rng.uniform(0.9, 1.1) * 300 / max(h, w)
    p = cv2.resize(person, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
    ph, pw = p.shape[:2]
    x, y = rng.randint(0, 640 - pw), rng.randint(60, 480 - ph)
    scene[y:y + ph, x:x + pw] = p
    return scene


def road_scene() -> np.ndarray:
    scene = np.zeros((480, 640, 3), np.uint8)
    scene[:] = (70, 110, 60)
    cv2.rectangle(scene, (180, 0), (460, 480), (95, 95, 95), -1)
    cv2.line(scene, (180, STOP_Y), (460, STOP_Y), (230, 230, 230), 4)
    return scene


def car_frame(background: np.ndarray, y: int, plate: np.ndarray | None) -> np.ndarray:
    frame = background.copy()
    cv2.rectangle(frame, (240, y), (400, y + 150), (40, 40, 170), -1)      # the car, seen from behind
    cv2.rectangle(frame, (255, y + 10), (385, y + 55), (60, 60, 60), -1)   # rear window
    if plate is not None:
        ph, pw = plate.shape[:2]
        x0, y0 = 320 - pw // 2, y + 150 - ph - 8
        if y0 >= 0 and y0 + ph <= frame.shape[0]:
            frame[y0:y0 + ph, x0:x0 + pw] = plate
    return frame


@dataclass
class CameraFeedStats:
    frames: int = 0
    refused: int = 0
    errors: int = 0
    subject_passes: int = 0
    hotlist_cars: int = 0
    cars: int = 0
    red_runs: int = 0


class CameraFeed:
    def __init__(self, seed: int = 7, *, period_s: float = 2.0) -> None:
        self.rng = random.Random(seed)
        self.period_s = period_s
        self.stats = CameraFeedStats()
        self.plates_ok = True

    async def setup(self, http: Any) -> None:
        for cam in (FACE_CAM, JUNCTION_CAM):
            r = await http.put(f"/api/v1/cameras/{cam['id']}", json=cam)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"camera {cam['id']}: HTTP {r.status_code} {r.text[:200]}")
        photo = base64.b64encode(_jpeg(_photo(ENROL_PHOTO))).decode()
        r = await http.post(f"/api/v1/vision/watchlists/{WATCHLIST}/subjects", json={
            "subject_id": SUBJECT, "reason": "demo: simulated arrest warrant", "images": [photo],
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))})
        if r.status_code != 201:
            log.warning("sim cameras: enrolment refused (HTTP %s %s); no watchlist hits in this run",
                        r.status_code, r.text[:200])
        r = await http.post("/api/v1/vision/hotlist", json={"plate": HOTLIST_PLATE, "province": HOTLIST_PROVINCE,
                                                            "list": "stolen", "reason": "demo: reported stolen"})
        if r.status_code != 201:
            self.plates_ok = False
            log.warning("sim cameras: hotlist refused; no hotlist hits in this run (HTTP %s %s)", r.status_code,
                        r.text[:200])

    async def _post(self, http: Any, camera: str, frame: np.ndarray) -> None:
        try:
            r = await http.post(f"/api/v1/cameras/{camera}/frames", content=_jpeg(frame),
                                headers={"Content-Type": "image/jpeg"})
        except Exception:
            self.stats.errors += 1
            return
        if r.status_code == 429:
            self.stats.refused += 1
        elif r.status_code != 200:
            self.stats.errors += 1
        else:
            self.stats.frames += 1

    async def _faces(self, http: Any, stop: asyncio.Event, deadline: float | None) -> None:
        n = 0
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            subject = n % 4 == 2
            name = self.rng.choice(SUBJECT_PHOTOS if subject else PASSERS_BY)
            self.stats.subject_passes += subject
            await self._post(http, str(FACE_CAM["id"]), street_scene(self.rng, _photo(name)))
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period_s)

    async def _junction(self, http: Any, stop: asyncio.Event, deadline: float | None) -> None:
        from citydata.vision.plates.synth import CONSONANTS, plate_image

        background = road_scene()
        cam = str(JUNCTION_CAM["id"])
        for _ in range(20):                         # the background model learns the empty road
            await self._post(http, cam, background)
        n = 0
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            red = n % 3 == 1
            await http.put(f"/api/v1/cameras/{cam}/signals/sig-1", json={"state": "red" if red else "green"})
            hot = n % 4 == 1
            reg = HOTLIST_PLATE if hot else (self.rng.choice(CONSONANTS) + self.rng.choice(CONSONANTS)
                                            + str(self.rng.randint(1, 9999)))
            plate = plate_image(reg, HOTLIST_PROVINCE if hot else "ภูเก็ต", width=150, seed=n)
            self.stats.cars += 1
            self.stats.hotlist_cars += hot
            self.stats.red_runs += red
            for y in range(330, 10, -45):           # drives north across the stop line
                if stop.is_set():
                    return
                await self._post(http, cam, car_frame(background, y, plate))
                await asyncio.sleep(self.period_s / 4)
            for _ in range(3):
                await self._post(http, cam, background)
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period_s)

    async def run(self, http: Any, stop: asyncio.Event, deadline: float | None) -> None:
        try:
            await self.setup(http)
        except Exception as err:
            log.warning("sim cameras: setup failed (%s); the camera feed is off", err)
            return
        tasks = [asyncio.create_task(self._faces(http, stop, deadline)),
                 asyncio.create_task(self._junction(http, stop, deadline))]
        for t in tasks:
            with contextlib.suppress(Exception):
                await t
