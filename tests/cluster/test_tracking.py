"""Tourist tracking partitioned by traveller over a 3-node cluster (private NATS, fresh PostgreSQL schema).

Travellers' pings go to every node, one node is killed with SIGKILL in the middle of the run and the clients
retry on another node; afterwards every traveller's province exit and return are in the stream once each, in
the traveller's order, the silent travellers are overdue exactly once, the rules raised each alert once (stream
and IOC), and a node that is not the leader serves the tracking reads from the shared store.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import nats
import pytest

from citydata.cluster.local import LocalCluster
from citydata.cluster.partition import partition_of
from citydata.events import Event
from tests.cluster.test_cluster import PARTITIONS, held, wait_balanced

MOVERS, SILENT = 9, 3
INSIDE = (98.390, 7.885)          # Phuket town
OUTSIDE = (98.525, 8.450)         # Phang Nga town, 60 km north of the province
PATH = [INSIDE, INSIDE, OUTSIDE, OUTSIDE, OUTSIDE, INSIDE, INSIDE, INSIDE]
LIMIT_S = 2 * 300                 # overdue after 2 report intervals (300 s) + 0 grace
TRACKING_ENV = {"CITYDATA_TRACKING_REPORT_INTERVAL_S": "300", "CITYDATA_TRACKING_OVERDUE_GRACE_S": "0",
                "CITYDATA_TRACKING_OVERDUE_CHECK_S": "0.5", "CITYDATA_TRACKING_DWELL_S": "0",
                "CITYDATA_TRACKING_MAX_SPEED_KMH": "100000"}


def arrival(n: int, at: datetime) -> dict[str, Any]:
    return {"checkpoint": "HKT", "arrived_at": at.isoformat(),
            "traveller": {"name": f"Cluster Traveller {n}", "passport_no": f"C02X00T4{n:02d}", "nationality": "DEU",
                          "birth_date": "1990-01-31", "phone": f"+4915123457{n:02d}"},
            "screening": {"health": "pass", "test_result": "negative", "vaccinated": True, "goods": "cleared"},
            "hotel_id": "hotel-patong-1", "consent": {"tracking": True, "at": at.isoformat()}}


class Clients:
    """HTTP to the live nodes; a request that finds its node dead is sent again to the next one."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.lock = threading.Lock()
        self.retries = 0

    def request(self, start: int, method: str, path: str, **kw: Any) -> httpx.Response:
        names = sorted(self.cluster.nodes)
        last: Exception | None = None
        for i in range(len(names) * 3):
            node = self.cluster.nodes[names[(start + i) % len(names)]]
            if not node.alive():
                continue
            try:
                r = httpx.request(method, f"{node.url}{path}", timeout=15, **kw)
            except httpx.HTTPError as err:    # killed under us: no answer, so send it again elsewhere
                last = err
            else:
                if r.status_code < 500:
                    return r
                last = RuntimeError(f"{r.status_code} {r.text}")
            with self.lock:
                self.retries += 1
            time.sleep(0.2)
        raise AssertionError(f"{method} {path} failed on every node: {last}")


async def stream_events(url: str, subject: str) -> list[Event]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        out: list[Event] = []
        sub = await js.subscribe(subject, ordered_consumer=True)
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except TimeoutError:
                    return out
                out.append(Event.from_bytes(msg.data))
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


async def ioc_rows(pg_url: str, schema: str) -> list[Any]:
    conn = await asyncpg.connect(pg_url)
    try:
        return list(await conn.fetch(f'SELECT dedup_key, rule_id, state, occurrences FROM "{schema}".alerts '
                                     "WHERE rule_id IN ('tracking-left-zone', 'tracking-overdue')"))
    finally:
        await conn.close()


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {value}")


@pytest.mark.timeout(240)
def test_tracking_partitioned_over_three_nodes_with_a_kill(cluster: LocalCluster, private_nats: str, pg_url: str,
                                                           pg_schema: str) -> None:
    cluster.env.update(TRACKING_ENV)
    for name in ("n1", "n2", "n3"):
        cluster.start(name)
    wait_balanced(cluster, ["n1", "n2", "n3"])
    clients = Clients(cluster)
    password = (cluster.data_dir / "admin_password").read_text(encoding="utf-8").strip()
    r = clients.request(0, "POST", "/api/v1/auth/login", json={"username": "admin", "password": password})
    admin = {"Authorization": f"Bearer {r.json()['access_token']}"}

    now = datetime.now(UTC).replace(microsecond=0)
    movers: dict[str, str] = {}       # traveller -> device token
    silent: list[str] = []
    for n in range(MOVERS + SILENT):
        # movers arrived 5 minutes ago (overdue only in 5 minutes), the silent ones 10 s short of overdue
        at = now - timedelta(seconds=300 if n < MOVERS else LIMIT_S - 10)
        r = clients.request(n, "POST", "/api/v1/tracking/arrivals", json=arrival(n, at), headers=admin)
        assert r.status_code == 201, r.text
        tid = r.json()["traveller_id"]
        if n >= MOVERS:
            silent.append(tid)
            continue
        r = clients.request(n + 1, "POST", "/api/v1/tracking/enrol",
                            json={"enrolment_code": r.json()["enrolment_code"]})
        assert r.status_code == 200, r.text
        movers[tid] = r.json()["device_token"]

    sent: dict[str, int] = defaultdict(int)

    def walk(i: int, tid: str) -> int:
        """One ping per request, in the traveller's order, each to the next node (fixes 30 s apart)."""
        for j, (lon, lat) in enumerate(PATH):
            t = now - timedelta(seconds=290) + timedelta(seconds=30 * j)
            r = clients.request(i + j, "POST", "/api/v1/tracking/pings",
                                json={"t": t.isoformat(), "lon": lon, "lat": lat, "accuracy_m": 10.0},
                                headers={"Authorization": f"Bearer {movers[tid]}"})
            assert r.status_code == 202, r.text
            assert r.json()["accepted"] == 1, r.text
            sent[tid] += 1
            time.sleep(0.25)
        return len(PATH)

    # the victim: the node (not the leader) whose partitions hold the most movers
    views = {n: held(cluster, n) for n in ("n1", "n2", "n3")}
    victim = max((n for n, (_, lead) in views.items() if not lead),
                 key=lambda n: sum(partition_of(tid, PARTITIONS) in views[n][0] for tid in movers))
    moved = [tid for tid in movers if partition_of(tid, PARTITIONS) in views[victim][0]]
    assert moved, "no traveller in the partitions of the node to kill"
    with ThreadPoolExecutor(MOVERS) as pool:
        futures = [pool.submit(walk, i, tid) for i, tid in enumerate(movers)]
        time.sleep(0.8)
        cluster.kill(victim)                 # mid-run: its partitions' travellers move to the survivors
        at_kill = {tid: sent[tid] for tid in moved}
        assert sum(f.result() for f in futures) == MOVERS * len(PATH)
    assert any(n < len(PATH) for n in at_kill.values()), f"the kill came after the pings: {at_kill}"
    survivors = [n for n in ("n1", "n2", "n3") if n != victim]
    wait_balanced(cluster, survivors)

    # every derived event once, in each traveller's order; the silent ones overdue once
    def derived() -> list[Event] | None:
        evs = asyncio.run(stream_events(private_nats, "citydata.p.*.tracking.>"))
        mine = [e for e in evs if e.kind in ("tracking.zone_left", "tracking.zone_entered", "tracking.overdue")]
        done = sum(e.kind == "tracking.zone_entered" for e in mine) >= MOVERS and \
            sum(e.kind == "tracking.overdue" for e in mine) >= SILENT
        return mine if done else None

    evs = wait_for(derived, 60, "the exits, returns and overdue events")
    # the pings each traveller sent one after the other are in its partition in that order (a request sent
    # again after the kill may be there twice, next to itself)
    fix_times: dict[str, list[float]] = defaultdict(list)
    for e in asyncio.run(stream_events(private_nats, "citydata.p.*.tracking.pings")):
        fix_times[e.key].extend(f[0] for f in e.data["fixes"])
    for tid in movers:
        assert fix_times[tid] == sorted(fix_times[tid]) and len(set(fix_times[tid])) == len(PATH), fix_times[tid]
    assert len({e.id for e in evs}) == len(evs)
    per: dict[str, list[str]] = defaultdict(list)
    for e in evs:
        per[e.key].append(e.kind)
    assert {tid: per[tid] for tid in movers} == {tid: ["tracking.zone_left", "tracking.zone_entered"]
                                                 for tid in movers}
    assert {tid: per[tid] for tid in silent} == {tid: ["tracking.overdue"] for tid in silent}

    # the rules (partition engines) raised each alert once: in the stream and in the IOC
    def alerts() -> list[Event] | None:
        evs = asyncio.run(stream_events(private_nats, "citydata.p.*.alert.>"))
        mine = [e for e in evs if e.data.get("rule_id") in ("tracking-left-zone", "tracking-overdue")]
        return mine if sum(e.kind == "alert.cleared" for e in mine) >= MOVERS else None

    raised: dict[str, list[str]] = defaultdict(list)
    for e in wait_for(alerts, 30, "the tracking alerts"):
        raised[e.data["dedup_key"]].append(e.kind)
    left = {k: v for k, v in raised.items() if k.startswith("tracking-left-zone")}
    overdue = {k: v for k, v in raised.items() if k.startswith("tracking-overdue")}
    assert len(left) == MOVERS and all(v == ["alert.raised", "alert.cleared"] for v in left.values()), left
    assert len(overdue) == SILENT and all(v == ["alert.raised"] for v in overdue.values()), overdue
    rows = wait_for(lambda: (lambda rs: rs if len(rs) == MOVERS + SILENT else None)(
        asyncio.run(ioc_rows(pg_url, pg_schema))), 30, "the IOC alerts")
    assert all(r["occurrences"] == 1 for r in rows), [dict(r) for r in rows]

    # a node that does not lead serves the tracking reads (from the shared store)
    reader = next(n for n in survivors if not held(cluster, n)[1])
    url = cluster.nodes[reader].url
    r = httpx.get(f"{url}/api/v1/tracking/positions", headers=admin, params={"limit": 100}, timeout=15)
    assert r.status_code == 200, r.text
    items = {i["traveller_id"]: i for i in r.json()["items"]}
    assert r.json()["total"] == MOVERS + SILENT
    for tid in movers:        # the newest fix (back in Phuket) and the province state, as the owners committed
        assert (items[tid]["lon"], items[tid]["lat"]) == INSIDE and items[tid]["province_state"] == "inside"
    r = httpx.get(f"{url}/api/v1/tracking/attention", headers=admin, timeout=15)
    assert r.status_code == 200, r.text
    assert {i["traveller_id"]: i["reasons"] for i in r.json()["items"]} == {tid: ["overdue"] for tid in silent}
    tid = next(iter(movers))
    r = httpx.get(f"{url}/api/v1/tracking/travellers/{tid}/track", headers=admin,
                  params={"purpose": "cluster test"}, timeout=15)
    assert r.status_code == 200 and len(r.json()["fixes"]) == len(PATH), r.text
