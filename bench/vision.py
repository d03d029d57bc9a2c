#!/usr/bin/env python3
"""CCTV analytics throughput: frames per second per core of the face and plate pipelines at 640×480 and
1280×720, against the bare models' own inference rate in the same run (goal: pipeline ≥ 0.8 × bare), with the
face accuracy (FMR/FNMR on ../shared/data/faces) beside it.

    .venv/bin/python bench/vision.py [--frames 12] [--json OUT]

* bare face model: ``FaceEngine.faces`` (HOG detect, 5-point align, ResNet embed) on each frame;
* face pipeline: ``POST``-equivalent ``VisionService.submit_image`` on a started platform (SQLite, models in
  one in-process thread = one core): privacy mask, detection/embedding, watchlist match, hit storage with the
  encrypted snapshot, event publishing;
* bare plate model: ``PlateReader.read``; plate pipeline: the same through the camera pipeline (plate tracks,
  consensus, hotlist check, keyed hash storage).

Frames are street scenes with one face (the shared face photos) or one rendered Thai plate, so each frame has
work for the model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FACES = REPO / "tests" / "fixtures" / "data" / "faces"
SIZES = [(640, 480), (1280, 720)]


def face_frames(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    rng = random.Random(1)
    names = sorted(p.name for p in (FACES / "images").glob("*.jpg") if "group" not in p.name)
    out = []
    for i in range(n):
        w, h = size
        scene = np.full((h, w, 3), (180, 190, 200), np.uint8)
        person = cv2.imread(str(FACES / "images" / names[i % len(names)]))
        s = 0.55 * h / person.shape[0]
        p = cv2.resize(person, (int(person.shape[1] * s), int(person.shape[0] * s)))
        x, y = rng.randint(0, w - p.shape[1]), rng.randint(0, h - p.shape[0])
        scene[y:y + p.shape[0], x:x + p.shape[1]] = p
        out.append(scene)
    return out


def plate_frames(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    from citydata.vision.plates.synth import CONSONANTS, plate_image

    rng = random.Random(2)
    out = []
    for i in range(n):
        w, h = size
        scene = np.full((h, w, 3), (95, 95, 95), np.uint8)
        reg = rng.choice(CONSONANTS) + rng.choice(CONSONANTS) + str(rng.randint(1, 9999))
        plate = plate_image(reg, "ภูเก็ต", width=int(w * 0.22), seed=i)
        x, y = rng.randint(0, w - plate.shape[1]), rng.randint(h // 3, h - plate.shape[0])
        scene[y:y + plate.shape[0], x:x + plate.shape[1]] = plate
        out.append(scene)
    return out


def timed(fn: Any, frames: list[np.ndarray]) -> float:
    t = time.perf_counter()
    for f in frames:
        fn(f)
    return len(frames) / (time.perf_counter() - t)


async def atimed(fn: Any, frames: list[np.ndarray]) -> float:
    t = time.perf_counter()
    for f in frames:
        await fn(f.copy())
    return len(frames) / (time.perf_counter() - t)


@contextlib.asynccontextmanager
async def pipeline(kind: str, tmp: Path) -> AsyncIterator[Any]:
    """A started platform (SQLite, models in one in-process thread) with a camera doing ``kind``; yields the
    coroutine that analyses one frame the way ``POST /cameras/{id}/frames`` does, and the service."""
    from citydata.app import Platform
    from citydata.auth import Principal, Role
    from citydata.config import load_settings
    from citydata.vision.cameras import CameraIn

    settings = load_settings(environ={}, data_dir=tmp / kind, mqtt_url="none://", vision_workers=0,
                             log_format="text")
    async with Platform(settings) as p:
        assert p.vision is not None
        svc = p.vision
        await svc.put_camera(CameraIn(id="cam:bench", name="bench", lon=98.3, lat=7.9, analytics=[kind],
                                      masks=[[[0, 0], [40, 0], [40, 40], [0, 40]]]))
        if kind == "faces":
            from citydata.vision.enrol import embeddings_for_enrolment

            photo = cv2.imread(str(FACES / "images" / "barack_obama_01.jpg"))
            emb = await embeddings_for_enrolment(svc, [photo])
            await svc.watchlists.enrol(Principal("bench", Role.POLICE, "user"), "bench", "case-1", emb,
                                       reason="benchmark", expires_at=datetime(2099, 1, 1, tzinfo=UTC))
        else:
            await svc.hotlist.add(Principal("bench", Role.POLICE, "user"), "กข1234", list_name="stolen",
                                  reason="benchmark")

        async def analyse(frame: np.ndarray) -> None:
            await svc.submit_image("cam:bench", frame)

        yield analyse, svc


async def measure(kind: str, bare_fn: Any, frames: list[np.ndarray], tmp: Path, rounds: int) -> dict[str, Any]:
    """Bare model and pipeline alternated ``rounds`` times on the same frames; the best round of each (this
    machine is shared, so the best round is the least disturbed one)."""
    bare_fn(frames[0])                      # warm-up: model load, caches
    async with pipeline(kind, tmp) as (analyse, svc):
        await analyse(frames[0].copy())
        bare, ours = [], []
        for _ in range(rounds):
            bare.append(timed(bare_fn, frames))
            ours.append(await atimed(analyse, frames))
        counters = svc.counters()
    return {"bare_fps": max(bare), "pipeline_fps": max(ours), "ratio": max(ours) / max(bare),
            "bare_rounds": bare, "pipeline_rounds": ours, "counters": counters}


def face_accuracy() -> dict[str, Any]:
    from citydata.config import Settings
    from citydata.vision.faces import FaceEngine, cosine_distance

    engine = FaceEngine()
    emb = {}
    with open(FACES / "manifest.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["n_faces"] == "1":
                faces = engine.faces(cv2.imread(str(FACES / row["file"])))
                if faces:
                    emb[row["file"]] = max(faces, key=lambda f: f.bbox[2] * f.bbox[3]).embedding
    thr = Settings.model_fields["vision_face_threshold"].default
    gen, imp = [], []
    with open(FACES / "pairs.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            d = cosine_distance(emb[row["file_a"]], emb[row["file_b"]])
            (gen if row["same_person"] == "1" else imp).append(d)
    return {"threshold": thr, "fmr": sum(d <= thr for d in imp) / len(imp),
            "fnmr": sum(d > thr for d in gen) / len(gen),
            "impostor_pairs": len(imp), "genuine_pairs": len(gen), "closest_impostor": min(imp),
            "farthest_genuine": max(gen)}


async def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    n = 4 if args.quick else args.frames
    from citydata.vision.faces import FaceEngine
    from citydata.vision.workers import plate_models_problem

    results: list[dict[str, Any]] = []
    engine = FaceEngine()
    plates_problem = plate_models_problem()
    reader = None
    if plates_problem is None:
        try:
            from citydata.vision.plates import PlateReader

            reader = PlateReader()
            reader.load()
        except Exception as err:
            plates_problem = str(err)
    rounds = 2 if args.quick else 3
    with tempfile.TemporaryDirectory(prefix="citydata-bench-vision-") as tmp:
        for size in SIZES:
            label = f"{size[0]}x{size[1]}"
            got = await measure("faces", engine.faces, face_frames(n, size), Path(tmp) / f"f{label}", rounds)
            results.append({"analytic": "faces", "size": label, **got})
            print(f"faces {label}: bare {got['bare_fps']:.2f} fps, pipeline {got['pipeline_fps']:.2f} fps, "
                  f"ratio {got['ratio']:.2f}", flush=True)
            if reader is not None:
                try:
                    got = await measure("plates", reader.read, plate_frames(n, size), Path(tmp) / f"p{label}",
                                        rounds)
                except Exception as err:  # a model that loads only on the first crop
                    plates_problem, reader = str(err), None
                    continue
                results.append({"analytic": "plates", "size": label, **got})
                print(f"plates {label}: bare {got['bare_fps']:.2f} fps, pipeline {got['pipeline_fps']:.2f} fps, "
                      f"ratio {got['ratio']:.2f}", flush=True)
    acc = face_accuracy()
    print(f"faces accuracy @ {acc['threshold']}: FMR {acc['fmr']:.3%} ({acc['impostor_pairs']} pairs), "
          f"FNMR {acc['fnmr']:.3%} ({acc['genuine_pairs']} pairs)", flush=True)
    summary = [{"metric": f"vision: {r['analytic']} pipeline, {r['size']} (frames/s per core)",
                "ours": r["pipeline_fps"], "baseline": r["bare_fps"],
                "baseline_name": "bare model inference on the same frames, same run",
                "ratio": r["ratio"], "goal": 0.8,
                "note": "masks, models, matching, storage and events; one in-process model thread; best of "
                        f"{len(r['bare_rounds'])} alternated rounds"} for r in results]
    summary.append({"metric": "vision: face false match rate at the default threshold", "ours": acc["fmr"],
                    "baseline": None, "baseline_name": "", "ratio": None, "goal": "<= 0.001",
                    "note": f"cosine {acc['threshold']}, {acc['impostor_pairs']} impostor pairs of "
                            f"../shared/data/faces; FNMR {acc['fnmr']:.1%} on {acc['genuine_pairs']} genuine pairs"})
    if plates_problem:
        summary.append({"metric": "vision: plate pipeline", "ours": None, "baseline": None, "baseline_name": "",
                        "ratio": None, "goal": 0.8, "note": f"not measured: {plates_problem}"})
    report = {"results": results, "face_accuracy": acc, "plates_problem": plates_problem,
              "date": datetime.now(UTC).isoformat(), "summary": summary}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    asyncio.run(main())
