"""Plate reads grouped per vehicle across frames, decided once by the plate reader's consensus."""

from __future__ import annotations

from citydata.vision.hotlist import PlateTracks
from citydata.vision.workers import PlateSeen


def _read(x: int, y: int, text: str, conf: float = 0.9) -> PlateSeen:
    return PlateSeen((x, y, 120, 40), text, "ภูเก็ต", conf)


def test_one_vehicle_is_decided_once_by_majority() -> None:
    tracks = PlateTracks("cam", min_frames=3, track_ttl_s=1.0)
    assert tracks.add([_read(300, 400, "กข1234")], 0.0) == []
    assert tracks.add([_read(300, 360, "กข1284", 0.5)], 0.2) == []      # one misread digit
    decided = tracks.add([_read(300, 320, "กข1234")], 0.4)
    assert [(d.text, d.province) for d in decided] == [("กข1234", "ภูเก็ต")]
    assert tracks.add([_read(300, 280, "กข1234")], 0.6) == []             # already decided
    assert tracks.expire(5.0) == []


def test_two_vehicles_and_a_short_track_decided_when_it_ends() -> None:
    tracks = PlateTracks("cam", min_frames=3, track_ttl_s=1.0)
    assert tracks.add([_read(50, 400, "ขค55"), _read(600, 400, "งจ777")], 0.0) == []
    assert tracks.add([_read(50, 370, "ขค55"), _read(600, 370, "งจ777")], 0.2) == []
    assert tracks.expire(0.5) == []
    decided = tracks.expire(2.0)                                          # both left the view after 2 frames
    assert sorted(d.text for d in decided) == ["ขค55", "งจ777"]
    assert tracks.vehicles == {}
