"""Thai licence-plate reading: detector and recogniser plugins, text normalisation, tolerant matching, consensus.

    from citydata.vision.plates import PlateReader, normalise_plate, plate_distance, consensus
    reader = PlateReader()                  # detector="rapidocr", recogniser="crnn", latin="rapidocr"
    reads = reader.read(frame_bgr)          # [PlateRead(bbox, text="กข1234", province="ภูเก็ต", confidence)]

Models run offline on the CPU with onnxruntime: the plate CRNN is committed in ``data/`` (trained by
``tools/plates/train_crnn.py`` on rendered plates), RapidOCR's detector ships in its wheel, ``tha.traineddata`` is
package data. See docs/models.md for every model's and font's licence and the measured accuracy.
"""

from __future__ import annotations

from citydata.vision.plates.base import (
    Candidate,
    ModelUnavailable,
    PlateDetector,
    PlateRead,
    PlateRecogniser,
    Reading,
    detector_names,
    make_detector,
    make_recogniser,
    recogniser_names,
    register_detector,
    register_recogniser,
)
from citydata.vision.plates.consensus import consensus
from citydata.vision.plates.provinces import PROVINCES, match_province
from citydata.vision.plates.reader import PlateReader
from citydata.vision.plates.text import (
    confusable,
    is_latin_registration,
    is_thai_registration,
    normalise_plate,
    plate_distance,
)

__all__ = [
    "PROVINCES",
    "Candidate",
    "ModelUnavailable",
    "PlateDetector",
    "PlateRead",
    "PlateReader",
    "PlateRecogniser",
    "Reading",
    "confusable",
    "consensus",
    "detector_names",
    "is_latin_registration",
    "is_thai_registration",
    "make_detector",
    "make_recogniser",
    "match_province",
    "normalise_plate",
    "plate_distance",
    "recogniser_names",
    "register_detector",
    "register_recogniser",
]
