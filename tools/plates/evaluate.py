"""Measure the plate reader: rendered Thai plates and/or the real labelled photos; prints one JSON report.

    .venv/bin/python tools/plates/evaluate.py --thai 1000 --real ../shared/data/plates
    .venv/bin/python tools/plates/evaluate.py --real ../shared/data/plates --regions eu  # European formats
    .venv/bin/python tools/plates/evaluate.py --thai 500 --recogniser tesseract      # the Tesseract baseline
    .venv/bin/python tools/plates/evaluate.py --thai 500 --fonts /tmp/fonts/tlwg --font-glob 'Sawasdee*.ttf'
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from citydata.vision.plates import PlateReader
from citydata.vision.plates.evaluate import evaluate_real, evaluate_thai, load_labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--thai", type=int, default=0, help="number of rendered Thai plates (0: skip)")
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--fonts", type=Path, default=None, help="font folder (default: the packaged fonts)")
    ap.add_argument("--font-glob", default="*.ttf")
    ap.add_argument("--real", type=Path, default=None, help="folder with labels.csv and the photos")
    ap.add_argument("--limit", type=int, default=0, help="only the first N real photos")
    ap.add_argument("--recogniser", default="crnn")
    ap.add_argument("--min-confidence", type=float, default=0.5, help="reads below are dropped (0: keep all)")
    ap.add_argument("--failures", action="store_true", help="list the misread plates")
    ap.add_argument("--regions", default="th,my",
                    help="plate regions the reader expects, comma-separated (Phuket: th,my; European photos: eu)")
    args = ap.parse_args()
    regions = tuple(r for r in args.regions.split(",") if r)
    reader = PlateReader(recogniser=args.recogniser, min_confidence=args.min_confidence, regions=regions)
    report: dict[str, Any] = {"recogniser": args.recogniser, "regions": list(regions)}
    if args.thai:
        fonts = sorted(args.fonts.glob(args.font_glob)) if args.fonts else None
        fails: list[dict[str, Any]] = []
        report["thai_rendered"] = evaluate_thai(reader, args.thai, seed=args.seed, fonts=fonts, failures=fails)
        if args.failures:
            report["thai_failures"] = fails
    if args.real:
        rows = load_labels(args.real)
        if args.limit:
            rows = rows[: args.limit]
        fails = []
        report["real_photos"] = evaluate_real(reader, args.real, rows, failures=fails)
        if args.failures:
            report["real_failures"] = fails
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
