"""The session tracker alone: repeats, out-of-order records, silence and the hours a session covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from citydata.wifi.model import WifiEvent
from citydata.wifi.sessions import SessionTracker

T0 = datetime(2026, 11, 21, 3, 50, tzinfo=UTC)
H = int(T0.timestamp()) // 3600 * 3600


def ev(kind: str, minutes: float, session_time: int | None = None, key: str = "sK") -> WifiEvent:
    return WifiEvent(at=T0 + timedelta(minutes=minutes), kind=kind, hotspot_id="wifi-kata-001", devices={0: "d1"},
                     randomised=False, session_key=key, session_time_s=session_time)


def totals(tracker: SessionTracker) -> dict[int, tuple[int, float]]:
    return {h: (p.sessions, round(p.dwell_s, 3)) for (h, _, _), p in sorted(tracker.delta.items())}


def test_a_session_over_an_hour_boundary_repeats_and_disorder() -> None:
    tr = SessionTracker(lambda h: 0, timeout_s=7200)
    tr.apply(ev("interim", 20, 1200), "kata", "830106")     # first seen: an Interim-Update (start = 03:50)
    tr.apply(ev("start", 0), "kata", "830106")              # the Start, late: a repeat
    tr.apply(ev("stop", 30, 1800), "kata", "830106")
    tr.apply(ev("stop", 30, 1800), "kata", "830106")        # retransmitted
    tr.apply(ev("interim", 10, 600), "kata", "830106")      # an older Interim after the Stop
    assert totals(tr) == {H: (1, 600.0), H + 3600: (0, 1200.0)} and tr.repeats == 3 and not tr.open


def test_a_session_closed_for_silence_goes_on_without_counting_twice() -> None:
    tr = SessionTracker(lambda h: 0, timeout_s=600)
    tr.apply(ev("start", 0), "kata", "830106")
    tr.apply(ev("interim", 5, 300), "kata", "830106")
    assert tr.expire((T0 + timedelta(minutes=20)).timestamp()) == 1 and not tr.open
    tr.apply(ev("stop", 25, 1500), "kata", "830106")        # it was on all along
    assert totals(tr) == {H: (1, 600.0), H + 3600: (0, 900.0)}


def test_association_pairs() -> None:
    tr = SessionTracker(lambda h: 0)
    tr.apply(ev("stop", 1, key="aK"), "kata", "")           # a disassociation without association: an instant
    tr.apply(ev("start", 2, key="aK"), "kata", "")
    tr.apply(ev("start", 4, key="aK"), "kata", "")          # re-association without disassociation: a new session
    tr.apply(ev("stop", 9, key="aK"), "kata", "")
    assert totals(tr) == {H: (3, 300.0)}
