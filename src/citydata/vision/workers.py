"""The heavy models, off the event loop: one worker process per core (``ProcessPoolExecutor``), or one
in-process thread when ``workers == 0`` (the CLI, tests).

Each worker loads the face models and the plate reader once (lazily, on the first frame that needs them).
A missing model runtime disables that analytic only: ``Analyser.ready`` says which analytics are available,
with the reason, and the platform logs one line and keeps running.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from citydata.errors import Unavailable
from citydata.vision.faces import Face, FaceEngine, FaceModelsUnavailable, models_dir

log = logging.getLogger(__name__)
Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class PlateSeen:
    """One plate read in one frame (plain data, picklable)."""

    bbox: tuple[int, int, int, int]
    text: str
    province: str | None
    confidence: float


class AnalyticUnavailable(RuntimeError):
    pass


# -- the worker side (module globals live in each worker process) ------------------------------------------------
_FACE: FaceEngine | None = None
_PLATE: Any = None
_PLATE_REGIONS: tuple[str, ...] = ("th", "my")


def configure_worker(plate_regions: tuple[str, ...]) -> None:
    """Set this process's plate regions (the pool's initializer; the CLI calls it directly)."""
    global _PLATE_REGIONS, _PLATE
    if tuple(plate_regions) != _PLATE_REGIONS:
        _PLATE_REGIONS, _PLATE = tuple(plate_regions), None


def _face_engine() -> FaceEngine:
    global _FACE
    if _FACE is None:
        try:
            _FACE = FaceEngine()
        except FaceModelsUnavailable as err:
            raise AnalyticUnavailable(str(err)) from err
    return _FACE


def _plate_reader() -> Any:
    global _PLATE
    if _PLATE is None:
        try:
            plates: Any = importlib.import_module("citydata.vision.plates")
        except ImportError as err:
            raise AnalyticUnavailable(f"the plate reader is not installed: {err}") from err
        try:
            reader = plates.PlateReader(regions=_PLATE_REGIONS)
            reader.load()        # every model now, so a missing one disables the analytic at once
        except plates.ModelUnavailable as err:
            raise AnalyticUnavailable(f"plate models unavailable: {err}") from err
        _PLATE = reader
    return _PLATE


def work_faces(image: Image) -> list[Face]:
    return _face_engine().faces(image)


def work_plates(image: Image) -> list[PlateSeen]:
    reader = _plate_reader()
    plates: Any = importlib.import_module("citydata.vision.plates")
    try:
        reads = reader.read(image)
    except plates.ModelUnavailable as err:      # a model that loads lazily on the first real crop
        raise AnalyticUnavailable(f"plate models unavailable: {err}") from err
    out: list[PlateSeen] = []
    for r in reads:
        x, y, w, h = (int(v) for v in r.bbox)
        out.append(PlateSeen((x, y, w, h), str(r.text), getattr(r, "province", None) or None,
                             float(getattr(r, "confidence", 0.0))))
    return out


def work_warm(faces: bool, plates: bool) -> dict[str, str | None]:
    """Load the models in this worker; returns the reason each one is unavailable (None: loaded)."""
    out: dict[str, str | None] = {}
    for name, want, loader in (("faces", faces, _face_engine), ("plates", plates, _plate_reader)):
        if want:
            try:
                loader()
                out[name] = None
            except AnalyticUnavailable as err:
                out[name] = str(err)
    return out


# -- the platform side ------------------------------------------------------------------------------------------
def face_models_problem() -> str | None:
    """Why the face analytic cannot run here (None: it can)."""
    if importlib.util.find_spec("dlib") is None:
        return "dlib is not installed (pip install dlib-bin)"
    try:
        models_dir()
    except FaceModelsUnavailable as err:
        return str(err)
    return None


def plate_models_problem() -> str | None:
    try:
        plates = importlib.import_module("citydata.vision.plates")
    except ImportError as err:
        return f"the plate reader (citydata.vision.plates) is not importable: {err}"
    if not hasattr(plates, "PlateReader"):
        return "the plate reader (citydata.vision.plates) has no PlateReader"
    return None


class Analyser:
    """Runs the models for the pipelines; ``workers`` processes (0: one in-process thread)."""

    def __init__(self, workers: int, *, plate_regions: tuple[str, ...] = ("th", "my")) -> None:
        self.workers = workers if workers >= 0 else (os.cpu_count() or 1)
        self.plate_regions = tuple(plate_regions)
        self._pool: Executor | None = None
        self.ready: dict[str, bool] = {"faces": False, "plates": False}
        self.reasons: dict[str, str | None] = {"faces": None, "plates": None}
        self.restarts = 0

    def start(self) -> None:
        if self._pool is not None:
            return
        if self.workers == 0:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vision",
                                            initializer=configure_worker, initargs=(self.plate_regions,))
        else:
            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=configure_worker, initargs=(self.plate_regions,))
        for name, problem in (("faces", face_models_problem()), ("plates", plate_models_problem())):
            self._set(name, problem)

    def _set(self, name: str, problem: str | None) -> None:
        if problem is not None and self.reasons.get(name) != problem:
            log.warning("vision: %s analytic disabled: %s", name, problem)
        self.ready[name], self.reasons[name] = problem is None, problem

    async def warm(self) -> None:
        """Load the models in a worker now (else on the first frame); updates ``ready``."""
        got = await self._run(work_warm, self.ready["faces"], self.ready["plates"])
        for name, problem in got.items():
            self._set(name, problem)

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._pool is None:
            self.start()
        pool = self._pool
        assert pool is not None
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            # a worker died (killed, out of memory): this frame is lost (counted by the caller's error path),
            # the next one gets a fresh pool
            log.error("vision: a model worker process died; starting new workers")
            self.restarts += 1
            if self._pool is pool:
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                self.start()
            raise Unavailable("a model worker process died; the frame was not analysed (retry)",
                              code="vision_worker_restarted") from None

    async def faces(self, image: Image) -> list[Face]:
        if not self.ready["faces"]:
            return []
        try:
            return list(await self._run(work_faces, image))
        except AnalyticUnavailable as err:
            self._set("faces", str(err))
            return []

    async def plates(self, image: Image) -> list[PlateSeen]:
        if not self.ready["plates"]:
            return []
        try:
            return list(await self._run(work_plates, image))
        except AnalyticUnavailable as err:
            self._set("plates", str(err))
            return []

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
