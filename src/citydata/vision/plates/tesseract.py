"""Baseline Thai recogniser: Tesseract (``tesserocr``, whose wheel bundles the engine) with ``tha.traineddata``.

The Thai data file comes from Debian's ``tesseract-ocr-tha`` (Apache-2.0) and ships in ``data/`` so no apt step
is needed. The crop is binarised (Otsu) and split at the emptiest row near the usual line boundary of a Thai
plate; the top line is read with an allow-list of consonants and digits, the bottom line is matched to the
closest of the 77 province names. It is kept as a second opinion and the baseline the CRNN is measured against
(see docs/models.md for the figures), not as the default.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from citydata.vision.plates.base import ModelUnavailable, PlateRecogniser, Reading, register_recogniser
from citydata.vision.plates.provinces import match_province
from citydata.vision.plates.synth import CONSONANTS, DIGITS
from citydata.vision.plates.text import is_thai_registration, normalise_plate

DATA = Path(__file__).with_name("data")


class TesseractRecogniser(PlateRecogniser):
    name = "tesseract"

    def __init__(self, split: float = 0.62) -> None:
        self.split = split
        self._api: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._api is None:
            if importlib.util.find_spec("tesserocr") is None:
                raise ModelUnavailable("the Tesseract plate reader needs tesserocr, which is not installed")
            if not (DATA / "tha.traineddata").is_file():
                raise ModelUnavailable(f"tha.traineddata not found in {DATA}")
            import tesserocr

            self._api = tesserocr.PyTessBaseAPI(path=str(DATA), lang="tha", psm=tesserocr.PSM.SINGLE_LINE)
        return self._api

    def _ocr(self, grey: np.ndarray, allow: str | None) -> tuple[str, float]:
        from PIL import Image

        api = self._load()
        api.SetVariable("tessedit_char_whitelist", allow or "")
        api.SetImage(Image.fromarray(grey))
        return api.GetUTF8Text().strip(), float(api.MeanTextConf()) / 100.0

    def read(self, crop_bgr: np.ndarray) -> Reading | None:
        grey = crop_bgr if crop_bgr.ndim == 2 else cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY)
        scale = 300.0 / max(1, grey.shape[1])
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        grey = cv2.GaussianBlur(grey, (3, 3), 0)
        _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        if binary.mean() < 127:  # dark plate, light text: Tesseract wants dark text
            binary = 255 - binary
        grey = binary
        ink = (binary < 128).mean(axis=1)
        lo, hi = int(grey.shape[0] * 0.45), int(grey.shape[0] * 0.78)
        cut = lo + int(np.argmin(ink[lo:hi])) if hi > lo else int(grey.shape[0] * self.split)
        with self._lock:
            top, conf = self._ocr(grey[:cut], CONSONANTS + DIGITS)
            bottom, _ = self._ocr(grey[cut:], None)
        text = normalise_plate(top)
        if not text:
            return None
        conf = max(0.0, min(1.0, conf)) * (1.0 if is_thai_registration(text) else 0.5)
        return Reading(text=text, province=match_province(bottom), confidence=conf)


register_recogniser("tesseract", TesseractRecogniser)
