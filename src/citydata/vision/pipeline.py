"""One camera's pipeline: privacy masks → motion gate → bounded queue → analytics (faces, plates, traffic).

The stage queue holds at most ``queue_size`` frames; under load the oldest frame is dropped and counted
(``dropped``). Events are never dropped: each analysis result is handed to the service, which stores and
publishes it before the next frame of this camera is analysed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from citydata.vision.faces import Face
from citydata.vision.frames import Frame, MotionGate, StageQueue, apply_masks
from citydata.vision.hotlist import PlateTracks
from citydata.vision.tracker import BlobDetector, CentroidTracker
from citydata.vision.traffic import SignalStates, evaluate
from citydata.vision.workers import PlateSeen

if TYPE_CHECKING:
    from citydata.vision.workers import Analyser

log = logging.getLogger(__name__)
_EMPTY = np.zeros((1, 1, 3), dtype=np.uint8)


@dataclass(slots=True)
class Result:
    frame: Frame
    faces: list[Face] = field(default_factory=list)
    plates: list[PlateSeen] = field(default_factory=list)      # this frame's raw reads
    decided: list[PlateSeen] = field(default_factory=list)     # vehicles whose consensus is ready
    violations: list[Any] = field(default_factory=list)
    n_faces: int = 0                                            # faces found (embeddings dropped after matching)


Handler = Callable[[dict[str, Any], Result], Awaitable[None]]


class CameraPipeline:
    def __init__(self, camera: dict[str, Any], analyser: Analyser, handler: Handler, signals: SignalStates, *,
                 queue_size: int = 4,
                 min_plate_frames: int = 3, plate_ttl_s: float = 2.0, motion_gate: bool = True) -> None:
        self.camera, self.analyser, self.handler, self.signals = camera, analyser, handler, signals
        self.queue: StageQueue[Frame] = StageQueue(f"vision:{camera['id']}", queue_size)
        self.gate = MotionGate() if motion_gate else None
        self.plates = PlateTracks(camera["id"], min_frames=min_plate_frames, track_ttl_s=plate_ttl_s)
        self.blobs = BlobDetector()
        self.vehicles = CentroidTracker(f"{camera['id']}/veh", max_distance=120.0, max_age_s=1.5)
        self.analysed = 0
        self.posted = 0            # posted frames waiting or in analysis (bounded like the queue)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def analytics(self) -> set[str]:
        return set(self.camera.get("analytics") or [])

    def prepare(self, frame: Frame) -> Frame:
        """Black out the privacy masks (in place) before anything else sees the frame."""
        apply_masks(frame.image, self.camera.get("masks") or [])
        return frame

    def offer(self, frame: Frame) -> bool:
        """A stream frame: masked, gated, queued (oldest dropped when full). False when gated out."""
        self.prepare(frame)
        if self.gate is not None and not self.gate.should_analyse(frame.image):
            return False
        self.queue.put(frame)
        return True

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"vision-pipeline-{self.camera['id']}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            frame = await self.queue.get()
            try:
                await self.analyse(frame, masked=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("vision: analysis of a frame of %s failed", self.camera["id"])
            finally:
                self.queue.task_done()

    async def analyse(self, frame: Frame, *, masked: bool = False) -> Result:
        """Run the enabled analytics on one frame and hand the result to the service (one frame at a time
        per camera, so plate and vehicle tracks see frames in order)."""
        if not masked:
            self.prepare(frame)
        async with self._lock:
            want = self.analytics
            result = Result(frame)
            jobs: list[Awaitable[Any]] = []
            if "faces" in want:
                jobs.append(self.analyser.faces(frame.image))
            if "plates" in want:
                jobs.append(self.analyser.plates(frame.image))
            got = list(await asyncio.gather(*jobs)) if jobs else []
            if "faces" in want:
                result.faces = got.pop(0)
                result.n_faces = len(result.faces)
            t = frame.t.timestamp()
            if "plates" in want:
                result.plates = got.pop(0)
                result.decided = self.plates.add(result.plates, t)
            if "traffic" in want and self.camera.get("lines"):
                tracks, _ = self.vehicles.update(self.blobs.detect(frame.image), t)
                for tr in tracks:
                    result.violations.extend(evaluate(self.camera["id"], self.camera["lines"], tr, self.signals))
            self.analysed += 1
            await self.handler(self.camera, result)
            return result

    async def expire(self, t: float) -> None:
        """End plate tracks unseen for a while (called by the service's timer)."""
        async with self._lock:
            decided = self.plates.expire(t)
        if decided:
            frame = Frame(self.camera["id"], datetime.fromtimestamp(t, UTC), _EMPTY)
            await self.handler(self.camera, Result(frame, decided=decided))

    async def flush(self, t: float) -> None:
        async with self._lock:
            decided = self.plates.flush()
        if decided:
            await self.handler(self.camera, Result(Frame(self.camera["id"], datetime.fromtimestamp(t, UTC), _EMPTY),
                                                   decided=decided))
