"""Every condition kind on a real engine driven by hand with a DrivenClock: fires, does not fire, clears,
deduplicates, and gives the same alerts for out-of-order events within the lateness."""

from __future__ import annotations

import random

import pytest

from tests.rules.helpers import Driver, kinds, rule

RAISED, CLEARED = "alert.raised", "alert.cleared"


# -- threshold -------------------------------------------------------------------------------------------------

def test_threshold_fires_clears_with_hysteresis() -> None:
    d = Driver([rule("t", {"threshold": {"above": 10, "clear_below": 5}}, renotify="2h")])
    assert d.feed(1, [(0, 3), (10, 9.9)]) == []                     # below: nothing
    raised = d.feed(1, [(20, 12)])
    assert kinds(raised) == [RAISED]
    assert raised[0].key == "t:1" and raised[0].data["data"]["value"] == 12
    assert d.feed(1, [(30, 7), (40, 11), (50, 6)]) == []            # inside the band: still one alert
    assert kinds(d.feed(1, [(60, 4.9)])) == [CLEARED]


def test_threshold_flapping_sensor_gives_one_alert_updated_not_a_hundred() -> None:
    d = Driver([rule("t", {"threshold": {"above": 10, "clear_below": 5}}, renotify="30m")])
    d.feed(1, [(i, 11 if i % 2 else 9) for i in range(100)])        # flaps 9/11 around the level
    raised = [e for e in d.out if e.kind == RAISED]
    assert len({e.key for e in raised}) == 1
    assert kinds(d.out).count(CLEARED) == 0
    # one raise, then updates at most every 30 min of event time over ~100 min
    assert 1 < len(raised) <= 1 + 100 // 30
    assert [e.data["data"]["updates"] for e in raised] == list(range(len(raised)))


def test_threshold_below_and_late_value_ignored() -> None:
    d = Driver([rule("t", {"threshold": {"below": 4, "clear_above": 4.5}}, renotify="2h")])
    assert kinds(d.feed(1, [(0, 3.5)])) == [RAISED]
    assert d.feed(1, [(-10, 9)]) == []                               # older than the newest: ignored
    assert d.engine.limits.late_points == 1
    assert kinds(d.feed(1, [(10, 4.6)])) == [CLEARED]


def test_threshold_refuses_bad_hysteresis() -> None:
    from citydata.rules import RuleInvalid, parse_rule

    with pytest.raises(RuleInvalid) as err:
        parse_rule(rule("t", {"threshold": {"above": 10, "clear_below": 12}}))
    assert err.value.path == "condition.threshold.clear_below"


# -- aggregate --------------------------------------------------------------------------------------------------

def test_aggregate_sum_over_window_fires_and_clears_as_window_slides() -> None:
    d = Driver([rule("rain", {"aggregate": {"function": "sum", "window": "1h", "above": 30, "clear_below": 15,
                                            "name": "rain_1h"}},
                     alert={"kind": "env.test", "severity": "minor", "category": "Met",
                            "message": "{rain_1h:.1f} mm"})])
    assert d.feed(1, [(0, 10), (10, 10), (20, 10)]) == []           # 30 mm: not above
    raised = d.feed(1, [(30, 5)])                                   # 35 mm
    assert kinds(raised) == [RAISED] and raised[0].data["message"] == "35.0 mm"
    assert d.feed(1, [(70, 0)]) == []                               # 0..10 fell out: 15 mm, not below 15
    assert kinds(d.feed(1, [(80, 0)])) == [CLEARED]                 # 5 mm


def test_aggregate_window_empties_on_the_clock_timer() -> None:
    d = Driver([rule("rain", {"aggregate": {"function": "sum", "window": "1h", "above": 30}})])
    d.clock.set(d.at(0))
    assert kinds(d.feed(1, [(1, 40)])) == [RAISED]
    assert d.tick(30) == []                                         # still inside the window
    assert kinds(d.tick(62)) == [CLEARED]                           # no events: the timer clears it


def test_aggregate_mean_below_with_min_points() -> None:
    d = Driver([rule("do", {"aggregate": {"function": "mean", "window": "1h", "below": 4.0, "clear_above": 4.5,
                                          "min_points": 2}}, source={"observed_property": "dissolved_oxygen"})])
    assert d.feed(3, [(0, 3.0)]) == []                              # one point is not enough
    assert kinds(d.feed(3, [(10, 3.8)])) == [RAISED]
    assert d.feed(3, [(20, 4.4)]) == []                             # mean 3.73
    assert d.feed(1, [(25, 0)]) == []                               # another property: not this rule
    assert kinds(d.feed(3, [(80, 6.0), (85, 6.0)])) == [CLEARED]


def test_aggregate_bounded_points_are_counted() -> None:
    d = Driver([rule("n", {"aggregate": {"function": "count", "window": "1d", "above": 1000}})], max_points=50)
    d.feed(1, [(i * 0.1, 1) for i in range(120)])
    assert d.engine.limits.dropped_points == 70
    assert d.out == []                                              # a bounded window never reaches 1000


# -- rate of change ---------------------------------------------------------------------------------------------

def test_rate_of_change_rise_within_window() -> None:
    d = Driver([rule("lvl", {"rate_of_change": {"window": "30m", "rise": 0.3, "clear_below": 0.1}},
                     source={"observed_property": "water_level"})])
    assert d.feed(2, [(0, 1.0), (10, 1.1), (20, 1.2)]) == []        # +0.2
    assert kinds(d.feed(2, [(25, 1.35)])) == [RAISED]               # +0.35 from the bottom
    assert d.feed(2, [(40, 1.4)]) == []                             # +0.25 within 30 min: hysteresis holds
    assert kinds(d.feed(2, [(70, 1.4)])) == [CLEARED]               # flat


def test_rate_of_change_slow_rise_does_not_fire() -> None:
    d = Driver([rule("lvl", {"rate_of_change": {"window": "30m", "rise": 0.3}},
                     source={"observed_property": "water_level"})])
    d.feed(2, [(i * 10, 1.0 + 0.05 * i) for i in range(20)])         # 0.15 per 30 min
    assert d.out == []


# -- absence ------------------------------------------------------------------------------------------------------

def test_absence_fires_on_the_timer_and_clears_on_next_report() -> None:
    d = Driver([rule("silent", {"absence": {"for": "30m", "name": "silent_min"}}, group_by="device",
                     source={"events": ["observation.received", "device.heartbeat"]},
                     alert={"kind": "device.silent", "severity": "minor", "category": "Infra",
                            "message": "{subject} silent {silent_min:.0f} min"})])
    d.clock.set(d.at(0))
    d.feed(1, [(0, 0.0)])
    assert d.tick(20) == [] and d.tick(30) == []
    raised = d.tick(31)
    assert kinds(raised) == [RAISED] and raised[0].key == "silent:rain-01"
    assert raised[0].data["message"] == "rain-01 silent 31 min"
    assert d.tick(45) == []                                          # still silent: no second alert
    from citydata.events import make_event

    back = d.send(make_event("device.heartbeat", "rain-01", d.at(46), {"device_id": "rain-01"}))
    assert kinds(back) == [CLEARED]


def test_absence_with_lateness_waits_for_the_lateness() -> None:
    d = Driver([rule("silent", {"absence": {"for": "30m"}}, group_by="device",
                     source={"events": ["observation.received"]})], lateness=120)
    d.clock.set(d.at(0))
    d.feed(1, [(0, 0.0)])
    assert d.tick(31) == []                                          # 31 min - 2 min lateness: not yet
    assert kinds(d.tick(33)) == [RAISED]


# -- geofence ------------------------------------------------------------------------------------------------------

def _pos(d: Driver, minutes: float, lon: float, lat: float, who: str = "trv-1") -> object:
    from citydata.events import Event

    return Event(kind="tracking.position", key=who, time=d.at(minutes),
                 data={"traveller_id": who, "lon": lon, "lat": lat})


def test_geofence_outside_a_place_with_buffer() -> None:
    d = Driver([rule("fence", {"geofence": {"place": "province:83", "when": "outside", "buffer_m": 2000}},
                     source={"events": "tracking.position"}, group_by="traveller")])
    assert d.send(_pos(d, 0, 98.33, 7.95), _pos(d, 1, 98.30, 8.10)) == []      # Phuket town, the airport
    out = d.send(_pos(d, 2, 98.52, 8.45))                                       # Phang Nga, well outside
    assert kinds(out) == [RAISED] and out[0].key == "fence:trv-1"
    assert out[0].data["location"] == {"type": "Point", "coordinates": [98.52, 8.45]}
    assert d.send(_pos(d, 1.5, 98.33, 7.95)) == []                              # late position: ignored
    assert kinds(d.send(_pos(d, 3, 98.33, 7.95))) == [CLEARED]


def test_geofence_unknown_place_is_refused_with_its_path() -> None:
    from citydata.rules import RuleInvalid

    with pytest.raises(RuleInvalid) as err:
        Driver([rule("fence", {"all": [{"geofence": {"place": "province:99"}}]},
                     source={"events": "tracking.position"})])
    assert err.value.path == "condition.all[0].geofence.place"


# -- event match ---------------------------------------------------------------------------------------------------

def test_event_match_watchlist_hits_one_alert_per_subject_then_hold_expires() -> None:
    from citydata.events import Event

    d = Driver([rule("wl", {"event_match": {"event": "vision.watchlist_hit", "data": {"watchlist": "wanted"},
                                            "hold": "30m", "name": "hits"}},
                     source={"events": "vision.*"}, group_by="key", renotify="5m")])
    d.clock.set(d.at(0))

    def hit(minutes: float, subject: str, watchlist: str = "wanted") -> Event:
        return Event(kind="vision.watchlist_hit", key=subject, time=d.at(minutes),
                     data={"subject_id": subject, "camera_id": "cam-7", "watchlist": watchlist})

    assert d.send(hit(0, "s1", "missing")) == []                   # another list: no match
    assert kinds(d.send(hit(1, "s1"))) == [RAISED]
    assert d.send(hit(2, "s1")) == []                                # within renotify: no update
    update = d.send(hit(7, "s1"))
    assert kinds(update) == [RAISED] and update[0].data["data"]["updates"] == 1
    assert len(update[0].data["evidence"]) == 3
    assert kinds(d.send(hit(8, "s2"))) == [RAISED]                  # another subject: another alert
    assert d.tick(36.5) == []                                        # s1 held 30 min after its last hit
    assert kinds(d.tick(37.5)) == [CLEARED]
    assert kinds(d.tick(38.5)) == [CLEARED]


def test_event_match_clear_on() -> None:
    from citydata.events import Event

    d = Driver([rule("od", {"event_match": {"event": "tracking.overdue", "clear_on": "tracking.overdue_cleared",
                                            "hold": "7d"}},
                     source={"events": "tracking.*"}, group_by="traveller")])
    ev = {"traveller_id": "t1", "last_seen_at": "x", "overdue_by_s": 60}
    assert kinds(d.send(Event(kind="tracking.overdue", key="t1", time=d.at(0), data=ev))) == [RAISED]
    assert kinds(d.send(Event(kind="tracking.overdue_cleared", key="t1", time=d.at(5),
                              data={"traveller_id": "t1"}))) == [CLEARED]


# -- all / any -----------------------------------------------------------------------------------------------------

FLOOD = {"all": [
    {"any": [{"aggregate": {"name": "rain_1h", "function": "sum", "window": "1h", "above": 30,
                            "where": {"observed_property": "precipitation"}}},
             {"aggregate": {"name": "rain_24h", "function": "sum", "window": "24h", "above": 90,
                            "where": {"observed_property": "precipitation"}}}]},
    {"rate_of_change": {"name": "rise", "window": "30m", "rise": 0.3,
                        "where": {"observed_property": "water_level"}}}]}


def flood_rule() -> dict[str, object]:
    return rule("flood", FLOOD, group_by="zone",
                source={"observed_property": ["precipitation", "water_level"]},
                alert={"kind": "env.flood_risk", "severity": "severe", "category": "Met",
                       "message": "{zone_name}: {rain_1h:.0f} mm/1h, +{rise:.2f} m",
                       "cap_draft": {"event": "Flash flood", "headline_en": "Flash flood risk in {zone_name}"}})


def test_all_any_per_zone_needs_rain_and_rise() -> None:
    d = Driver([flood_rule()])
    assert d.feed(1, [(0, 20), (10, 15)]) == []                     # rain alone
    assert d.feed(4, [(0, 60)]) == []                               # rain in another zone
    out = d.feed(2, [(0, 1.0), (15, 1.4)])                          # + a level rise in Patong
    assert kinds(out) == [RAISED, "cap.draft_requested"]
    assert out[0].key == "flood:subdistrict:830202"
    assert out[0].data["zone_id"] == "subdistrict:830202"
    assert out[0].data["message"] == "Pa Tong: 35 mm/1h, +0.40 m"
    assert out[1].data["area_place_ids"] == ["subdistrict:830202"]
    assert kinds(d.feed(2, [(50, 1.4)])) == [CLEARED]               # level flat for 30 min


# -- out of order within the lateness ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_out_of_order_within_lateness_gives_the_in_order_alerts(seed: int) -> None:
    rng = random.Random(seed)
    rain = [(m, rng.choice([0, 0, 2, 8, 15])) for m in range(0, 600, 5)]
    level = [(m, 1.0 + 0.4 * (m % 120 > 60) + rng.random() * 0.05) for m in range(0, 600, 5)]
    events_in_order = sorted([(m, 1, v) for m, v in rain] + [(m, 2, v) for m, v in level])

    ref = Driver([flood_rule()], lateness=600)
    ref.send(*[ref.obs(s, m, v) for m, s, v in events_in_order])
    ref.engine.release(float("inf"))
    ref._collect()
    assert ref.transitions(), "the scenario must raise alerts"

    shuffled = list(events_in_order)
    # displace each event by up to 8 minutes (lateness is 10 min)
    shuffled.sort(key=lambda e: e[0] + rng.uniform(0, 8))
    d = Driver([flood_rule()], lateness=600)
    d.send(*[d.obs(s, m, v) for m, s, v in shuffled])
    d.engine.release(float("inf"))
    d._collect()
    assert d.transitions() == ref.transitions()
    assert [e.data.get("message") for e in d.out] == [e.data.get("message") for e in ref.out]
    assert d.engine.stats.late_events == 0



def test_events_later_than_lateness_are_counted_and_applied() -> None:
    d = Driver([rule("t", {"threshold": {"above": 10}})], lateness=60)
    d.feed(1, [(0, 1), (5, 1)])                                     # watermark 5 min: up to 4 min released
    assert kinds(d.feed(1, [(1, 50)])) == [RAISED]                  # 3 min too late: counted, applied
    assert d.engine.stats.late_events == 1
    assert kinds(d.feed(1, [(7, 1)])) == [CLEARED]                  # releases the 5-min value: clears
