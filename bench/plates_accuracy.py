#!/usr/bin/env python3
"""Plate reading accuracy: the Thai CRNN on rendered plates (against the Tesseract baseline in the same run) and
the detector + Latin reader on the real European photos of ../shared/data/plates.

    .venv/bin/python bench/plates_accuracy.py [--thai 1000] [--tesseract 300] [--quick] [--json OUT]

Rendered plates use seeds the training never saw: the packaged fonts (seen in training, other samples) and the
TLWG Sawasdee family when ``--held-out-fonts DIR`` points at it (a font never seen). Goals (issue 9): >= 95%
exact registration and province on rendered plates, >= 80% exact on the real photos.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PLATES = REPO / "tests" / "fixtures" / "data" / "plates"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--thai", type=int, default=1000)
    ap.add_argument("--tesseract", type=int, default=300)
    ap.add_argument("--held-out-fonts", type=Path, default=None, help="folder with Sawasdee*.ttf")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.thai, args.tesseract = 200, 60
    from citydata.vision.plates import PlateReader
    from citydata.vision.plates.evaluate import evaluate_real, evaluate_thai, load_labels

    report: dict[str, Any] = {}
    t0 = time.monotonic()
    crnn = PlateReader(min_confidence=0.0)  # the recogniser's accuracy: every read scored
    report["crnn"] = evaluate_thai(crnn, args.thai)
    baseline = PlateReader(recogniser="tesseract", latin=None, min_confidence=0.0)
    report["tesseract"] = evaluate_thai(baseline, args.tesseract)
    if args.held_out_fonts:
        fonts = sorted(args.held_out_fonts.glob("Sawasdee*.ttf"))
        report["crnn_held_out_font"] = evaluate_thai(crnn, args.thai // 2, seed=77, fonts=fonts)
    if (PLATES / "labels.csv").is_file():
        rows = load_labels(PLATES)
        rows = rows[::6] if args.quick else rows
        report["real"] = evaluate_real(PlateReader(), PLATES, rows)  # as deployed in Phuket: regions th, my
        report["real_eu"] = evaluate_real(PlateReader(regions=("eu",)), PLATES, rows)  # configured for Europe
    report["seconds"] = round(time.monotonic() - t0, 1)
    c, t = report["crnn"], report["tesseract"]
    summary = [
        {"metric": f"plates: Thai rendered, exact registration + province ({c['n']} plates)", "ours": c["exact_both"],
         "baseline": t["exact_both"], "baseline_name": f"Tesseract tha + allow-lists ({t['n']} plates)",
         "ratio": c["exact_both"] / max(t["exact_both"], 1e-9), "goal": ">= 0.95 exact",
         "note": f"per-char {c['char_accuracy']:.3f} (Tesseract {t['char_accuracy']:.3f}), province "
                 f"{c['province']:.3f}, {c['ms_per_image']:.0f} ms/crop"},
    ]
    if "crnn_held_out_font" in report:
        h = report["crnn_held_out_font"]
        summary.append({"metric": f"plates: Thai rendered, font never seen in training ({h['n']} plates)",
                        "ours": h["exact_both"], "note": f"per-char {h['char_accuracy']:.3f}"})
    for key, how in (("real_eu", "European plate formats (regions eu)"),
                     ("real", "Phuket settings (regions th,my)")):
        if key in report:
            r = report[key]
            summary.append({"metric": f"plates: real European photos, exact, {how} ({r['n']} scenes)",
                            "ours": r["exact"], "goal": ">= 0.80 exact",
                            "note": f"{r['exact_tolerant']:.3f} up to look-alikes (O/0 ...), per-char "
                                    f"{r['char_accuracy']:.3f}, plate found {r['detected']:.3f}, "
                                    f"{r['ms_per_image']:.0f} ms/scene"})
    report["summary"] = summary
    text = json.dumps(report, ensure_ascii=False, indent=1)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
