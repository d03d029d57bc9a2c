"""Plate reading: the result type and the two plugin base classes, each with a registry by name.

A detector finds candidate plate boxes in a scene; a recogniser reads one cropped plate. A new model is a new
module that subclasses :class:`PlateDetector` or :class:`PlateRecogniser` and calls ``register_detector`` or
``register_recogniser``; :class:`citydata.vision.plates.reader.PlateReader` picks them by name. Models are loaded
lazily, on the first read: a missing runtime or weight file raises :class:`ModelUnavailable` then, with one clear
message, so the rest of the platform keeps running.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from citydata.errors import Unavailable

BBox = tuple[int, int, int, int]  # x, y, w, h in pixels


class ModelUnavailable(Unavailable):
    """A model runtime or weight file is missing: the analytic is disabled, the platform keeps running."""

    code, title = "model_unavailable", "Model unavailable"


@dataclass(frozen=True)
class PlateRead:
    bbox: BBox
    text: str  # normalised registration, e.g. "กข1234" (Thai) or "RK755AJ" (Latin)
    province: str | None  # Thai province name, None if not read or a Latin plate
    confidence: float  # 0..1


@dataclass(frozen=True)
class Candidate:
    """A detector's guess at a plate: the box to crop, and its score."""

    bbox: BBox
    score: float
    lines: int = 1  # 1: a single text line (a Latin plate); 2: a two-line plate (Thai: registration + province)


@dataclass(frozen=True)
class Reading:
    """A recogniser's reading of one crop (no box: the reader adds it)."""

    text: str
    province: str | None
    confidence: float


class PlateDetector(abc.ABC):
    name: str = ""

    @abc.abstractmethod
    def detect(self, image_bgr: np.ndarray) -> list[Candidate]:
        """Candidate plate boxes in a BGR scene, best first."""


class PlateRecogniser(abc.ABC):
    name: str = ""
    # Latin plate formats the reading should fit (``plates.formats``); set by the reader from its regions
    formats: tuple[str, ...] = ()

    @abc.abstractmethod
    def read(self, crop_bgr: np.ndarray) -> Reading | None:
        """Read one plate crop; None when nothing plate-like is read."""

    def read_batch(self, crops: list[np.ndarray]) -> list[Reading | None]:
        """Read several crops; models that batch override this."""
        return [self.read(c) for c in crops]


_DETECTORS: dict[str, Callable[[], PlateDetector]] = {}
_RECOGNISERS: dict[str, Callable[[], PlateRecogniser]] = {}


def register_detector(name: str, factory: Callable[[], PlateDetector]) -> None:
    _DETECTORS[name] = factory


def register_recogniser(name: str, factory: Callable[[], PlateRecogniser]) -> None:
    _RECOGNISERS[name] = factory


def detector_names() -> list[str]:
    return sorted(_DETECTORS)


def recogniser_names() -> list[str]:
    return sorted(_RECOGNISERS)


def make_detector(name: str) -> PlateDetector:
    try:
        factory = _DETECTORS[name]
    except KeyError:
        raise ModelUnavailable(f"unknown plate detector {name!r} (known: {', '.join(detector_names())})",
                               code="unknown_model") from None
    return factory()


def make_recogniser(name: str) -> PlateRecogniser:
    try:
        factory = _RECOGNISERS[name]
    except KeyError:
        raise ModelUnavailable(f"unknown plate recogniser {name!r} (known: {', '.join(recogniser_names())})",
                               code="unknown_model") from None
    return factory()
