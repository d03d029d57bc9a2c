"""A simple centroid tracker, and the moving-blob detector that feeds it for traffic analytics.

``CentroidTracker.update(boxes, t)`` assigns each box to the nearest live track (greedy, closest pairs first,
within ``max_distance`` pixels), starts new tracks for the rest and ends tracks unseen for ``max_age_s``.
``BlobDetector`` finds moving objects with OpenCV's MOG2 background subtractor on a downscaled frame
(vehicles on a fixed camera); plate boxes can be tracked with the same tracker.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

Box = tuple[int, int, int, int]


@dataclass(slots=True)
class Track:
    id: str
    box: Box
    first_t: float
    last_t: float
    points: list[tuple[float, float, float]] = field(default_factory=list)   # (t, cx, cy)
    hits: int = 0
    fired: set[str] = field(default_factory=set)                             # line ids already reported

    @property
    def centroid(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2.0, y + h / 2.0


class CentroidTracker:
    def __init__(self, prefix: str, max_distance: float = 80.0, max_age_s: float = 2.0,
                 history: int = 60) -> None:
        self.prefix, self.max_distance, self.max_age_s, self.history = prefix, max_distance, max_age_s, history
        self.tracks: dict[str, Track] = {}
        self._ids = itertools.count(1)

    def update(self, boxes: list[Box], t: float) -> tuple[list[Track], list[Track]]:
        """Assign ``boxes`` seen at ``t``; returns (the tracks updated, in box order; the tracks that ended)."""
        ended = self.expire(t)
        live = list(self.tracks.values())
        cents = [(x + w / 2.0, y + h / 2.0) for x, y, w, h in boxes]
        pairs = sorted(((float(np.hypot(c[0] - tr.centroid[0], c[1] - tr.centroid[1])), i, j)
                        for i, c in enumerate(cents) for j, tr in enumerate(live)), key=lambda p: p[0])
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for dist, i, j in pairs:
            if dist > self.max_distance:
                break
            if i in assigned or j in used:
                continue
            assigned[i] = live[j]
            used.add(j)
        out: list[Track] = []
        for i, box in enumerate(boxes):
            tr = assigned.get(i)
            if tr is None:
                tr = Track(f"{self.prefix}-{next(self._ids)}", box, t, t)
                self.tracks[tr.id] = tr
            tr.box, tr.last_t = box, t
            tr.hits += 1
            tr.points.append((t, cents[i][0], cents[i][1]))
            if len(tr.points) > self.history:
                del tr.points[0]
            out.append(tr)
        return out, ended

    def expire(self, t: float) -> list[Track]:
        gone = [tr for tr in self.tracks.values() if t - tr.last_t > self.max_age_s]
        for tr in gone:
            del self.tracks[tr.id]
        return gone

    def flush(self) -> list[Track]:
        gone = list(self.tracks.values())
        self.tracks.clear()
        return gone


class BlobDetector:
    """Moving objects (boxes in full-frame pixels) from background subtraction."""

    def __init__(self, min_area_frac: float = 0.002, scale_width: int = 320) -> None:
        self.min_area_frac, self.scale_width = min_area_frac, scale_width
        self._mog = cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=32, detectShadows=False)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Box]:
        h, w = image.shape[:2]
        scale = self.scale_width / float(w) if w > self.scale_width else 1.0
        small = cv2.resize(image, (int(w * scale), int(h * scale))) if scale != 1.0 else image
        mask = self._mog.apply(small)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        mask = cv2.dilate(mask, self._kernel, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = self.min_area_frac * small.shape[0] * small.shape[1]
        out: list[Box] = []
        for c in contours:
            if cv2.contourArea(c) < min_area:
                continue
            x, y, bw, bh = cv2.boundingRect(c)
            out.append((int(x / scale), int(y / scale), int(bw / scale), int(bh / scale)))
        return out
