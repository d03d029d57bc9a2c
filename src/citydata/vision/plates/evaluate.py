"""Accuracy of the plate reader: on rendered Thai plates and on real labelled photos.

Used by ``tools/plates/evaluate.py`` (full sets, JSON report), the tests (small subsets with a floor) and the
benchmarks. Metrics:

- ``exact``: the whole registration read exactly (``exact_both``: registration and province);
- ``exact_tolerant``: equal up to look-alike characters (``plate_distance`` 0), what the hotlist match uses;
- ``char_accuracy``: 1 - edit distance / length, summed over the set (per-character accuracy);
- ``province``: the province right; ``detected``: a plate read overlapping the labelled box (real photos).
"""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from citydata.vision.plates.base import BBox, PlateRead
from citydata.vision.plates.provinces import _levenshtein
from citydata.vision.plates.reader import PlateReader
from citydata.vision.plates.synth import random_plate
from citydata.vision.plates.text import plate_distance


@dataclass
class Tally:
    n: int = 0
    exact: int = 0
    exact_tolerant: int = 0
    chars: int = 0
    char_errors: int = 0
    province: int = 0
    exact_both: int = 0
    detected: int = 0
    read: int = 0
    seconds: float = 0.0

    def add(self, truth: str, got: str | None) -> None:
        self.n += 1
        self.chars += len(truth)
        if got is None:
            self.char_errors += len(truth)
            return
        self.read += 1
        self.exact += got == truth
        self.exact_tolerant += plate_distance(got, truth) == 0
        self.char_errors += min(len(truth), _levenshtein(got, truth))

    def report(self) -> dict[str, Any]:
        n = max(1, self.n)
        out: dict[str, Any] = {
            "n": self.n,
            "exact": round(self.exact / n, 4),
            "exact_tolerant": round(self.exact_tolerant / n, 4),
            "char_accuracy": round(1 - self.char_errors / max(1, self.chars), 4),
            "read_rate": round(self.read / n, 4),
            "ms_per_image": round(1000 * self.seconds / n, 1),
        }
        return out


def evaluate_thai(reader: PlateReader, n: int, *, seed: int = 20261121, fonts: list[Path] | None = None,
                  strength: float = 1.0, failures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Read ``n`` rendered, degraded Thai plate crops (``read_crop``); held out by seed from training."""
    rng = random.Random(seed)
    tally = Tally()
    for _ in range(n):
        plate = random_plate(rng, fonts, strength=strength)
        t0 = time.perf_counter()
        got = reader.read_crop(plate.image_bgr)
        tally.seconds += time.perf_counter() - t0
        tally.add(plate.registration, got.text if got else None)
        prov_ok = got is not None and got.province == plate.province
        tally.province += prov_ok
        tally.exact_both += prov_ok and got is not None and got.text == plate.registration
        if failures is not None and not (prov_ok and got is not None and got.text == plate.registration):
            failures.append({"truth": plate.registration, "province": plate.province,
                             "got": got.text if got else None, "got_province": got.province if got else None})
    out = tally.report()
    out["province"] = round(tally.province / max(1, n), 4)
    out["exact_both"] = round(tally.exact_both / max(1, n), 4)
    return out


def load_labels(root: Path) -> list[dict[str, str]]:
    """Rows of ``labels.csv`` of the real plate photos (``file``, ``plate_text``, ``bbox_*``)."""
    with (root / "labels.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _overlap(a: BBox, b: BBox) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / max(1, min(aw * ah, bw * bh))


def evaluate_real(reader: PlateReader, root: Path, rows: Iterable[dict[str, str]] | None = None,
                  failures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Full scenes through detector + reader; the read overlapping the labelled plate box is scored.

    Where several reads overlap the labelled box, the most confident is scored; a scene with none counts as
    not detected and wholly wrong.
    """
    tally = Tally()
    for row in rows if rows is not None else load_labels(root):
        image = cv2.imread(str(root / row["file"]), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(root / row["file"])
        truth_box = (int(row["bbox_x"]), int(row["bbox_y"]), int(row["bbox_w"]), int(row["bbox_h"]))
        t0 = time.perf_counter()
        reads = reader.read(image)
        tally.seconds += time.perf_counter() - t0
        over = [r for r in reads if _overlap(r.bbox, truth_box) > 0.3]
        best: PlateRead | None = max(over, key=lambda r: r.confidence) if over else None
        tally.detected += best is not None
        tally.add(row["plate_text"], best.text if best else None)
        if failures is not None and (best is None or best.text != row["plate_text"]):
            failures.append({"file": row["file"], "truth": row["plate_text"], "got": best.text if best else None,
                             "others": [r.text for r in reads]})
    out = tally.report()
    out["detected"] = round(tally.detected / max(1, tally.n), 4)
    return out
