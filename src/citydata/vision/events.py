"""The vision event kinds. Watchlist hits carry the subject's case reference (never a name) and the hit id
whose encrypted snapshot authorised roles can fetch; hotlist hits carry the hotlisted registration. No event
carries a face embedding or the text of a plate that is not on a hotlist."""

from __future__ import annotations

from pydantic import BaseModel

from citydata.events import register_event_kind


class Located(BaseModel):
    camera_id: str
    lon: float | None = None
    lat: float | None = None
    zone_id: str | None = None
    at: str


class WatchlistHit(Located):
    hit_id: str
    watchlist: str
    subject_id: str
    score: float
    bbox: list[int]


class HotlistHit(Located):
    hit_id: str
    plate: str
    read_text: str
    province: str | None = None
    list: str
    confidence: float
    frames: int


class CameraStatus(Located):
    status: str
    reason: str | None = None
    retry_in_s: float | None = None


class TrafficViolation(Located):
    violation: str                     # red_light, wrong_way
    track_id: str
    line: str
    source: str                        # citydata (own tracker) or vendor:<name>
    plate_hash: str | None = None
    confidence: float | None = None


KINDS: dict[str, type[BaseModel]] = {
    "vision.watchlist_hit": WatchlistHit,
    "vision.hotlist_hit": HotlistHit,
    "vision.camera_offline": CameraStatus,
    "vision.camera_online": CameraStatus,
    "vision.red_light": TrafficViolation,
    "vision.wrong_way": TrafficViolation,
}


def register() -> None:
    for kind, model in KINDS.items():
        register_event_kind(kind, model)


register()
