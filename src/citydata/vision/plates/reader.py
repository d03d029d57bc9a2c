"""PlateReader: a detector plugin finds candidate plates in a scene, recogniser plugins read them.

The primary recogniser (``crnn`` by default) reads two-line Thai plates; the Latin recogniser (``rapidocr`` by
default, ``latin=None`` to switch it off) reads single-line Latin-script plates, such as the Malaysian cars of
southern Thailand, wherever the primary read no valid Thai registration. A read is kept when it matches the plate
pattern of its script and its confidence reaches ``min_confidence``; of overlapping reads of one plate, a Thai read
with its province is kept first, then the most confident.

``regions`` names the plate formats the deployment expects (``plates.formats.REGIONS``): ``th`` turns the Thai
reader on, the others give the Latin formats the Latin reading is decoded against (Phuket: ``th`` and ``my``, for
Malaysian cars; ``eu`` for European plates).
"""

from __future__ import annotations

import numpy as np

from citydata.vision.plates import crnn as _crnn  # registers "crnn"
from citydata.vision.plates import formats, rapid, tesseract
from citydata.vision.plates.base import (
    BBox,
    Candidate,
    PlateDetector,
    PlateRead,
    PlateRecogniser,
    Reading,
    make_detector,
    make_recogniser,
)
from citydata.vision.plates.text import is_latin_registration, is_thai_registration

PLUGIN_MODULES = (_crnn, rapid, tesseract)  # importing them registers "crnn", "rapidocr" and "tesseract"


def _overlap(a: BBox, b: BBox) -> float:
    """Intersection over the smaller box (1.0 when one box contains the other)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / max(1, min(aw * ah, bw * bh))


def _crop(image: np.ndarray, box: BBox) -> np.ndarray:
    x, y, w, h = box
    return image[y:y + h, x:x + w]


class PlateReader:
    """Reads plates in scenes or crops. Models load on first use (``ModelUnavailable`` if a runtime is missing)."""

    def __init__(self, *, detector: str = "rapidocr", recogniser: str = "crnn", latin: str | None = "rapidocr",
                 min_confidence: float = 0.5, max_candidates: int = 24,
                 regions: tuple[str, ...] = ("th", "my")) -> None:
        self.detector_name, self.recogniser_name, self.latin_name = detector, recogniser, latin
        self.latin_formats = formats.region_formats(regions)  # unknown region names raise ValueError here
        self.thai = formats.thai_enabled(regions)
        self.regions = tuple(regions)
        self.min_confidence = min_confidence
        self.max_candidates = max_candidates
        self._detector: PlateDetector | None = None
        self._recogniser: PlateRecogniser | None = None
        self._latin: PlateRecogniser | None = None

    @property
    def detector(self) -> PlateDetector:
        if self._detector is None:
            self._detector = make_detector(self.detector_name)
        return self._detector

    @property
    def recogniser(self) -> PlateRecogniser:
        if self._recogniser is None:
            self._recogniser = make_recogniser(self.recogniser_name)
        return self._recogniser

    @property
    def latin(self) -> PlateRecogniser | None:
        if self._latin is None and self.latin_name:
            self._latin = make_recogniser(self.latin_name)
            self._latin.formats = self.latin_formats
        return self._latin

    def load(self) -> None:
        """Load every model now (readiness checks call this once at start)."""
        if self.thai:
            self.recogniser.read(np.full((64, 144, 3), 255, np.uint8))
        self.detector.detect(np.full((64, 64, 3), 255, np.uint8))
        if self.latin is not None:
            self.latin.read(np.full((32, 96, 3), 255, np.uint8))

    def _primary(self, crops: list[np.ndarray]) -> list[Reading | None]:
        if not self.thai:
            return [None] * len(crops)
        return self.recogniser.read_batch(crops) if crops else []

    def _accept_thai(self, r: Reading | None) -> bool:
        return r is not None and is_thai_registration(r.text) and r.confidence >= self.min_confidence

    def _accept_latin(self, r: Reading | None) -> bool:
        return r is not None and is_latin_registration(r.text) and r.confidence >= self.min_confidence

    def read_crop(self, crop_bgr: np.ndarray) -> PlateRead | None:
        """Read an already-cropped plate (its box is the whole crop)."""
        if crop_bgr.size == 0:
            return None
        box = (0, 0, int(crop_bgr.shape[1]), int(crop_bgr.shape[0]))
        r = self._primary([crop_bgr])[0]
        if r is not None and self._accept_thai(r):
            return PlateRead(box, r.text, r.province, r.confidence)
        latin = self.latin
        if latin is not None:
            lr = latin.read(crop_bgr)
            if lr is not None and self._accept_latin(lr):
                return PlateRead(box, lr.text, None, lr.confidence)
        return None

    def read(self, image_bgr: np.ndarray) -> list[PlateRead]:
        """Every plate found in a BGR scene, best first."""
        cands: list[Candidate] = self.detector.detect(image_bgr)[: self.max_candidates]
        found: list[PlateRead] = []
        two = [c for c in cands if c.lines == 2]
        for c, r in zip(two, self._primary([_crop(image_bgr, c.bbox) for c in two]), strict=True):
            if r is not None and self._accept_thai(r):
                found.append(PlateRead(c.bbox, r.text, r.province, r.confidence))
        latin = self.latin
        if latin is not None:
            single = [c for c in cands if c.lines == 1
                      and not any(_overlap(c.bbox, f.bbox) > 0.5 for f in found if f.province)]
            for c, lr in zip(single, latin.read_batch([_crop(image_bgr, c.bbox) for c in single]), strict=True):
                if lr is not None and self._accept_latin(lr):
                    found.append(PlateRead(c.bbox, lr.text, None, lr.confidence))
        # a Thai read with its province (two heads agreeing on a Thai plate) wins over a Latin read of the same box
        found.sort(key=lambda p: (p.province is None, -p.confidence))
        kept: list[PlateRead] = []
        for p in found:
            if all(_overlap(p.bbox, k.bbox) < 0.5 for k in kept):
                kept.append(p)
        return kept
