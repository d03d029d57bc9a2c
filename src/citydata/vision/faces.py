"""The face models: dlib's HOG detector, the 5-point landmark model (alignment) and the ResNet 128-d embedding.

The weights come from the ``face-recognition-models`` wheel, found with ``importlib.util.find_spec`` (never
the ``face_recognition`` package, and never the 68-point model, whose training data is non-commercial). The
5-point and ResNet models are public domain (Davis King, dlib). ``FaceEngine`` is synchronous and CPU-bound;
the service runs it in worker processes (``citydata.vision.workers``).

Matching uses the cosine distance ``1 - cos(a, b)`` between embeddings. On ``/work/shared/data/faces`` (see
docs/vision.md for the measured figures) same-person pairs fall below ~0.05 and different people above ~0.09
on this scale; the Euclidean distance (dlib's own scale, threshold 0.6) is reported beside it.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Embedding = npt.NDArray[np.float32]
SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
EMBED_MODEL = "dlib_face_recognition_resnet_model_v1.dat"


class FaceModelsUnavailable(RuntimeError):
    """dlib or the model weights are not installed."""


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face: box ``(x, y, w, h)`` in frame pixels, detector score and the 128-d embedding."""

    bbox: tuple[int, int, int, int]
    score: float
    embedding: Embedding


def models_dir() -> Path:
    """The ``face_recognition_models/models`` folder (raises ``FaceModelsUnavailable``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelsUnavailable("the face-recognition-models package is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    for name in (SHAPE_MODEL, EMBED_MODEL):
        if not (folder / name).is_file():
            raise FaceModelsUnavailable(f"face model file {name} is missing from {folder}")
    return folder


def cosine_distance(a: Embedding, b: Embedding) -> float:
    """``1 - cos(a, b)``: 0 for the same direction, 2 for opposite."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 1.0
    return float(1.0 - float(np.dot(a, b)) / (na * nb))


def cosine_distances(probe: Embedding, gallery: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Cosine distances of one probe to each row of ``gallery`` (rows assumed L2-normalised)."""
    if gallery.size == 0:
        return np.zeros(0, dtype=np.float32)
    p = probe / max(float(np.linalg.norm(probe)), 1e-12)
    return (1.0 - gallery @ p).astype(np.float32)


def normalised(v: Embedding) -> Embedding:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


class FaceEngine:
    """Detect → align (5 points) → embed. ``upsample`` 1 finds faces down to ~40 px at some CPU cost."""

    def __init__(self, upsample: int = 1, jitter: int = 0) -> None:
        try:
            import dlib
        except ImportError as err:  # pragma: no cover - dlib-bin is a dependency
            raise FaceModelsUnavailable(f"dlib is not importable: {err}") from err
        folder = models_dir()
        self._dlib: Any = dlib
        self.detector: Any = dlib.get_frontal_face_detector()
        self.shape: Any = dlib.shape_predictor(str(folder / SHAPE_MODEL))
        self.encoder: Any = dlib.face_recognition_model_v1(str(folder / EMBED_MODEL))
        self.upsample, self.jitter = upsample, jitter

    @staticmethod
    def _rgb(image_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        if image_bgr.ndim == 2:
            return np.ascontiguousarray(np.stack([image_bgr] * 3, axis=-1))
        return np.ascontiguousarray(image_bgr[:, :, ::-1])

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> list[tuple[tuple[int, int, int, int], float, Any]]:
        """Face boxes ``((x, y, w, h), score, dlib rectangle)`` found by the HOG detector."""
        rgb = self._rgb(image_bgr)
        rects, scores, _ = self.detector.run(rgb, self.upsample, 0.0)
        h, w = rgb.shape[:2]
        out = []
        for rect, score in zip(rects, scores, strict=True):
            x0, y0 = max(0, rect.left()), max(0, rect.top())
            x1, y1 = min(w, rect.right()), min(h, rect.bottom())
            if x1 > x0 and y1 > y0:
                out.append(((x0, y0, x1 - x0, y1 - y0), float(score), rect))
        return out

    def faces(self, image_bgr: npt.NDArray[np.uint8]) -> list[Face]:
        """Every face in the image with its embedding."""
        rgb = self._rgb(image_bgr)
        found = self.detect(image_bgr)
        out: list[Face] = []
        for bbox, score, rect in found:
            shape = self.shape(rgb, rect)
            chip = self._dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
            vec = np.asarray(self.encoder.compute_face_descriptor(chip, self.jitter), dtype=np.float32)
            out.append(Face(bbox, score, vec))
        return out

    def embed_only(self, image_bgr: npt.NDArray[np.uint8]) -> int:
        """The bare model work for a frame (detect + align + embed, nothing else); returns the face count."""
        return len(self.faces(image_bgr))
