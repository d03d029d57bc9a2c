"""``VisionService``: cameras, their pipelines, the watchlist and hotlist, and what each result becomes.

What is kept (PDPA):
* a face that matches no watchlist subject: NOTHING. Its embedding lives only in the analysis result in
  memory and is dropped when ``_on_result`` returns; no table has a column for it.
* a watchlist hit: the hit row (camera, time, subject reference, score, box), the hit's embedding encrypted
  (so an operator can turn a wrong hit into a negative sample) and a cropped snapshot, encrypted, in
  ``<data_dir>/vision/snapshots``. Both are purged after ``vision_hit_retention_days``.
* a plate on the hotlist: the hit with its text; any other plate: a keyed HMAC, the camera and the time,
  purged after ``vision_sighting_retention_days``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
from sqlalchemy import delete, select

from citydata.errors import NotFound, TooManyRequests, ValidationFailed
from citydata.events import Event, make_event
from citydata.ops.periodic import Periodic
from citydata.vision import events as _events  # noqa: F401 - registers the payload models
from citydata.vision.cameras import CameraIn, CameraRegistry
from citydata.vision.crypto import PlateHasher, VisionCipher
from citydata.vision.frames import Frame, Image
from citydata.vision.hotlist import Hotlist, normalise
from citydata.vision.pipeline import CameraPipeline, Result
from citydata.vision.schema import vision_embeddings, vision_face_hits, vision_plate_hits, vision_plate_sightings
from citydata.vision.sources import StreamSource
from citydata.vision.traffic import SignalStates
from citydata.vision.watchlist import Watchlists
from citydata.vision.workers import Analyser

if TYPE_CHECKING:
    from citydata.auth import AuditLog, Principal
    from citydata.bus import Bus
    from citydata.clock import Clock
    from citydata.config import Settings
    from citydata.ops.metrics import Metrics
    from citydata.store import Store

log = logging.getLogger(__name__)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


class VisionService:
    def __init__(self, *, settings: Settings, store: Store, bus: Bus, clock: Clock, audit: AuditLog,
                 pii_keys: list[tuple[str, bytes]], secret_key: bytes, metrics: Metrics | None = None,
                 workers: int | None = None) -> None:
        self.settings, self.store, self.bus, self.clock, self.audit = settings, store, bus, clock, audit
        self.metrics = metrics
        self.cipher = VisionCipher(pii_keys)
        self.hasher = PlateHasher(secret_key)
        self.cameras = CameraRegistry(store, clock)
        self.watchlists = Watchlists(store, audit, clock, self.cipher, settings.vision_face_threshold)
        self.hotlist = Hotlist(store, audit, clock)
        self.signals = SignalStates()
        self.analyser = Analyser(settings.vision_workers if workers is None else workers,
                                 plate_regions=tuple(settings.vision_plate_regions))
        self.pipelines: dict[str, CameraPipeline] = {}
        self.sources: dict[str, StreamSource] = {}
        self.snapshot_dir = Path(settings.data_dir) / "vision" / "snapshots"
        self.counts: dict[str, int] = dict.fromkeys(
            ("frames", "frames_gated", "frames_refused", "faces", "faces_discarded", "watchlist_hits", "plates_read",
             "plates_decided", "hotlist_hits", "plate_sightings", "violations", "vendor_events"), 0)
        self._timer = Periodic("vision-housekeeping", clock, 1.0, self._tick)
        self._purge_every = 3600
        self._ticks = 0
        self._warming: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, *, streams: bool = True) -> None:
        await self.cameras.load()
        await self.watchlists.load()
        await self.hotlist.load()
        self.analyser.start()
        for cam in self.cameras.cameras.values():
            self._pipeline(cam)
            if streams:
                self._start_source(cam)
        self._timer.start()
        if self.analyser.workers > 0 and any(c.get("analytics") for c in self.cameras.cameras.values()):
            # load the models in a worker now: the first frames are not slow, and the readiness flags are true
            self._warming = asyncio.create_task(self._warm(), name="vision-warm")
        if self.metrics is not None:
            self.metrics.gauge_callback("citydata_vision_total", "CCTV analytics counters (monotonic)",
                                        self.counters)
        log.info("vision started: %d cameras, faces %s, plates %s", len(self.cameras.cameras),
                 "ready" if self.analyser.ready["faces"] else "off",
                 "ready" if self.analyser.ready["plates"] else "off")

    async def _warm(self) -> None:
        try:
            await self.analyser.warm()
        except Exception:
            log.exception("vision: loading the models in a worker failed")

    async def stop(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._warming
        await self._timer.stop()
        for src in list(self.sources.values()):
            await src.stop()
        self.sources.clear()
        t = self.clock.now().timestamp()
        for pipe in list(self.pipelines.values()):
            await pipe.stop()
            with contextlib.suppress(Exception):
                await pipe.flush(t)
        self.analyser.stop()

    def counters(self) -> dict[str, float]:
        out = {k: float(v) for k, v in self.counts.items()}
        out["frames_dropped"] = float(sum(p.queue.dropped for p in self.pipelines.values()))
        out["frames_skipped_motion"] = float(sum(p.gate.skipped for p in self.pipelines.values() if p.gate))
        out["faces_suppressed_by_negatives"] = float(self.watchlists.suppressed)
        return out

    def readiness(self) -> dict[str, Any]:
        return {"faces": self.analyser.ready["faces"], "plates": self.analyser.ready["plates"],
                "reasons": {k: v for k, v in self.analyser.reasons.items() if v},
                "cameras": {c["id"]: c["status"] for c in self.cameras.cameras.values()}}

    def _pipeline(self, cam: dict[str, Any]) -> CameraPipeline:
        pipe = self.pipelines.get(cam["id"])
        if pipe is None:
            s = self.settings
            pipe = CameraPipeline(cam, self.analyser, self._on_result, self.signals, queue_size=s.vision_queue_size,
                                  min_plate_frames=s.vision_min_plate_frames, plate_ttl_s=s.vision_plate_track_ttl_s)
            pipe.start()
            self.pipelines[cam["id"]] = pipe
        else:
            pipe.camera = cam
        return pipe

    def _start_source(self, cam: dict[str, Any]) -> None:
        if not cam.get("stream_url") or not cam.get("enabled") or cam["id"] in self.sources:
            return
        pipe = self.pipelines[cam["id"]]
        cid = cam["id"]

        def on_frame(image: Image, seq: int) -> None:
            self.counts["frames"] += 1
            if not pipe.offer(Frame(cid, self.clock.now(), image, seq)):
                self.counts["frames_gated"] += 1

        async def on_status(status: str, reason: str | None, retry_in: float | None) -> None:
            await self._camera_status(cid, status, reason, retry_in)

        src = StreamSource(cid, cam["stream_url"], on_frame, on_status, fps=self.settings.vision_fps,
                           max_backoff_s=self.settings.vision_reconnect_max_s)
        src.start()
        self.sources[cid] = src

    async def _stop_source(self, camera_id: str) -> None:
        src = self.sources.pop(camera_id, None)
        if src is not None:
            await src.stop()

    async def _camera_status(self, camera_id: str, status: str, reason: str | None, retry_in: float | None) -> None:
        if not await self.cameras.set_status(camera_id, status):
            return
        cam = self.cameras.cameras[camera_id]
        data = {**self._where(cam), "status": status, "reason": reason, "retry_in_s": retry_in}
        await self.bus.publish(make_event(f"vision.camera_{status}", camera_id, self.clock.now(), data))

    def _where(self, cam: dict[str, Any]) -> dict[str, Any]:
        return {"camera_id": cam["id"], "lon": cam["lon"], "lat": cam["lat"], "zone_id": cam.get("zone_id"),
                "at": self.clock.now().isoformat()}

    async def _tick(self) -> None:
        t = self.clock.now().timestamp()
        for pipe in list(self.pipelines.values()):
            await pipe.expire(t)
        self._ticks += 1
        if self._ticks % self._purge_every == 1:
            await self.purge()

    # -- cameras ---------------------------------------------------------------------------------------------
    async def put_camera(self, body: CameraIn, *, create_only: bool = False) -> tuple[dict[str, Any], bool]:
        out, created = await self.cameras.put(body, create_only=create_only)
        cam = self.cameras.cameras[body.id]
        await self._stop_source(body.id)
        self._pipeline(cam)
        self._start_source(cam)
        return out, created

    async def delete_camera(self, camera_id: str) -> None:
        await self.cameras.delete(camera_id)
        await self._stop_source(camera_id)
        pipe = self.pipelines.pop(camera_id, None)
        if pipe is not None:
            await pipe.stop()

    async def submit_image(self, camera_id: str, image: Image) -> dict[str, Any]:
        """A single posted frame, analysed now (masks first). 429 when the camera's queue is full."""
        cam = self.cameras.get(camera_id)
        if not cam.get("enabled"):
            raise ValidationFailed(f"camera {camera_id!r} is disabled", code="camera_disabled")
        pipe = self._pipeline(cam)
        if pipe.posted >= self.settings.vision_queue_size:     # the same bound as a stream's queue
            pipe.queue.dropped += 1
            self.counts["frames_refused"] += 1
            raise TooManyRequests("this camera's analysis queue is full; the frame was dropped",
                                  code="camera_busy")
        self.counts["frames"] += 1
        pipe.posted += 1
        try:
            await self._camera_status(camera_id, "online", None, None)
            res = await pipe.analyse(Frame(camera_id, self.clock.now(), image, source="api"))
        finally:
            pipe.posted -= 1
        return {"camera_id": camera_id, "faces": res.n_faces, "plates": len(res.plates),
                "decided": len(res.decided), "violations": len(res.violations)}

    def set_signal(self, camera_id: str, signal: str, state: str) -> None:
        self.cameras.get(camera_id)
        self.signals.set(camera_id, signal, state)

    # -- results ---------------------------------------------------------------------------------------------
    async def _on_result(self, cam: dict[str, Any], res: Result) -> None:
        events: list[Event] = []
        now = res.frame.t
        for face in res.faces:
            self.counts["faces"] += 1
            match = self.watchlists.match(face.embedding)
            if match is None:
                self.counts["faces_discarded"] += 1
                continue            # nothing about this face is kept
            hit_id = new_id("fh")
            snapshot = self._write_snapshot(hit_id, res.frame.image, face.bbox)
            purge_after = now + timedelta(days=self.settings.vision_hit_retention_days)
            row = {"id": hit_id, "camera_id": cam["id"], "t": now, "watchlist_id": match.watchlist,
                   "subject_id": match.subject_id, "score": round(match.score, 4), "bbox": list(face.bbox),
                   "snapshot": snapshot, "status": "new", "reviewed_by": None, "purge_after": purge_after}
            await self.store.insert_rows(vision_face_hits, [row])
            await self.store.insert_rows(vision_embeddings,
                                         [self.watchlists.hit_embedding_row(hit_id, match, face.embedding)])
            self.counts["watchlist_hits"] += 1
            events.append(make_event("vision.watchlist_hit", f"{match.watchlist}/{match.subject_id}", now, {
                **self._where(cam), "at": now.isoformat(), "hit_id": hit_id, "watchlist": match.watchlist,
                "subject_id": match.subject_id, "score": round(match.score, 4), "bbox": list(face.bbox)}))
        res.faces.clear()
        self.counts["plates_read"] += len(res.plates)
        for read in res.decided:
            events.extend(await self._plate_decided(cam, now, normalise(read.text), read.province,
                                                    read.confidence, frames=1))
        for v in res.violations:
            self.counts["violations"] += 1
            events.append(make_event(f"vision.{v.kind}", f"{cam['id']}/{v.line}", now, {
                **self._where(cam), "at": now.isoformat(), "violation": v.kind, "track_id": v.track_id,
                "line": v.line, "source": "citydata"}))
        if events:
            await self.bus.publish_many(events)

    async def _plate_decided(self, cam: dict[str, Any], now: datetime, text: str, province: str | None,
                             confidence: float, *, frames: int) -> list[Event]:
        if not text:
            return []
        self.counts["plates_decided"] += 1
        hit = self.hotlist.match(text, province)
        if hit is None:
            await self.store.insert_rows(vision_plate_sightings, [
                {"camera_id": cam["id"], "t": now, "plate_hash": self.hasher(text)}])
            self.counts["plate_sightings"] += 1
            return []
        hit_id = new_id("ph")
        await self.store.insert_rows(vision_plate_hits, [
            {"id": hit_id, "camera_id": cam["id"], "t": now, "plate": hit.plate, "read_text": text,
             "province": province or hit.province, "list": hit.list, "confidence": round(confidence, 3),
             "frames": frames}])
        self.counts["hotlist_hits"] += 1
        return [make_event("vision.hotlist_hit", hit.plate, now, {
            **self._where(cam), "at": now.isoformat(), "hit_id": hit_id, "plate": hit.plate, "read_text": text,
            "province": province or hit.province, "list": hit.list, "confidence": round(confidence, 3),
            "frames": frames})]

    def _write_snapshot(self, hit_id: str, image: Image, bbox: tuple[int, int, int, int]) -> str | None:
        x, y, w, h = bbox
        pad = int(0.4 * max(w, h))
        crop = image[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad]
        ok, jpg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return None
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        name = f"{hit_id}.bin"
        (self.snapshot_dir / name).write_bytes(self.cipher.seal("snapshot", hit_id, jpg.tobytes()))
        return name

    # -- operator reads (audited) ----------------------------------------------------------------------------
    async def list_hits(self, principal: Principal, *, limit: int = 100,
                        client: str | None = None) -> list[dict[str, Any]]:
        await self.audit.record(principal, "vision.hits_read", subject_type="face_hit", detail={"limit": limit},
                                client=client)
        rows = await self.store.fetch_all(select(vision_face_hits).order_by(vision_face_hits.c.t.desc()).limit(limit))
        return [{**dict(r), "t": r["t"].isoformat(), "purge_after": r["purge_after"].isoformat()} for r in rows]

    async def snapshot(self, principal: Principal, hit_id: str, purpose: str, *, client: str | None = None) -> bytes:
        if len(purpose.strip()) < 3:
            raise ValidationFailed("reading a snapshot needs a purpose", code="purpose_required")
        row = await self.store.fetch_one(select(vision_face_hits).where(vision_face_hits.c.id == hit_id))
        if row is None or not row["snapshot"]:
            raise NotFound("no snapshot for this hit", code="snapshot_not_found")
        await self.audit.record(principal, "vision.snapshot_read", subject_type="face_hit", subject_id=hit_id,
                                purpose=purpose.strip()[:300], client=client)
        path = self.snapshot_dir / row["snapshot"]
        if not path.is_file():
            raise NotFound("the snapshot was purged", code="snapshot_not_found")
        return self.cipher.open("snapshot", hit_id, path.read_bytes())

    async def search(self, principal: Principal, image: Image, watchlists: list[str] | None, *,
                     client: str | None = None) -> list[dict[str, Any]]:
        """Match every face of an image (an investigator's search); audited; nothing is stored."""
        faces = await self.analyser.faces(image)
        out = []
        for f in faces:
            m = self.watchlists.match(f.embedding, watchlists)
            out.append({"bbox": list(f.bbox), "subject": m.subject_id if m else None,
                        "watchlist": m.watchlist if m else None, "score": round(m.score, 4) if m else None})
        await self.audit.record(principal, "vision.search", subject_type="watchlist",
                                subject_id=",".join(watchlists)[:100] if watchlists else None,
                                detail={"faces": len(out), "hits": sum(1 for o in out if o["subject"])}, client=client)
        return out

    # -- vendor analytics ------------------------------------------------------------------------------------
    async def vendor_event(self, vendor: str, payload: dict[str, Any]) -> dict[str, Any]:
        from citydata.vision.vendor import parse_vendor_event

        ev = parse_vendor_event(vendor, payload)
        cam = self.cameras.get(ev.camera_id)
        when = ev.time or self.clock.now()
        self.counts["vendor_events"] += 1
        events: list[Event] = []
        if ev.plate:
            events.extend(await self._plate_decided(cam, when, normalise(ev.plate), ev.province,
                                                    ev.confidence or 0.0, frames=0))
        if ev.violation:
            self.counts["violations"] += 1
            events.append(make_event(f"vision.{ev.violation}", f"{cam['id']}/{ev.line}", when, {
                **self._where(cam), "at": when.isoformat(), "violation": ev.violation, "track_id": ev.track_id,
                "line": ev.line, "source": f"vendor:{vendor}", "confidence": ev.confidence,
                "plate_hash": self.hasher(normalise(ev.plate)) if ev.plate else None}))
        if events:
            await self.bus.publish_many(events)
        return {"camera_id": cam["id"], "events": [e.kind for e in events]}

    # -- retention -------------------------------------------------------------------------------------------
    async def purge(self) -> dict[str, int]:
        now = self.clock.now()
        old = await self.store.fetch_all(select(vision_face_hits.c.id, vision_face_hits.c.snapshot).where(
            vision_face_hits.c.purge_after <= now))
        for r in old:
            if r["snapshot"]:
                with contextlib.suppress(FileNotFoundError):
                    (self.snapshot_dir / r["snapshot"]).unlink()
        ids = [r["id"] for r in old]
        if ids:
            await self.store.execute(delete(vision_embeddings).where(
                vision_embeddings.c.source.in_([f"hit:{i}" for i in ids]), vision_embeddings.c.kind == "hit"))
            await self.store.execute(delete(vision_face_hits).where(vision_face_hits.c.id.in_(ids)))
        cutoff = now - timedelta(days=self.settings.vision_sighting_retention_days)
        sightings = await self.store.delete_in_chunks(vision_plate_sightings, vision_plate_sightings.c.t < cutoff)
        subjects = await self.watchlists.purge_expired()
        return {"hits": len(ids), "sightings": sightings, "subjects": subjects}


async def wait_idle(service: VisionService, timeout_s: float = 30.0) -> None:
    """Wait until every pipeline queue is empty (tests, the CLI scan)."""
    async with asyncio.timeout(timeout_s):
        for pipe in service.pipelines.values():
            await pipe.queue.join()
