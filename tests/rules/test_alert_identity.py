"""Alert events are named by what decided them: an engine that decides the same transitions again from the same
checkpoint and events (a replay after a crash, or a partition's old owner still running after its lease moved
to another node) produces the same event ids and episodes, so the bus and the alert store keep one copy."""

from __future__ import annotations

import orjson

from citydata.events import Event
from citydata.rules.instance import Instance
from tests.rules.helpers import Driver, rule

THRESHOLD = rule("heavy-rain", {"threshold": {"above": 30, "clear_below": 10}}, renotify="1m")
STEPS = [(0, 50), (1, 60), (2, 0), (3, 55), (4, 5), (5, 70), (6, 80), (7, 1)]


def identity(events: list[Event]) -> list[tuple[str, str, str | None, int | None]]:
    return [(e.kind, e.id, e.data.get("episode"), e.data.get("revision")) for e in events]


def test_two_engines_deciding_the_same_events_name_their_alerts_alike() -> None:
    a, b = Driver([THRESHOLD]), Driver([THRESHOLD])
    out_a, out_b = a.feed(1, STEPS), b.feed(1, STEPS)
    assert [e.kind for e in out_a] == ["alert.raised", "alert.raised", "alert.cleared", "alert.raised",
                                       "alert.cleared", "alert.raised", "alert.raised", "alert.cleared"]
    assert identity(out_a) == identity(out_b)
    assert len({e.id for e in out_a}) == len(out_a)                       # every transition its own id
    raises = [e for e in out_a if e.kind == "alert.raised"]
    assert [e.data["revision"] for e in raises] == [0, 1, 0, 0, 1]        # the raise, then its updates
    episodes = [e.data["episode"] for e in out_a]
    assert len(set(episodes)) == 3 and all(episodes)                      # three firing episodes
    clears = [e for e in out_a if e.kind == "alert.cleared"]
    assert [c.data["episode"] for c in clears] == [raises[1].data["episode"], raises[2].data["episode"],
                                                   raises[4].data["episode"]]


def test_an_engine_restored_from_a_checkpoint_decides_the_same_alert_events() -> None:
    whole = Driver([THRESHOLD])
    expected = whole.feed(1, STEPS)

    # one engine until step 3 (an episode is open), its instances saved as a checkpoint would save them
    first = Driver([THRESHOLD])
    before = first.feed(1, STEPS[:4])
    comp = first.engine.rules["heavy-rain"]
    saved = {key: orjson.dumps(inst.to_state()) for key, inst in comp.instances.items()}

    # the next owner restores them and replays the rest: its events are the ones the first would have sent
    second = Driver([THRESHOLD])
    restored = second.engine.rules["heavy-rain"]
    for key, raw in saved.items():
        restored.instances[key] = Instance.from_state(key, orjson.loads(raw))
    after = second.feed(1, STEPS[4:])
    assert identity(before + after) == identity(expected)
