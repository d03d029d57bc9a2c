"""Traffic discipline from tracked vehicle positions: red-light stop-line crossings and wrong-way travel.

Each camera carries ``lines`` (pixel coordinates of its own view)::

    {"id": "stop-north", "kind": "stop_line", "points": [[x1, y1], [x2, y2]], "signal": "sig-1",
     "forward": [0, -1]}                      # the direction of travel that crosses the line
    {"id": "lane-south", "kind": "direction", "zone": [[x, y], ...], "direction": [0, 1],
     "min_travel_px": 40}                     # travel must go along ``direction`` inside the zone

``SignalStates`` holds the current state (``red``/``amber``/``green``) of each signal as posted to the API. A
track whose last step crosses a stop line in the ``forward`` direction while its signal is red gives one
``red_light`` violation; a track that moved at least ``min_travel_px`` inside a direction zone against its
direction (cosine below -0.5) gives one ``wrong_way``. Each track reports each line once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from citydata.errors import ValidationFailed
from citydata.vision.tracker import Track

SIGNAL_STATES = ("red", "amber", "green", "off")


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str            # red_light, wrong_way
    line: str
    track_id: str


def _pt(p: Any, where: str) -> tuple[float, float]:
    if not isinstance(p, list | tuple) or len(p) != 2 or not all(isinstance(v, int | float) for v in p):
        raise ValidationFailed(f"{where} must be [x, y] numbers", code="invalid_line")
    return float(p[0]), float(p[1])


def check_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate the camera's line/zone definitions (returns them normalised)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, ln in enumerate(lines):
        lid = str(ln.get("id") or "")
        if not lid or lid in seen:
            raise ValidationFailed(f"line {i} needs a unique id", code="invalid_line")
        seen.add(lid)
        kind = ln.get("kind")
        if kind == "stop_line":
            pts = ln.get("points") or []
            if len(pts) != 2:
                raise ValidationFailed(f"stop line {lid} needs two points", code="invalid_line")
            out.append({"id": lid, "kind": kind, "points": [list(_pt(p, lid)) for p in pts],
                        "signal": str(ln.get("signal") or lid),
                        "forward": list(_pt(ln.get("forward", [0, -1]), f"{lid}.forward"))})
        elif kind == "direction":
            zone = ln.get("zone") or []
            if len(zone) < 3:
                raise ValidationFailed(f"direction zone {lid} needs a polygon of 3 points or more",
                                       code="invalid_line")
            out.append({"id": lid, "kind": kind, "zone": [list(_pt(p, lid)) for p in zone],
                        "direction": list(_pt(ln.get("direction"), f"{lid}.direction")),
                        "min_travel_px": float(ln.get("min_travel_px", 40))})
        else:
            raise ValidationFailed(f"line {lid}: kind must be stop_line or direction", code="invalid_line")
    return out


def _side(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def segments_cross(p1: tuple[float, float], p2: tuple[float, float], a: tuple[float, float],
                   b: tuple[float, float]) -> bool:
    d1, d2 = _side(a, b, p1), _side(a, b, p2)
    d3, d4 = _side(p1, p2, a), _side(p1, p2, b)
    return d1 * d2 < 0 and d3 * d4 < 0


class SignalStates:
    """The latest state of each traffic signal, per camera (posted by the signal controller integration)."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], str] = {}

    def set(self, camera_id: str, signal: str, state: str) -> None:
        if state not in SIGNAL_STATES:
            raise ValidationFailed(f"signal state must be one of {', '.join(SIGNAL_STATES)}", code="invalid_signal")
        self.states[(camera_id, signal)] = state

    def get(self, camera_id: str, signal: str) -> str:
        return self.states.get((camera_id, signal), "off")


def evaluate(camera_id: str, lines: list[dict[str, Any]], track: Track, signals: SignalStates) -> list[Violation]:
    """Violations the track's latest movement commits (each line at most once per track)."""
    if len(track.points) < 2:
        return []
    out: list[Violation] = []
    (_, x0, y0), (_, x1, y1) = track.points[-2], track.points[-1]
    for ln in lines:
        if ln["id"] in track.fired:
            continue
        if ln["kind"] == "stop_line":
            a, b = tuple(ln["points"][0]), tuple(ln["points"][1])
            if not segments_cross((x0, y0), (x1, y1), a, b):   # type: ignore[arg-type]
                continue
            fwd = ln["forward"]
            if (x1 - x0) * fwd[0] + (y1 - y0) * fwd[1] <= 0:
                continue
            track.fired.add(ln["id"])      # crossed: only the crossing moment counts
            if signals.get(camera_id, ln["signal"]) == "red":
                out.append(Violation("red_light", ln["id"], track.id))
        elif ln["kind"] == "direction":
            poly = np.asarray(ln["zone"], dtype=np.float32).reshape(-1, 1, 2)
            inside = [(px, py) for _, px, py in track.points
                      if cv2.pointPolygonTest(poly, (float(px), float(py)), False) >= 0]
            if len(inside) < 2:
                continue
            dx, dy = inside[-1][0] - inside[0][0], inside[-1][1] - inside[0][1]
            travel = float(np.hypot(dx, dy))
            if travel < ln["min_travel_px"]:
                continue
            d = ln["direction"]
            norm = float(np.hypot(d[0], d[1])) or 1.0
            if (dx * d[0] + dy * d[1]) / (travel * norm) < -0.5:
                track.fired.add(ln["id"])
                out.append(Violation("wrong_way", ln["id"], track.id))
    return out
