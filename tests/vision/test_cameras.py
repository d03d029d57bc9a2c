"""The camera registry API, single frames (corrupt → 400 problem+json), privacy masks, the bounded queue,
motion gating, and streams that drop (offline event, reconnect with backoff) or loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from citydata.vision.frames import MotionGate, StageQueue, apply_masks, decode_image
from tests.conftest import free_port
from tests.vision.conftest import camera_body, face_path, headers, need_faces


async def test_registry_crud_and_permissions(vplatform: Any, vclient: httpx.AsyncClient) -> None:
    admin, analyst = await headers(vplatform, "admin"), await headers(vplatform, "analyst")
    device = await headers(vplatform, "device")
    assert (await vclient.post("/api/v1/cameras", json=camera_body(), headers=analyst)).status_code == 403
    r = await vclient.post("/api/v1/cameras", json=camera_body(masks=[[[0, 0], [10, 0], [10, 10]]]), headers=admin)
    assert r.status_code == 201 and r.json()["status"] == "unknown"
    assert (await vclient.post("/api/v1/cameras", json=camera_body(), headers=admin)).status_code == 409
    r = await vclient.post("/api/v1/cameras", json=camera_body("cam:bad", masks=[[[0, 0], [1, 1]]]), headers=admin)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    r = await vclient.put("/api/v1/cameras/cam:patong-01", headers=admin,
                          json=camera_body(name="Patong beach road north", analytics=["faces", "traffic"]))
    assert r.status_code == 200 and r.json()["name"] == "Patong beach road north"
    assert [c["id"] for c in (await vclient.get("/api/v1/cameras", headers=analyst)).json()] == ["cam:patong-01"]
    r = await vclient.put("/api/v1/cameras/cam:rtsp", headers=admin, json=camera_body(
        "cam:rtsp", analytics=[], enabled=False, stream_url="rtsp://viewer:s3cret@10.0.4.21:554/ch1"))
    assert r.status_code == 201 and r.json()["stream_url"] == "rtsp://viewer:***@10.0.4.21:554/ch1"
    assert "s3cret" not in (await vclient.get("/api/v1/cameras", headers=analyst)).text
    r = await vclient.post("/api/v1/cameras/cam:patong-01/frames", content=b"\x89PNG\r\n\x1a\nbroken", headers=device)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["code"] == "image_corrupt"
    assert (await vclient.post("/api/v1/cameras/cam:nope/frames", content=b"x", headers=device)).status_code == 404
    r = await vclient.get("/readyz")
    assert r.status_code == 200
    vision = r.json()["checks"]["vision"]
    assert vision["ok"] is True and vision["faces"] is True and isinstance(vision["plates"], bool)
    metrics = (await vclient.get("/metrics")).text
    assert 'citydata_vision_total{name="frames_refused"} 0.0' in metrics
    assert 'citydata_vision_total{name="frames"} 1.0' not in metrics      # the corrupt image was not a frame
    assert (await vclient.delete("/api/v1/cameras/cam:patong-01", headers=admin)).status_code == 204
    assert (await vclient.get("/api/v1/cameras/cam:patong-01", headers=admin)).status_code == 404


def test_masks_black_out_polygons() -> None:
    img = np.full((100, 200, 3), 255, np.uint8)
    apply_masks(img, [[[0, 0], [100, 0], [100, 100], [0, 100]]])
    assert img[:, :95].max() == 0 and img[:, 105:].min() == 255


async def test_privacy_mask_hides_a_face_from_analysis(vplatform: Any, vclient: httpx.AsyncClient) -> None:
    need_faces()
    admin = await headers(vplatform, "admin")
    data = face_path("barack_obama_02.jpg").read_bytes()
    h, w = decode_image(data).shape[:2]
    await vclient.post("/api/v1/cameras", json=camera_body("cam:open"), headers=admin)
    await vclient.post("/api/v1/cameras", headers=admin, json=camera_body(
        "cam:masked", masks=[[[0, 0], [w, 0], [w, h // 2 + 60], [0, h // 2 + 60]]]))
    assert (await vclient.post("/api/v1/cameras/cam:open/frames", content=data, headers=admin)).json()["faces"] == 1
    assert (await vclient.post("/api/v1/cameras/cam:masked/frames", content=data, headers=admin)).json()["faces"] == 0


async def test_stage_queue_drops_oldest_and_counts() -> None:
    q: StageQueue[int] = StageQueue("t", 2)
    assert q.put(1) and q.put(2)
    assert not q.put(3)
    assert q.dropped == 1 and [await q.get(), await q.get()] == [2, 3]


def test_motion_gate_skips_static_frames() -> None:
    gate = MotionGate(keepalive=100)
    still = np.zeros((240, 320, 3), np.uint8)
    assert gate.should_analyse(still)
    assert not any(gate.should_analyse(still.copy()) for _ in range(10))
    moved = still.copy()
    cv2.rectangle(moved, (100, 100), (180, 160), (255, 255, 255), -1)
    assert gate.should_analyse(moved)
    assert gate.skipped == 10


def _clip(path: Path, frames: int = 12) -> None:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for i in range(frames):
        img = np.zeros((120, 160, 3), np.uint8)
        cv2.circle(img, (10 + 10 * i, 60), 8, (255, 255, 255), -1)
        out.write(img)
    out.release()


async def _wait(cond: Any, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_file_source_loops_and_a_dead_stream_goes_offline(vplatform: Any, vclient: httpx.AsyncClient,
                                                                tmp_path: Path) -> None:
    admin = await headers(vplatform, "admin")
    seen: list[Any] = []

    async def grab(delivery: Any) -> None:
        seen.append(delivery.event)

    await vplatform.bus.subscribe("vision.>", grab)
    clip = tmp_path / "clip.avi"
    _clip(clip)
    await vclient.post("/api/v1/cameras", headers=admin, json=camera_body("cam:file", stream_url=str(clip),
                                                                          analytics=[]))
    src = vplatform.vision.sources["cam:file"]
    await _wait(lambda: src.frames > 12)          # played past the end: looped
    assert vplatform.vision.cameras.cameras["cam:file"]["status"] == "online"
    # nothing listens on this port: the camera is marked offline, with an event, and retried with backoff
    url = f"rtsp://127.0.0.1:{free_port()}/stream"
    await vclient.post("/api/v1/cameras", headers=admin, json=camera_body("cam:dead", stream_url=url, analytics=[]))
    await _wait(lambda: any(e.kind == "vision.camera_offline" and e.key == "cam:dead" for e in seen))
    cam = (await vclient.get("/api/v1/cameras/cam:dead", headers=admin)).json()
    assert cam["status"] == "offline"
    off = next(e for e in seen if e.key == "cam:dead")
    assert off.data["retry_in_s"] == 1.0 and "cannot open" in off.data["reason"]
    await _wait(lambda: vplatform.vision.sources["cam:dead"].reconnects >= 2)
    for _ in range(100):      # the rule pack raises the camera-offline alert
        alerts = (await vclient.get("/api/v1/alerts", headers=admin)).json()["items"]
        if any(a["kind"] == "vision.camera_offline" and a["subject"] == "cam:dead" for a in alerts):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("no camera-offline alert")


async def test_posted_frames_beyond_the_bound_are_refused_and_counted(vplatform: Any,
                                                                      vclient: httpx.AsyncClient) -> None:
    admin = await headers(vplatform, "admin")
    await vclient.post("/api/v1/cameras", json=camera_body("cam:busy", analytics=["traffic"]), headers=admin)
    ok, jpg = cv2.imencode(".jpg", np.zeros((120, 160, 3), np.uint8))
    assert ok
    bound = vplatform.settings.vision_queue_size
    pipe = vplatform.vision.pipelines["cam:busy"]
    async with pipe._lock:          # the camera is busy analysing: posted frames wait, up to the bound
        posts = [asyncio.create_task(vclient.post("/api/v1/cameras/cam:busy/frames", content=jpg.tobytes(),
                                                  headers=admin)) for _ in range(bound + 2)]
        await _wait(lambda: sum(t.done() for t in posts) == 2)
    codes = sorted([(await t).status_code for t in posts])
    assert codes == [200] * bound + [429, 429]
    assert vplatform.vision.counters()["frames_refused"] == 2
    assert vplatform.vision.counters()["frames_dropped"] == 2


class _Mjpeg:
    """An HTTP MJPEG camera that sends ``frames`` frames per connection, then hangs up (a dropping stream)."""

    def __init__(self, frames: int = 8) -> None:
        import http.server
        import socketserver
        import threading

        self.connections = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for i in range(frames):
                    img = np.zeros((120, 160, 3), np.uint8)
                    cv2.circle(img, (10 + 10 * i, 60), 8, (255, 255, 255), -1)
                    jpg = cv2.imencode(".jpg", img)[1].tobytes()
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                     % len(jpg) + jpg + b"\r\n")
                    self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_a_dropping_http_stream_goes_offline_and_comes_back(vplatform: Any, vclient: httpx.AsyncClient) -> None:
    admin = await headers(vplatform, "admin")
    seen: list[Any] = []

    async def grab(delivery: Any) -> None:
        seen.append(delivery.event)

    await vplatform.bus.subscribe("vision.>", grab)
    cam = _Mjpeg()
    try:
        await vclient.post("/api/v1/cameras", headers=admin, json=camera_body(
            "cam:mjpeg", stream_url=f"http://127.0.0.1:{cam.port}/stream.mjpg", analytics=[]))
        await _wait(lambda: [e.kind for e in seen if e.key == "cam:mjpeg"][:3] == [
            "vision.camera_online", "vision.camera_offline", "vision.camera_online"], timeout=30)
        off = next(e for e in seen if e.kind == "vision.camera_offline")
        assert off.data["reason"] == "the stream stopped delivering frames" and off.data["retry_in_s"] == 1.0
        assert cam.connections >= 2 and vplatform.vision.sources["cam:mjpeg"].reconnects >= 1
    finally:
        cam.close()


def test_pyav_reads_what_opencv_cannot_open(tmp_path: Path, monkeypatch: Any) -> None:
    import av

    from citydata.vision import sources

    path = tmp_path / "h264.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "h264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(6):
            img = np.zeros((120, 160, 3), np.uint8)
            img[:, i * 20:i * 20 + 20] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)

    class Closed:          # an OpenCV build without this codec or protocol
        def __init__(self, *args: Any) -> None:
            pass

        def isOpened(self) -> bool:
            return False

        def release(self) -> None:
            pass

    monkeypatch.setattr(sources.cv2, "VideoCapture", Closed)
    reader = sources._Reader(str(path), 5.0)
    frames = []
    while (frame := reader.read()) is not None:
        frames.append(frame)
    reader.close()
    assert reader.av is not None and len(frames) == 6 and frames[0].shape == (120, 160, 3)
    with pytest.raises(OSError):
        sources._Reader(str(tmp_path / "missing.mp4"), 1.0)
