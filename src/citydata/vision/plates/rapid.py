"""RapidOCR-based plugins: the text detector that finds plate candidates, and a Latin-script line reader.

Both run RapidOCR's PP-OCR ONNX models, which ship inside the ``rapidocr`` wheel (Apache-2.0): nothing is
downloaded. One RapidOCR engine is shared per process and guarded by a lock (its call mutates its settings).

Detection: every text line the DB detector finds is a single-line candidate (a Latin plate, or the registration
line of a Thai plate whose province line was missed); a line with a shorter, roughly centred line just below it is
also a two-line candidate (a Thai plate: registration above, province below), scored higher.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

import numpy as np

from citydata.vision.plates import formats
from citydata.vision.plates.base import (
    BBox,
    Candidate,
    ModelUnavailable,
    PlateDetector,
    PlateRecogniser,
    Reading,
    register_detector,
    register_recogniser,
)
from citydata.vision.plates.text import is_latin_registration, normalise_plate

_ENGINE: Any = None
_ENGINE_LOCK = threading.Lock()
CALL_LOCK = threading.Lock()


def engine() -> Any:
    """The process-wide RapidOCR engine (models from the wheel, logging quiet, one thread)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            if importlib.util.find_spec("rapidocr") is None or importlib.util.find_spec("onnxruntime") is None:
                raise ModelUnavailable("plate detection needs rapidocr and onnxruntime, which are not installed")
            from rapidocr import RapidOCR

            _ENGINE = RapidOCR(params={"Global.log_level": "error",
                                       "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                                       "EngineConfig.onnxruntime.inter_op_num_threads": 1})
        return _ENGINE


def _pad(box: BBox, fx: float, fy_top: float, fy_bottom: float, shape: tuple[int, ...]) -> BBox:
    x, y, w, h = box
    x0, y0 = max(0, int(x - fx * w)), max(0, int(y - fy_top * h))
    x1, y1 = min(shape[1], int(x + w + fx * w)), min(shape[0], int(y + h + fy_bottom * h))
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


class RapidOCRDetector(PlateDetector):
    """Plate candidates from RapidOCR's text-line detector."""

    name = "rapidocr"

    def __init__(self, *, max_side: int = 1280, min_height: int = 8) -> None:
        self.max_side, self.min_height = max_side, min_height

    def lines(self, image_bgr: np.ndarray) -> list[tuple[BBox, float]]:
        """Axis-aligned boxes of the text lines found, with the detector's score."""
        eng = engine()
        scale = min(1.0, self.max_side / max(image_bgr.shape[:2]))
        small = image_bgr
        if scale < 1.0:
            import cv2

            small = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        with CALL_LOCK:
            res = eng(small, use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(res, "boxes", None)
        scores = getattr(res, "scores", None) or [1.0] * (0 if boxes is None else len(boxes))
        out: list[tuple[BBox, float]] = []
        for poly, score in zip([] if boxes is None else boxes, scores, strict=False):
            pts = np.asarray(poly, dtype=np.float32) / scale
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            w, h = int(x1 - x0), int(y1 - y0)
            if h >= self.min_height and w >= 1.5 * h:  # plate lines are wide; windows and wheels are not
                out.append(((int(x0), int(y0), w, h), float(score)))
        return out

    def detect(self, image_bgr: np.ndarray) -> list[Candidate]:
        lines = self.lines(image_bgr)
        shape = image_bgr.shape
        cands: list[Candidate] = []
        for (x, y, w, h), score in lines:
            cands.append(Candidate(_pad((x, y, w, h), 0.06, 0.15, 0.15, shape), score, lines=1))
            # the province line: starts below the middle of this line, close under it, not taller, centred under it
            below = [(b, s) for b, s in lines
                     if b != (x, y, w, h) and y + 0.5 * h <= b[1] <= y + 1.5 * h and 0.2 * h <= b[3] <= 1.1 * h
                     and x - 0.1 * w <= b[0] + b[2] / 2 <= x + 1.1 * w and 0.2 * w <= b[2] <= 1.3 * w]
            if below:
                (bx, by, bw, bh), bs = min(below, key=lambda t: t[0][1])
                ux0, uy0 = min(x, bx), y
                ux1, uy1 = max(x + w, bx + bw), by + bh
                cands.append(Candidate(_pad((ux0, uy0, ux1 - ux0, uy1 - uy0), 0.05, 0.12, 0.12, shape),
                                       min(1.0, (score + bs) / 2 + 0.5), lines=2))
            else:  # a Thai registration line whose province line was not found: guess the plate below it
                cands.append(Candidate(_pad((x, y, w, h), 0.08, 0.2, 0.95, shape), score * 0.8, lines=2))
        cands.sort(key=lambda c: -c.score)
        return cands


class RapidOCRLatinRecogniser(PlateRecogniser):
    """Reads a single-line Latin-script plate with RapidOCR's PP-OCR recogniser (letters and digits only).

    The recogniser's per-step character probabilities are folded to letters, digits and the blank, then decoded
    to the most probable reading that fits one of ``self.formats`` (the regions configured for the deployment,
    see :mod:`citydata.vision.plates.formats`), or greedily when none fits well enough.
    """

    name = "rapidocr"

    def read(self, crop_bgr: np.ndarray) -> Reading | None:
        return self.read_batch([crop_bgr])[0]

    def read_batch(self, crops: list[np.ndarray]) -> list[Reading | None]:
        if not crops:
            return []
        eng = engine()
        out: list[Reading | None] = []
        with CALL_LOCK:
            rec = eng._load_rec_model()  # the recogniser alone: no detection inside each crop
            characters = list(rec.postprocess_op.character)
            _c, img_h, img_w = rec.rec_image_shape[:3]
            for crop in crops:
                if crop.size == 0 or crop.shape[0] < 2 or crop.shape[1] < 2:
                    out.append(None)
                    continue
                img = np.ascontiguousarray(crop)
                ratio = max(img_w / img_h, img.shape[1] / img.shape[0])
                preds = rec.session(rec.resize_norm_img(img, ratio)[None].astype(np.float32))
                out.append(self._reading(formats.lattice(np.asarray(preds)[0], characters)))
        return out

    def _reading(self, probs: np.ndarray) -> Reading | None:
        decoded = formats.decode(probs, self.formats)
        text = normalise_plate(decoded.text)
        if not text:
            return None
        conf = decoded.confidence
        if not is_latin_registration(text):
            conf *= 0.5
        return Reading(text=text, province=None, confidence=conf)


register_detector("rapidocr", RapidOCRDetector)
register_recogniser("rapidocr", RapidOCRLatinRecogniser)
