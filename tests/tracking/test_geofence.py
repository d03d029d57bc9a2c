"""The geofence engine on the real Phuket geometry (shipped boundaries): no false exits at checkpoints and piers,
one exit over the Sarasin bridge, the accuracy circle, late batches, impossible speeds."""

from __future__ import annotations

import random

import pytest

from citydata.geo import Geography, distance_m, read_reference_city
from citydata.tracking.geofence import (
    INSIDE,
    OUTSIDE,
    Fence,
    FenceSet,
    Fix,
    GeofenceEngine,
    TravellerFences,
)
from tests.tracking.conftest import AO_CHALONG, HKT, RASSADA, SARASIN_TRACK, THA_CHATCHAI

T0 = 1_795_000_000.0
MIN = 60.0


@pytest.fixture(scope="module")
def geo() -> Geography:
    return Geography(read_reference_city("phuket"))


@pytest.fixture(scope="module")
def home(geo: Geography) -> Fence:
    p = geo.require("province:83")
    return Fence(p.id, p.name_en, p.geometry, 1500.0, home=True)


def engine(home: Fence, zones: list[Fence] | None = None) -> GeofenceEngine:
    return GeofenceEngine(FenceSet(home, zones or []), dwell_s=600, lateness_s=7200, still_outside_s=3600,
                          max_speed_kmh=300)


def started(eng: GeofenceEngine) -> TravellerFences:
    tf = TravellerFences()
    eng.start(tf, T0)
    return tf


def changes(transitions: list) -> list[tuple[str, str, str]]:
    return [(t.fence_id, t.old, t.new) for t in transitions if t.kind == "change"]


@pytest.mark.parametrize("where", [HKT, THA_CHATCHAI, RASSADA, AO_CHALONG, (98.4186, 8.0133), (98.3218, 7.7721)],
                         ids=["HKT", "THA_CHATCHAI", "RASSADA", "AO_CHALONG", "bang_rong_pier", "rawai_beach"])
def test_checkpoints_and_piers_never_exit(home: Fence, where: tuple[float, float]) -> None:
    eng = engine(home)
    tf = started(eng)
    rng = random.Random(5)
    out = []
    for i in range(48):          # a day of reports every 30 minutes, with 30 m GPS drift
        lon = where[0] + rng.gauss(0, 0.0003)
        lat = where[1] + rng.gauss(0, 0.0003)
        t = T0 + i * 30 * MIN
        out += eng.process(tf, [Fix(t, lon, lat, rng.uniform(5, 60))], t + 5).transitions
    assert changes(out) == []
    assert tf.states[home.id].state == INSIDE


def test_the_piers_lie_outside_the_raw_polygon(geo: Geography) -> None:
    # the reason for the tolerance: without it these would be exits
    phuket = geo.require("province:83").geometry
    assert distance_m(phuket, *RASSADA) > 500 and distance_m(phuket, *THA_CHATCHAI) > 100


def test_sarasin_bridge_exit_once_with_jitter(home: Fence) -> None:
    eng = engine(home)
    tf = started(eng)
    rng = random.Random(11)
    out = []
    t = T0
    for lon, lat in SARASIN_TRACK + SARASIN_TRACK[-3:] * 4:     # then stays around Khok Kloi
        for _ in range(3):                                       # three jittered fixes per point
            t += 4 * MIN
            fix = Fix(t, lon + rng.gauss(0, 0.0004), lat + rng.gauss(0, 0.0004), 25.0)
            out += eng.process(tf, [fix], t + 1).transitions
    assert changes(out) == [("province:83", INSIDE, OUTSIDE)]
    assert tf.states[home.id].state == OUTSIDE


def test_back_and_forth_on_the_bridge_does_not_flap(home: Fence) -> None:
    eng = engine(home)
    tf = started(eng)
    out = []
    t = T0
    for i in range(40):          # a driver on the bridge, GPS hopping 200 m either way
        t += 3 * MIN
        lon, lat = THA_CHATCHAI
        out += eng.process(tf, [Fix(t, lon, lat + (0.002 if i % 2 else -0.002), 30.0)], t).transitions
    assert changes(out) == []


def test_accuracy_circle_on_the_border_is_not_an_exit(home: Fence) -> None:
    # a point just outside the buffered fence: 20 m accuracy says outside, 2 km accuracy straddles the border
    lon, lat = THA_CHATCHAI
    while distance_m(home.test, lon, lat) < 300:     # walk north until 300 m beyond the tolerance buffer
        lon, lat = lon - 0.0002, lat + 0.0005
    d = distance_m(home.test, lon, lat)
    assert 300 <= d < 400
    for acc, expect in ((d + 100, []), (d + 400, []), (20.0, [("province:83", INSIDE, OUTSIDE)])):
        eng = engine(home)
        tf = started(eng)
        out = []
        for i in range(6):
            t = T0 + i * 10 * MIN
            out += eng.process(tf, [Fix(t, lon, lat, acc)], t).transitions
        assert changes(out) == expect, acc


def test_one_drifted_fix_is_cancelled_by_the_next(home: Fence) -> None:
    eng = engine(home)
    tf = started(eng)
    eng.process(tf, [Fix(T0, 98.3000, 8.1500, 10.0)], T0)                     # Thalang
    a = eng.process(tf, [Fix(T0 + 240, 98.2850, 8.2350, 10.0)], T0 + 241)     # a jump into Phang Nga: pending
    b = eng.process(tf, [Fix(T0 + 480, 98.3000, 8.1500, 10.0)], T0 + 481)     # back, within the dwell
    c = eng.tick(tf.states, T0 + 3600)
    assert changes(a.transitions + b.transitions + c) == []


def test_late_batch_same_outcome_as_in_order(home: Fence) -> None:
    inside = [Fix(T0 + i * 10 * MIN, 98.30 , 8.10 + i * 0.001, 10.0) for i in range(6)]
    outside = [Fix(T0 + (6 + i) * 10 * MIN, 98.28, 8.30 + i * 0.001, 10.0) for i in range(6)]
    now = T0 + 12 * 10 * MIN
    eng = engine(home)
    tf_a = started(eng)
    in_order = eng.process(tf_a, inside + outside, now).transitions
    tf_b = started(eng)
    first = eng.process(tf_b, outside, now).transitions
    late = eng.process(tf_b, inside, now + 60)
    assert changes(in_order) == changes(first) == [("province:83", INSIDE, OUTSIDE)]
    assert changes(late.transitions) == []                    # nothing new: no duplicate exit
    assert late.too_late == [] and len(late.accepted) == 6
    assert tf_a.states[home.id].state == tf_b.states[home.id].state == OUTSIDE


def test_late_batch_that_contradicts_an_exit_re_enters(home: Fence) -> None:
    eng = engine(home)
    tf = started(eng)
    eng.process(tf, [Fix(T0, 98.30, 8.10, 10.0)], T0)
    eng.process(tf, [Fix(T0 + 30 * MIN, 98.28, 8.30, 10.0)], T0 + 30 * MIN)  # a glitch far outside
    confirmed = eng.tick(tf.states, T0 + 45 * MIN)
    assert changes(confirmed) == [("province:83", INSIDE, OUTSIDE)]
    # the buffered fixes arrive: the phone was in Phuket right after the glitch
    late = eng.process(tf, [Fix(T0 + 32 * MIN, 98.30, 8.10, 10.0), Fix(T0 + 36 * MIN, 98.30, 8.101, 10.0)],
                       T0 + 50 * MIN)
    assert changes(late.transitions) == [("province:83", OUTSIDE, INSIDE)]
    assert tf.states[home.id].state == INSIDE


def test_fixes_older_than_the_lateness_window_are_not_replayed(home: Fence) -> None:
    eng = engine(home)
    tf = started(eng)
    eng.process(tf, [Fix(T0 + 5 * 3600, 98.30, 8.10, 10.0)], T0 + 5 * 3600)
    res = eng.process(tf, [Fix(T0 + 600, 98.28, 8.30, 10.0)], T0 + 5 * 3600)
    assert res.too_late and not res.accepted and changes(res.transitions) == []


def test_impossible_speed_never_moves_the_state(home: Fence) -> None:
    eng = engine(home)
    tf = started(eng)
    eng.process(tf, [Fix(T0, 98.2913, 7.8875, 10.0)], T0)
    res = eng.process(tf, [Fix(T0 + 120, 100.5018, 13.7563, 10.0)], T0 + 120)     # Bangkok two minutes later
    assert res.too_fast and not res.accepted
    assert changes(eng.tick(tf.states, T0 + 7200)) == []
    assert tf.states[home.id].state == INSIDE


def test_duplicates_are_ignored(home: Fence) -> None:
    eng = engine(home)
    tf = started(eng)
    fix = Fix(T0 + 60, 98.2913, 7.8875, 10.0)
    eng.process(tf, [fix], T0 + 60)
    res = eng.process(tf, [fix, fix], T0 + 70)
    assert len(res.duplicates) == 2 and not res.accepted


def test_operator_zone_entered_and_left_through_the_strtree(geo: Geography, home: Fence) -> None:
    import shapely

    beach = Fence("zone:patong_beach", "Patong beach (closed)", shapely.Point(98.2913, 7.8875).buffer(0.004))
    others = [Fence(f"zone:z{i}", f"z{i}", shapely.Point(98.35 + i * 0.001, 7.95).buffer(0.0004)) for i in range(50)]
    eng = engine(home, [beach, *others])
    tf = started(eng)
    out = []
    for i, (lon, lat) in enumerate([(98.3880, 7.8840), (98.2913, 7.8875), (98.2915, 7.8877), (98.2933, 7.8478),
                                    (98.2933, 7.8479)]):
        t = T0 + i * 15 * MIN
        out += eng.process(tf, [Fix(t, lon, lat, 10.0)], t).transitions
    assert changes(out) == [("zone:patong_beach", "unknown", INSIDE), ("zone:patong_beach", INSIDE, OUTSIDE)]


def test_the_window_keeps_at_most_window_fixes_whatever_the_ping_rate(home: Fence) -> None:
    """A phone pinging every 5 s keeps ``window_fixes`` fixes, not two hours of them; a late fix older than the
    oldest kept is flagged late and not replayed (the snapshot already holds newer ones), one inside is replayed;
    and fixes in order give the same exit as with an unbounded window."""
    capped = GeofenceEngine(FenceSet(home), dwell_s=600, lateness_s=7200, still_outside_s=3600, max_speed_kmh=300,
                            window_fixes=8)
    wide = GeofenceEngine(FenceSet(home), dwell_s=600, lateness_s=7200, still_outside_s=3600, max_speed_kmh=300,
                          window_fixes=10_000)
    track = [Fix(T0 + i * 5, 98.30, 8.10 + i * 0.0001, 10.0) for i in range(200)]             # north, inside
    track += [Fix(T0 + 3000 + i * 5, 98.28, 8.30 + i * 0.0001, 10.0) for i in range(200)]    # over the bridge
    out: dict[str, list[tuple[str, str, str]]] = {"capped": [], "wide": []}
    tfs = {"capped": started(capped), "wide": started(wide)}
    for fix in track:
        for name, eng in (("capped", capped), ("wide", wide)):
            out[name] += changes(eng.process(tfs[name], [fix], fix.t).transitions)
            assert name == "wide" or len(tfs[name].window) <= 8
    assert out["capped"] == out["wide"] == [("province:83", INSIDE, OUTSIDE)]
    assert len(tfs["wide"].window) == 400
    tf = tfs["capped"]
    oldest = tf.window[0].fix.t
    assert tf.folded_t == oldest - 5                       # the newest fix folded into the snapshot
    now = track[-1].t + 5
    old = capped.process(tf, [Fix(oldest - 7.5, 98.28, 8.3199, 10.0)], now)      # before a folded fix
    assert old.too_late and not old.accepted and len(tf.window) == 8
    between = capped.process(tf, [Fix(oldest - 2.5, 98.28, 8.3199, 10.0)], now)  # after every folded fix
    assert len(between.accepted) == 1 and not between.too_late and len(tf.window) == 8
    assert changes(between.transitions) == [] and tf.states[home.id].state == OUTSIDE


def test_zone_sets_are_shared_between_fixes(home: Fence) -> None:
    import numpy as np
    import shapely

    a = Fence("zone:a", "a", shapely.Point(98.30, 7.90).buffer(0.01))
    b = Fence("zone:b", "b", shapely.Point(98.305, 7.90).buffer(0.01))
    fences = FenceSet(home, [a, b])
    x = np.array([98.30, 98.30, 98.303, 98.303, 98.50, 98.51])
    y = np.array([7.90, 7.9001, 7.90, 7.9001, 7.50, 7.51])
    sets = fences.zones_containing(x, y)
    assert sets[0] == sets[1] == {"zone:a", "zone:b"}
    assert sets[2] == sets[3] == {"zone:a", "zone:b"} and sets[2] is sets[3]
    assert sets[4] == sets[5] == frozenset() and sets[4] is sets[5]
    again = fences.zones_containing(x[2:4], y[2:4])
    assert again[0] is sets[2]
