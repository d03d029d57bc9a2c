"""Frames before analysis: decoding posted images, privacy masks, motion gating and the bounded stage queue.

* ``decode_image`` turns bytes into a BGR array or raises ``ValidationFailed`` (code ``image_corrupt``), so a
  corrupt upload is a 400, never a crash.
* ``apply_masks`` blacks out each privacy polygon (pixel coordinates) IN PLACE, before any detector, tracker,
  snapshot or storage sees the frame.
* ``MotionGate`` compares a small grey thumbnail with the last analysed one: frames with less than
  ``min_changed`` of their pixels changed are skipped (a static scene costs almost nothing), and a frame is
  still analysed every ``keepalive`` frames.
* ``StageQueue`` is a bounded queue in front of one stage. When full, the OLDEST frame is dropped (freshest
  video wins) and counted; events are never put in these queues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from citydata.errors import ValidationFailed

Image = npt.NDArray[np.uint8]
T = TypeVar("T")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 4096 * 4096


def decode_image(data: bytes) -> Image:
    """JPEG/PNG/... bytes → BGR image; ``ValidationFailed`` (400, ``image_corrupt``) when it is not one."""
    if not data:
        raise ValidationFailed("the image is empty", code="image_corrupt")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationFailed(f"the image is larger than {MAX_IMAGE_BYTES // 2**20} MiB", code="image_too_large")
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise ValidationFailed("the image could not be decoded (corrupt or not an image)", code="image_corrupt")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise ValidationFailed("the image has too many pixels", code="image_too_large")
    return np.ascontiguousarray(img)


def read_image_file(path: str) -> Image:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        raise ValidationFailed(f"cannot read {path}: {err.strerror}", code="image_unreadable") from err
    return decode_image(data)


def check_masks(masks: Sequence[Sequence[Sequence[float]]]) -> list[list[list[int]]]:
    """Validate privacy polygons: each at least 3 points of two non-negative numbers."""
    out: list[list[list[int]]] = []
    for i, poly in enumerate(masks):
        pts = [[round(p[0]), round(p[1])] for p in poly if len(p) == 2]
        if len(pts) < 3 or len(pts) != len(poly) or any(v < 0 for p in pts for v in p):
            raise ValidationFailed(f"privacy mask {i} must be a polygon of at least 3 [x, y] pixel points",
                                   code="invalid_mask")
        out.append(pts)
    return out


def apply_masks(image: Image, masks: Sequence[Sequence[Sequence[int]]]) -> Image:
    """Fill each polygon with black, in place; returns the same array."""
    if masks:
        polys = [np.asarray(m, dtype=np.int32).reshape(-1, 1, 2) for m in masks]
        cv2.fillPoly(image, polys, (0, 0, 0))
    return image


class MotionGate:
    """Skip frames that barely differ from the last analysed one."""

    def __init__(self, min_changed: float = 0.002, pixel_delta: int = 18, keepalive: int = 50,
                 size: tuple[int, int] = (160, 120)) -> None:
        self.min_changed, self.pixel_delta, self.keepalive, self.size = min_changed, pixel_delta, keepalive, size
        self._last: npt.NDArray[Any] | None = None
        self._since = 0
        self.passed = self.skipped = 0

    def should_analyse(self, image: Image) -> bool:
        small = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small, (5, 5), 0)
        if self._last is None or self._last.shape != grey.shape:
            changed = 1.0
        else:
            changed = float(np.count_nonzero(cv2.absdiff(grey, self._last) > self.pixel_delta)) / float(grey.size)
        self._since += 1
        if changed >= self.min_changed or self._since >= self.keepalive:
            self._last, self._since = grey, 0
            self.passed += 1
            return True
        self.skipped += 1
        return False


@dataclass(slots=True)
class Frame:
    camera_id: str
    t: datetime
    image: Image
    seq: int = 0
    source: str = "stream"
    meta: dict[str, object] = field(default_factory=dict)


class StageQueue(Generic[T]):
    """A bounded asyncio queue that drops the oldest item when full and counts it."""

    def __init__(self, name: str, maxsize: int) -> None:
        self.name = name
        self._q: asyncio.Queue[T] = asyncio.Queue(maxsize=max(1, maxsize))
        self.dropped = 0
        self.accepted = 0

    def put(self, item: T) -> bool:
        """Enqueue without waiting; returns False when an older item had to be dropped."""
        dropped = False
        while True:
            try:
                self._q.put_nowait(item)
                self.accepted += 1
                return not dropped
            except asyncio.QueueFull:
                try:
                    self._q.get_nowait()
                    self._q.task_done()
                    self.dropped += 1
                    dropped = True
                except asyncio.QueueEmpty:   # pragma: no cover - a racing consumer emptied it
                    pass

    async def get(self) -> T:
        return await self._q.get()

    def task_done(self) -> None:
        self._q.task_done()

    async def join(self) -> None:
        await self._q.join()

    def qsize(self) -> int:
        return self._q.qsize()
