"""Three ``citydata serve`` nodes on a private NATS and a PostgreSQL schema: events of many keys are each
processed once and in per-key order, a node that joins gets partitions, a node killed with SIGKILL (the
leader) has its partitions and its leader work taken over with the rule state restored, and no alert is lost
or raised twice."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import nats
import pytest
import yaml

from citydata.alerts.service import ACTIVE
from citydata.bus.nats import NatsBus
from citydata.cluster.local import LocalCluster
from citydata.events import Event

RULE = """
id: cluster-level
name: Cluster test level
source: {events: test.level}
group_by: key
condition:
  threshold: {above: 50, clear_below: 10, field: level}
alert:
  kind: test.level_high
  severity: minor
  category: Other
  urgency: expected
  certainty: observed
  message: "level {value} at {subject}"
"""
KEYS = [f"gauge-{i:02d}" for i in range(30)]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
PARTITIONS = 8


def level_events(steps: range) -> list[Event]:
    """Per key, step i has level 100 (even i: raises) or 0 (odd i: clears); keys interleaved."""
    return [Event(kind="test.level", key=key, time=T0 + timedelta(seconds=i), data={"level": 100 if i % 2 == 0
                                                                                    else 0, "step": i})
            for i in steps for key in KEYS]


async def publish(url: str, events: list[Event]) -> None:
    bus = NatsBus(url, stream="CITYDATA", prefix="citydata", queue_size=1000, partitions=PARTITIONS)
    await bus.start()
    try:
        await bus.publish_many(events)
    finally:
        await bus.stop()


async def alert_log(url: str, expected: int, timeout: float) -> list[tuple[str, str, str]]:
    """(key, kind, event id) of every alert event of the test rule in the stream, in stream order, once at
    least ``expected`` are there (or the timeout passed)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        while True:
            out: list[tuple[str, str, str]] = []
            sub = await js.subscribe("citydata.p.*.alert.>", ordered_consumer=True)
            try:
                while True:
                    try:
                        msg = await sub.next_msg(timeout=0.5)
                    except TimeoutError:
                        break
                    event = Event.from_bytes(msg.data)
                    if event.data.get("rule_id") == "cluster-level":
                        step = int((event.time - T0).total_seconds())
                        out.append((event.key.split(":", 1)[1], f"{event.kind}@{step}", event.id))
            finally:
                await sub.unsubscribe()
            if len(out) >= expected or time.monotonic() > deadline:
                return out
            await asyncio.sleep(0.5)
    finally:
        await nc.close()


def check_alerts(log: list[tuple[str, str, str]], steps: int) -> None:
    per_key: dict[str, list[str]] = defaultdict(list)
    for key, kind, _ in log:
        per_key[key].append(kind)
    steps_seen = {k: [int(x.split("@")[1]) for x in v] for k, v in per_key.items()}
    per_key = {k: [x.split("@")[0] for x in v] for k, v in per_key.items()}
    ids = [i for _, _, i in log]
    assert len(ids) == len(set(ids)), "an alert event was stored twice"
    expected = ["alert.raised" if i % 2 == 0 else "alert.cleared" for i in range(steps)]
    wrong = {k: v for k, v in per_key.items() if v != expected}
    sample = [(k, steps_seen[k]) for k in list(wrong)[:3]]
    assert not wrong and set(per_key) == set(KEYS), f"per-key alert steps differ: {sample}"


def held(cluster: LocalCluster, name: str) -> tuple[set[int], bool]:
    detail = cluster.cluster_view(name)
    parts = detail.split(" partitions ", 1)[1].split(" of ", 1)[0]
    return ({int(p) for p in parts.split(",")} if parts != "-" else set()), " leader " in detail


def wait_balanced(cluster: LocalCluster, names: list[str], timeout: float = 30.0) -> dict[str, set[int]]:
    """Until the named nodes hold every partition between them, once each, each at least one, one leader."""
    deadline = time.monotonic() + timeout
    view: dict[str, tuple[set[int], bool]] = {}
    while time.monotonic() < deadline:
        view = {n: held(cluster, n) for n in names}
        parts = [p for ps, _ in view.values() for p in ps]
        if sorted(parts) == list(range(PARTITIONS)) and all(ps for ps, _ in view.values()) \
                and sum(lead for _, lead in view.values()) == 1:
            return {n: ps for n, (ps, _) in view.items()}
        time.sleep(0.3)
    raise AssertionError(f"partitions not balanced over {names}: {view}")


def load_rule(cluster: LocalCluster, node: str) -> None:
    """Create the rule over the API of a node, as the admin (the change reaches every partition's engine)."""
    password = (cluster.data_dir / "admin_password").read_text(encoding="utf-8").strip()
    with httpx.Client(base_url=cluster.nodes[node].url, timeout=30) as client:
        r = client.post("/api/v1/auth/login", json={"username": "admin", "password": password})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        r = client.post("/api/v1/rules", json=yaml.safe_load(RULE), headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text


@pytest.mark.timeout(180)
def test_three_nodes_join_kill_and_exactly_once_alerts(cluster: LocalCluster, private_nats: str, pg_url: str,
                                                       pg_schema: str) -> None:
    cluster.start("n1")
    cluster.start("n2")
    first = wait_balanced(cluster, ["n1", "n2"])
    load_rule(cluster, "n1")

    asyncio.run(publish(private_nats, level_events(range(0, 4))))
    log = asyncio.run(alert_log(private_nats, 4 * len(KEYS), 30))
    check_alerts(log, 4)

    # a third node joins: it gets partitions, each partition still has one owner
    cluster.start("n3")
    after_join = wait_balanced(cluster, ["n1", "n2", "n3"])
    assert after_join["n3"] and all(after_join[n] <= first[n] for n in ("n1", "n2"))

    # the leader is killed while events are in flight: its partitions and its leader work move
    leader = next(n for n in ("n1", "n2", "n3") if held(cluster, n)[1])
    asyncio.run(publish(private_nats, level_events(range(4, 6))))
    cluster.kill(leader)
    asyncio.run(publish(private_nats, level_events(range(6, 10))))
    survivors = [n for n in ("n1", "n2", "n3") if n != leader]
    wait_balanced(cluster, survivors)

    log = asyncio.run(alert_log(private_nats, 10 * len(KEYS), 60))
    check_alerts(log, 10)

    # the IOC (on whichever node leads now) stored each raise once: 5 alerts per key, each opened once and cleared
    rows = asyncio.run(ioc_alerts(pg_url, pg_schema, 5 * len(KEYS)))
    assert len(rows) == 5 * len(KEYS) and all(r["occurrences"] == 1 for r in rows), \
        asyncio.run(duplicate_report(pg_url, pg_schema, asyncio.run(alert_log(private_nats, 10**9, 0))))
    assert all(r["state"] not in ACTIVE for r in rows), {r["state"] for r in rows}


async def ioc_alerts(pg_url: str, schema: str, expected: int, timeout: float = 30.0) -> list[Any]:
    conn = await asyncpg.connect(pg_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = await conn.fetch(f'SELECT dedup_key, state, occurrences FROM "{schema}".alerts '
                                    "WHERE rule_id = 'cluster-level'")
            settled = len(rows) >= expected and all(r["state"] not in ACTIVE for r in rows)
            if settled or time.monotonic() > deadline:
                return list(rows)
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def duplicate_report(pg_url: str, schema: str, log: list[tuple[str, str, str]]) -> str:
    """On failure: the alert rows of the keys stored more than once (or updated), with the events behind them
    and the alert events of those keys in the stream, so a failure says which mechanism duplicated them."""
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch(f'SELECT id, dedup_key, state, occurrences, last_event_id, observed_at, opened_at, '
                                f'cleared_at FROM "{schema}".alerts WHERE rule_id = \'cluster-level\' ORDER BY id')
    finally:
        await conn.close()
    per_key: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        per_key[r["dedup_key"]].append(r)
    odd = {k: v for k, v in per_key.items() if len(v) != 5 or any(r["occurrences"] != 1 for r in v)}
    lines = [f"{len(rows)} rows, {len(odd)} keys odd"]
    for key, key_rows in list(odd.items())[:4]:
        lines.append(f"{key}:")
        lines += [f"  row {r['id']} {r['state']} occ={r['occurrences']} event={r['last_event_id']} "
                  f"observed={r['observed_at']:%H:%M:%S} opened={r['opened_at']:%H:%M:%S.%f} "
                  f"cleared={r['cleared_at'] and format(r['cleared_at'], '%H:%M:%S.%f')}" for r in key_rows]
        subject = key.split(":", 1)[1]
        lines.append(f"  stream: {[(k, i) for s, k, i in log if s == subject]}")
    return "\n".join(lines)
