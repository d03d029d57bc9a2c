"""The plate hotlist, the per-vehicle consensus over frames, and what is kept of plates.

Plate reads of one camera are grouped per vehicle by a centroid tracker on the plate boxes. When a vehicle's
plate track ends (unseen for ``track_ttl_s``) or has ``min_frames`` reads, its reads are combined by the plate
reader's ``consensus`` and the result is checked against the hotlist with ``plate_distance`` (one confusable
character tolerated). A hotlist hit is stored with its text (``vision_plate_hits``) and published as
``vision.hotlist_hit``; any other plate is stored ONLY as a keyed HMAC with the time and camera
(``vision_plate_sightings``), so traffic counts stay possible and the text is never kept.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from citydata.auth import Principal
from citydata.auth.audit import AuditLog
from citydata.clock import Clock
from citydata.errors import NotFound, Unavailable, ValidationFailed
from citydata.store import Store
from citydata.vision.schema import vision_hotlist
from citydata.vision.tracker import CentroidTracker, Track
from citydata.vision.workers import PlateSeen

log = logging.getLogger(__name__)


def _plates() -> Any:
    """The plate reader package (its own helper builds it; imported on use so the rest runs without it)."""
    try:
        module = importlib.import_module("citydata.vision.plates")
    except ImportError as err:
        raise Unavailable(f"the plate reader package is not installed: {err}", code="plates_unavailable") from err
    if not all(hasattr(module, n) for n in ("normalise_plate", "plate_distance", "consensus", "PlateRead")):
        raise Unavailable("the plate reader package is incomplete", code="plates_unavailable")
    return module


def normalise(text: str) -> str:
    return str(_plates().normalise_plate(text))


def distance(hotlisted: str, read: str) -> float | None:
    """0 for the same plate, 0.5 for one look-alike character (ฌ/ณ, ฬ/พ, ฏ/ฎ, 0/O ...), None otherwise: the
    hotlist tolerates ONE confusable character, never a different one or two look-alikes."""
    if hotlisted == read:
        return 0.0
    if len(hotlisted) != len(read) or _plates().plate_distance(hotlisted, read) != 0:
        return None
    return 0.5 if sum(a != b for a, b in zip(hotlisted, read, strict=True)) <= 1 else None


def combine(reads: Sequence[PlateSeen]) -> PlateSeen | None:
    """The consensus of one vehicle's reads (the plate reader's ``consensus``)."""
    if not reads:
        return None
    plates = _plates()
    got: Any = plates.consensus([plates.PlateRead(bbox=r.bbox, text=r.text, province=r.province,
                                                  confidence=r.confidence) for r in reads])
    if got is None:
        return None
    return PlateSeen(tuple(int(v) for v in got.bbox), str(got.text), got.province or None,   # type: ignore[arg-type]
                     float(got.confidence))


@dataclass(frozen=True, slots=True)
class HotlistMatch:
    plate: str
    list: str
    province: str | None
    distance: float


class Hotlist:
    def __init__(self, store: Store, audit: AuditLog, clock: Clock) -> None:
        self.store, self.audit, self.clock = store, audit, clock
        self.entries: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        self.entries = {r["plate"]: dict(r) for r in await self.store.fetch_all(select(vision_hotlist))}

    async def add(self, principal: Principal, plate: str, *, list_name: str, reason: str,
                  province: str | None = None, expires_at: datetime | None = None) -> dict[str, Any]:
        text = normalise(plate)
        if not text:
            raise ValidationFailed("the plate is empty after normalisation", code="invalid_plate")
        if not 3 <= len(reason.strip()) <= 500:
            raise ValidationFailed("a hotlist entry needs a reason (3 to 500 characters)", code="reason_required")
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValidationFailed("expires_at needs a time zone", code="invalid_expiry")
        await self.audit.record(principal, "vision.hotlist_add", subject_type="plate", subject_id=text[:100],
                                purpose=reason.strip()[:300], detail={"list": list_name})
        row = {"plate": text, "province": province or None, "list": list_name, "reason": reason.strip(),
               "expires_at": expires_at, "added_by": principal.subject[:100], "created_at": self.clock.now()}
        await self.store.execute(delete(vision_hotlist).where(vision_hotlist.c.plate == text))
        await self.store.insert_rows(vision_hotlist, [row])
        self.entries[text] = row
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}

    async def remove(self, principal: Principal, plate: str) -> None:
        text = normalise(plate)
        if text not in self.entries:
            raise NotFound("that plate is not on the hotlist", code="plate_not_found")
        await self.audit.record(principal, "vision.hotlist_remove", subject_type="plate", subject_id=text[:100])
        await self.store.execute(delete(vision_hotlist).where(vision_hotlist.c.plate == text))
        del self.entries[text]

    def match(self, text: str, province: str | None = None) -> HotlistMatch | None:
        """The closest live hotlist entry within one confusable character (province must agree when both
        are known)."""
        if not text:
            return None
        now = self.clock.now()
        best: HotlistMatch | None = None
        for plate, e in self.entries.items():
            if e["expires_at"] is not None and e["expires_at"] <= now:
                continue
            if province and e["province"] and province != e["province"]:
                continue
            d = distance(plate, text)
            if d is not None and (best is None or d < best.distance):
                best = HotlistMatch(plate, str(e["list"]), e["province"], d)
        return best


@dataclass(slots=True)
class VehiclePlates:
    reads: list[PlateSeen] = field(default_factory=list)
    decided: bool = False


class PlateTracks:
    """Per-camera grouping of plate reads into vehicles."""

    def __init__(self, camera_id: str, min_frames: int = 3, track_ttl_s: float = 2.0) -> None:
        self.min_frames = min_frames
        self.tracker = CentroidTracker(f"{camera_id}/plate", max_distance=150.0, max_age_s=track_ttl_s)
        self.vehicles: dict[str, VehiclePlates] = {}

    def add(self, reads: Sequence[PlateSeen], t: float) -> list[PlateSeen]:
        """Add one frame's reads; returns the consensus reads of the vehicles decided now."""
        tracks, ended = self.tracker.update([r.bbox for r in reads], t)
        decided: list[PlateSeen] = []
        for tr, read in zip(tracks, reads, strict=True):
            v = self.vehicles.setdefault(tr.id, VehiclePlates())
            if v.decided:
                continue            # this vehicle's plate was decided: later reads change nothing
            v.reads.append(read)
            if not v.decided and len(v.reads) >= self.min_frames:
                decided.extend(self._decide(v))
        decided.extend(self._finish(ended))
        return decided

    def expire(self, t: float) -> list[PlateSeen]:
        return self._finish(self.tracker.expire(t))

    def flush(self) -> list[PlateSeen]:
        return self._finish(self.tracker.flush())

    def _finish(self, ended: list[Track]) -> list[PlateSeen]:
        out: list[PlateSeen] = []
        for tr in ended:
            v = self.vehicles.pop(tr.id, None)
            if v is not None and not v.decided:
                out.extend(self._decide(v))
        return out

    @staticmethod
    def _decide(v: VehiclePlates) -> list[PlateSeen]:
        v.decided = True
        got = combine(v.reads)
        return [got] if got is not None and got.text else []
