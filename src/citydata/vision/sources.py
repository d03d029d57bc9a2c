"""Frame sources: a looped video file, or an RTSP/HTTP stream, read with OpenCV (FFmpeg backend; PyAV is the
fallback for streams OpenCV cannot open), with reconnect and backoff.

A source reads in a worker thread (``VideoCapture.read`` blocks), samples frames at ``fps``, and hands each to
``on_frame`` without waiting for the analysis (the pipeline's bounded queue drops frames under load). When a
stream cannot be opened or stops delivering, the camera is reported offline once (``on_status``), and the
source retries after 1, 2, 4 ... up to ``max_backoff_s`` seconds; the first good frame reports it online.
A video file that ends is started again from the beginning (the demo and test clips loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)
OnFrame = Callable[[np.ndarray, int], None]
OnStatus = Callable[[str, str | None, float | None], Awaitable[None]]


def is_file_source(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


class _Reader:
    """A blocking frame reader over OpenCV, or PyAV when OpenCV cannot open the stream."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url[7:] if url.startswith("file://") else url
        self.cap: Any = None
        self.av: Any = None
        self._frames: Any = None
        self.native_fps = 0.0
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(timeout_s * 1000),
                                                          cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(timeout_s * 1000)])
        if cap.isOpened():
            self.cap = cap
            self.native_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            return
        cap.release()
        try:            # PyAV (its own FFmpeg build) for what OpenCV's cannot open
            import av

            options = {} if is_file_source(url) else {"rtsp_transport": "tcp",
                                                      "stimeout": str(int(timeout_s * 1e6))}
            self.av = av.open(self.url, options=options, timeout=timeout_s)
            self._frames = self.av.decode(video=0)
        except Exception as err:
            raise OSError(f"cannot open stream: {err}") from err

    def read(self) -> np.ndarray | None:
        if self.cap is not None:
            ok, frame = self.cap.read()
            return frame if ok else None
        try:
            return np.asarray(next(self._frames).to_ndarray(format="bgr24"))
        except Exception:
            return None

    def grab(self, n: int) -> None:
        if self.cap is not None:
            for _ in range(n):
                self.cap.grab()

    def rewind(self) -> bool:
        if self.cap is not None:
            return bool(self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0))
        return False

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
        if self.av is not None:
            with contextlib.suppress(Exception):
                self.av.close()


class StreamSource:
    def __init__(self, camera_id: str, url: str, on_frame: OnFrame, on_status: OnStatus, *, fps: float = 5.0,
                 timeout_s: float = 10.0, max_backoff_s: float = 60.0, loop: bool = True) -> None:
        self.camera_id, self.url = camera_id, url
        self.on_frame, self.on_status = on_frame, on_status
        self.fps, self.timeout_s, self.max_backoff_s, self.loop = fps, timeout_s, max_backoff_s, loop
        self.frames = self.reconnects = 0
        self.online: bool | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"vision-source-{self.camera_id}")

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _status(self, online: bool, reason: str | None, retry_in: float | None) -> None:
        if self.online is online:
            return
        self.online = online
        try:
            await self.on_status("online" if online else "offline", reason, retry_in)
        except Exception:
            log.exception("vision: camera %s status update failed", self.camera_id)

    async def _run(self) -> None:
        backoff = 1.0
        is_file = is_file_source(self.url)
        while not self._stop:
            try:
                reader = await asyncio.to_thread(_Reader, self.url, self.timeout_s)
            except OSError as err:
                log.log(logging.WARNING if self.online is not False else logging.DEBUG,
                        "vision: camera %s offline (%s); retrying in %.0f s", self.camera_id, err, backoff)
                await self._status(False, str(err), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                self.reconnects += 1
                continue
            try:
                delivered = await self._pump(reader, is_file)
            finally:
                await asyncio.to_thread(reader.close)
            if delivered:
                backoff = 1.0
            if self._stop:
                return
            if is_file and self.loop and delivered:
                continue     # end of the clip: play it again
            await self._status(False, "the stream stopped delivering frames", backoff)
            log.warning("vision: camera %s stream dropped; reconnecting in %.0f s", self.camera_id, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
            self.reconnects += 1

    async def _pump(self, reader: _Reader, is_file: bool) -> int:
        """Deliver frames until the stream ends or fails; returns how many were delivered."""
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        skip = max(0, round(reader.native_fps / self.fps) - 1) if is_file and reader.native_fps and self.fps else 0
        delivered = 0
        next_at = time.monotonic()
        while not self._stop:
            frame = await asyncio.to_thread(reader.read)
            if frame is None:
                return delivered
            delivered += 1
            self.frames += 1
            await self._status(True, None, None)
            self.on_frame(frame, self.frames)
            if skip:
                await asyncio.to_thread(reader.grab, skip)
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_at = time.monotonic()
                await asyncio.sleep(0)
        return delivered

